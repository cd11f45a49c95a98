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
  r.learn(osEnv);
  const problems = new Problems();
  const sources = loadEnvSources(hf, { cliVars: opts.env, envFiles: opts.envFile, cwd: process.cwd(), osEnv }, problems);
  r.taint(sources.refs);
  r.learn(sources.fileVars);
  r.learn(sources.cliVars);
  for (const s of registryAuthSecrets(osEnv)) r.addValue(s);
  const value = (name: string | undefined) => (name !== undefined ? osEnv[name] : undefined);
  for (const spec of hf.registries.values()) {
    for (const v of registrySecrets(spec, osEnv)) r.addValue(v);
    const phrase = value(spec.signWith?.passphraseEnv);
    if (phrase) r.addValue(phrase);
  }
  for (const h of hf.hosts.values()) {
    const phrase = value(h.passphraseEnv);
    if (phrase) r.addValue(phrase);
  }
  const phrase = value(opts.passphraseEnv);
  if (phrase) r.addValue(phrase);
  // An env file that cannot be read is a mistake like in `hades plan` (its secrets would be unknown).
  problems.throwIfAny();
  return r;
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
