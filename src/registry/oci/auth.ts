/**
 * Credentials of an `oci` registry, three ways:
 *   - `username` + `password_env`: the password is read from that environment variable when the
 *     registry is opened and reaches oras only on stdin (`-u USER --password-stdin`). `oras cp`
 *     has no --password-stdin, so a copy first logs in (`oras login --password-stdin`) into a
 *     private auth file (0600 in a fresh 0700 temp dir) that is removed right after the copy.
 *   - `registry_config`: a docker-style auth file (what `oras login --registry-config` or
 *     `docker login` wrote), passed as `--registry-config`.
 *   - neither: an entry for the registry's host in $HADES_REGISTRY_AUTH (env-auth.ts), handled
 *     like username + password_env; else oras's defaults ($DOCKER_CONFIG/config.json or
 *     ~/.docker/config.json, with its `credHelpers` / `credsStore` credential helpers).
 * A docker config (registry_config or the default one) may name credential helpers
 * (`credHelpers: {host: NAME}`, `credsStore: NAME`): oras runs `docker-credential-NAME get`
 * from PATH and reads the secret from its stdout — nothing of it in argv or on Hades's side.
 * Mirrors (mirrors.ts) never get the origin's username/password: they use their own
 * $HADES_REGISTRY_AUTH entry, else the registry_config (a docker config is keyed by host), else
 * oras's defaults.
 * The password never appears in argv, in the children's environment or in messages.
 */
import { existsSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OciRegistrySpec } from '../../config/model.js';
import { UserError } from '../../errors.js';
import { expand } from '../../env/expand.js';
import { REGISTRY_AUTH_ENV, registryAuthFromEnv } from './env-auth.js';
import type { OrasRunner } from './oras.js';

export type OciAuth =
  | { kind: 'password'; username: string; password: string; passwordEnv: string; fromMap?: { host: string } }
  | { kind: 'config'; path: string }
  | { kind: 'default' };

/** Private auth dirs that exist right now; removed at process exit if a copy was cut short. */
const liveAuthDirs = new Set<string>();
let exitHook = false;
function track(dir: string): void {
  liveAuthDirs.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const d of liveAuthDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

/** Reads the credentials a spec declares; UserError (at the spec's position) when they are incomplete. */
export function resolveOciAuth(spec: OciRegistrySpec, env: Record<string, string | undefined>): OciAuth {
  const fail = (message: string, hint?: string): never => {
    throw new UserError({ message: `registry "${spec.name}": ${message}`, pos: spec.pos, ...(hint ? { hint } : {}) });
  };
  if (spec.username !== undefined || spec.passwordEnv !== undefined) {
    if (spec.registryConfig !== undefined)
      fail(
        'give either username + password_env or registry_config, not both',
        'registry_config already holds the credentials; drop username/password_env (or the other way round)',
      );
    if (spec.username === undefined) fail(`password_env is set but username is not`, 'add username: (the registry user name)');
    if (spec.passwordEnv === undefined)
      fail('username is set but password_env is not', 'add password_env: NAME — the environment variable that holds the password or token');
    const u = expand(spec.username!, env);
    if (u.missing.length)
      fail(`username uses \${${u.missing[0]}}, which is not set in the environment`, `export ${u.missing[0]}=… before running hades`);
    if (u.value === '') fail('username is empty');
    const password = env[spec.passwordEnv!];
    if (password === undefined || password === '')
      fail(
        `password_env ${spec.passwordEnv} is not set (or empty) in the environment`,
        `export ${spec.passwordEnv}=… (the password or token for ${u.value})`,
      );
    return { kind: 'password', username: u.value, password: password!, passwordEnv: spec.passwordEnv! };
  }
  if (spec.registryConfig !== undefined) {
    if (!existsSync(spec.registryConfig))
      fail(
        `registry_config ${spec.registryConfig} does not exist`,
        `write it with: oras login --registry-config ${spec.registryConfig} ${spec.url.split('/')[0]}`,
      );
    return { kind: 'config', path: spec.registryConfig };
  }
  return envMapAuth(expand(spec.url, env).value.split('/')[0]!, env) ?? { kind: 'default' };
}

/** The $HADES_REGISTRY_AUTH entry for a host, as password auth; undefined when there is none. */
function envMapAuth(host: string, env: Record<string, string | undefined>): OciAuth | undefined {
  const c = registryAuthFromEnv(env).get(host);
  return c
    ? { kind: 'password', username: c.username, password: c.password, passwordEnv: REGISTRY_AUTH_ENV, fromMap: { host } }
    : undefined;
}

/** A mirror's credentials: its own $HADES_REGISTRY_AUTH entry, else the registry's docker config (keyed by host), else oras's defaults. */
export function mirrorAuth(host: string, registryAuth: OciAuth, env: Record<string, string | undefined>): OciAuth {
  return envMapAuth(host, env) ?? (registryAuth.kind === 'config' ? registryAuth : { kind: 'default' });
}

/** What to check when the registry refuses the credentials. */
export function authHint(auth: OciAuth, host: string): string {
  switch (auth.kind) {
    case 'password':
      if (auth.fromMap)
        return `check the entry for ${auth.fromMap.host} in $${REGISTRY_AUTH_ENV} (username ${JSON.stringify(auth.username)})`;
      return `check username (${JSON.stringify(auth.username)}) and the password in $${auth.passwordEnv} (password_env)`;
    case 'config':
      return `check the credentials for ${host} in registry_config ${auth.path} (oras login --registry-config ${auth.path} ${host})`;
    default:
      return `no credentials were accepted for ${host}: set username + password_env or registry_config, add ${host} to $${REGISTRY_AUTH_ENV}, or log in with \`oras login ${host}\``;
  }
}

/** What to check when a mirror refuses the credentials (it never gets the registry's username/password). */
export function mirrorAuthHint(auth: OciAuth, host: string): string {
  if (auth.kind !== 'default') return authHint(auth, host);
  return `no credentials were accepted for mirror ${host}: add ${host} to $${REGISTRY_AUTH_ENV}, or its credentials to registry_config or the default docker config (a mirror never gets the registry's username/password_env)`;
}

/** Values never to show: the password and the base64 user:password of auth files. */
export function authSecrets(auth: OciAuth): string[] {
  if (auth.kind !== 'password') return [];
  return [auth.password, Buffer.from(`${auth.username}:${auth.password}`).toString('base64')];
}

/** Flags (and stdin) for one oras call that supports --password-stdin. */
export function authArgs(auth: OciAuth): { args: string[]; input?: string } {
  if (auth.kind === 'password') return { args: ['-u', auth.username, '--password-stdin'], input: auth.password };
  if (auth.kind === 'config') return { args: ['--registry-config', auth.path] };
  return { args: [] };
}

/**
 * An auth file for `oras cp` (which reads passwords only from argv or an auth file): for
 * password auth, a private temp file written by `oras login --password-stdin`, removed by
 * `release()`; otherwise the configured file (or none).
 */
export async function authFileForCopy(
  auth: OciAuth,
  runner: OrasRunner,
  host: string,
  conn: string[],
  timeoutMs: number,
  tmpDir: string = tmpdir(),
): Promise<{ path?: string; release(): Promise<void> }> {
  if (auth.kind === 'config') return { path: auth.path, release: async () => undefined };
  if (auth.kind === 'default') return { release: async () => undefined };
  const dir = await fsp.mkdtemp(join(tmpDir, 'hades-oras-auth-'));
  await fsp.chmod(dir, 0o700);
  track(dir);
  const path = join(dir, 'config.json');
  const release = async () => {
    await fsp.rm(dir, { recursive: true, force: true });
    liveAuthDirs.delete(dir);
  };
  try {
    await runner.run({
      args: ['login', '--no-tty', ...conn, '--registry-config', path, '-u', auth.username, '--password-stdin', host],
      input: auth.password,
      timeoutMs,
      what: `log in to ${host}`,
    });
    await fsp.chmod(path, 0o600);
  } catch (e) {
    await release();
    throw e;
  }
  return { path, release };
}
