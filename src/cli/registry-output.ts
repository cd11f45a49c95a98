/**
 * What `hades registry …` prints goes through the Redactor, like `hades plan` output: results on
 * stdout (plain and JSON), warnings and errors on stderr (runProgram prints errors through
 * the output redactor set here), and what rm/gc write to their audit logs.
 *
 * The redactor is built when a command loads its hadesfiles and knows every secret the command
 * could meet: the secret-named values (default patterns, the hadesfiles' `secret_patterns`,
 * `--secret-pattern`) of the OS environment, the `.env` beside the hadesfile, `--env-file` and
 * `-e` (and the vars built from them); every registry's password (`password_env`, also as the
 * base64 `user:password` of auth files), every `passphrase_env` (registry `sign_with:`, hosts'
 * identity files, `--passphrase-env`), and the contents of $HADES_REGISTRY_AUTH. A registry's
 * own oras runner redacts its password already; this catches what it cannot know (a credential
 * helper's error text that oras repeats, a secret of another registry, what a registry holds).
 */
import type { Hadesfile, RegistrySpec } from '../config/model.js';
import { expand } from '../env/expand.js';
import { loadEnvSources } from '../env/resolve.js';
import { DEFAULT_SECRET_PATTERNS, outputRedactor, Redactor, redactOutput, setOutputRedactor } from '../env/secrets.js';
import { Problems } from '../errors.js';
import { registryAuthSecrets } from '../registry/oci/env-auth.js';
import { openRegistry } from '../registry/open.js';
import type { Registry } from '../registry/types.js';
import { jsonSafe, terminalSafe } from '../terminal.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';

/** The hadesfiles of a registry command, with the command's redactor in place (see above). */
export function loadRegistryFiles(opts: CommonOptions & { passphraseEnv?: string }): Hadesfile {
  const hf = loadFiles(opts);
  setOutputRedactor(registryRedactor(hf, opts, process.env));
  return hf;
}

export function registryRedactor(
  hf: Hadesfile,
  opts: CommonOptions & { passphraseEnv?: string },
  osEnv: Record<string, string | undefined>,
): Redactor {
  const r = new Redactor([...DEFAULT_SECRET_PATTERNS, ...hf.secretPatterns, ...opts.secretPattern]);
  known.length = 0;
  const named = (env: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(env)) if (v && r.isSecret(k)) known.push([k, v]);
  };
  r.learn(osEnv);
  const problems = new Problems();
  const sources = loadEnvSources(hf, { cliVars: opts.env, envFiles: opts.envFile, cwd: process.cwd(), osEnv }, problems);
  r.taint(sources.refs);
  r.learn(sources.fileVars);
  r.learn(sources.cliVars);
  for (const env of [sources.cliVars, sources.fileVars, osEnv]) named(env);
  const add = (label: string, v: string | undefined) => {
    if (!v) return;
    r.addValue(v);
    known.push([label, v]);
  };
  for (const s of registryAuthSecrets(osEnv)) add('HADES_REGISTRY_AUTH', s);
  const value = (name: string | undefined) => (name !== undefined ? osEnv[name] : undefined);
  for (const spec of hf.registries.values()) {
    for (const v of registrySecrets(spec, osEnv)) add((spec as { passwordEnv: string }).passwordEnv, v);
    add(spec.signWith?.passphraseEnv ?? '', value(spec.signWith?.passphraseEnv));
  }
  for (const h of hf.hosts.values()) add(h.passphraseEnv ?? '', value(h.passphraseEnv));
  add(opts.passphraseEnv ?? '', value(opts.passphraseEnv));
  // An env file that cannot be read is a mistake like in `hades plan` (its secrets would be unknown).
  problems.throwIfAny();
  return r;
}

/** The secrets the last registryRedactor learned, by the variable that holds them (for refusals that name it). */
const known: Array<[string, string]> = [];

/** The variable whose secret value `text` holds (values of 4+ characters, as the Redactor scrubs), or undefined. */
export function secretHeldBy(text: string): string | undefined {
  return known.find(([, v]) => v.length >= 4 && text.includes(v))?.[0];
}

/**
 * `registry push --annotation K=V` / `--config FILE`: what is pushed stays in the registry,
 * readable by anyone who can pull — a value holding a known secret is refused (exit 2).
 */
export function refuseSecretMetadata(
  annotations: Record<string, string> | undefined,
  config: Buffer | undefined,
  configArg?: string,
): void {
  const problems = new Problems();
  for (const [k, v] of Object.entries(annotations ?? {})) {
    const name = secretHeldBy(`${k}=${v}`);
    if (name)
      problems.add(
        `--annotation ${k}: holds the value of ${name}, a secret: annotations are stored in the registry, readable by anyone who can pull`,
        undefined,
        'put no secret in an annotation (e.g. a build URL without its token), or leave it out',
      );
  }
  const name = config ? secretHeldBy(config.toString('utf8')) : undefined;
  if (name)
    problems.add(
      `--config ${configArg} holds the value of ${name}, a secret: the config blob is stored in the registry, readable by anyone who can pull`,
      undefined,
      'remove the secret from the config file',
    );
  problems.throwIfAny();
}

/** An oci registry's password (and its base64 `user:password`); nothing for the others. */
function registrySecrets(spec: RegistrySpec, env: Record<string, string | undefined>): string[] {
  if (spec.type !== 'oci' || spec.passwordEnv === undefined) return [];
  const password = env[spec.passwordEnv];
  if (!password) return [];
  const user = spec.username !== undefined ? expand(spec.username, env).value : '';
  return [password, Buffer.from(`${user}:${password}`).toString('base64')];
}

/** A registry command's result on stdout: secrets scrubbed (JSON: every string value), then made terminal-safe. */
export function printResult(output: 'plain' | 'json', json: unknown, text: string): void {
  process.stdout.write(
    output === 'json' ? `${jsonSafe(outputRedactor().deep(json))}\n` : terminalSafe(redactOutput(text)).replace(/\n?$/, '\n'),
  );
}

/** A line on stderr (a warning, a refusal in --output json), scrubbed. */
export function printErr(line: string): void {
  process.stderr.write(`${terminalSafe(redactOutput(line))}\n`);
}

/** Opens a registry for a registry command: its warnings (a failed mirror) scrubbed on stderr. */
export function openForCli(spec: RegistrySpec): Registry {
  return openRegistry(spec, { onWarning: (message) => printErr(`warning: ${message}`) });
}
