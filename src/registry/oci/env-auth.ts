/**
 * Credentials for several registries from ONE environment variable, the way CI systems hand
 * secrets over (a masked variable per pipeline): `HADES_REGISTRY_AUTH` holds a JSON object
 * keyed by registry host[:port] (exactly as it appears in a registry's url or a mirror):
 *
 *   HADES_REGISTRY_AUTH='{"registry.example.com": {"username": "ci", "password": "…"},
 *                         "127.0.0.1:5000": {"username": "alice", "password": "…"}}'
 *
 * An entry is used for an `oci` registry that declares no credentials of its own (no
 * username/password_env, no registry_config) and for each mirror on that host. The password
 * reaches oras the same way as password_env's: on stdin, or in a private auth file for `oras
 * cp`; the variable is removed from the environment of every oras child, and its passwords are
 * known to the Redactor (never shown). A malformed value is a user error that never echoes it.
 */
import { UserError } from '../../errors.js';
import { ociUrlProblem } from '../../config/oci-url.js';

export const REGISTRY_AUTH_ENV = 'HADES_REGISTRY_AUTH';

export interface EnvCredential {
  username: string;
  password: string;
}

const FORMAT_HINT = `write ${REGISTRY_AUTH_ENV}='{"host[:port]": {"username": "…", "password": "…"}, …}' (JSON; one entry per registry host)`;

/** The entries of $HADES_REGISTRY_AUTH by host; empty when it is unset. UserError when it is malformed (its value is never shown). */
export function registryAuthFromEnv(env: Record<string, string | undefined>): Map<string, EnvCredential> {
  const out = new Map<string, EnvCredential>();
  const text = env[REGISTRY_AUTH_ENV];
  if (text === undefined || text.trim() === '') return out;
  const fail = (why: string): never => {
    throw new UserError({ message: `${REGISTRY_AUTH_ENV} ${why}`, hint: FORMAT_HINT });
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    fail('is not valid JSON'); // JSON.parse's message may quote the value: not shown
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) fail('must be a JSON object keyed by registry host[:port]');
  for (const [host, entry] of Object.entries(data as Record<string, unknown>)) {
    const bad = host.includes('/') ? 'has a path (give host[:port] only)' : ociUrlProblem(host);
    if (bad) fail(`has an invalid key ${JSON.stringify(host)}: ${bad}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`entry ${JSON.stringify(host)} must be an object`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (k !== 'username' && k !== 'password') fail(`entry ${JSON.stringify(host)} has an unknown key ${JSON.stringify(k)}`);
    if (typeof e.username !== 'string' || e.username === '') fail(`entry ${JSON.stringify(host)} needs a non-empty "username"`);
    if (typeof e.password !== 'string' || e.password === '') fail(`entry ${JSON.stringify(host)} needs a non-empty "password"`);
    out.set(host, { username: e.username as string, password: e.password as string });
  }
  return out;
}

/**
 * Values to scrub from every output: the whole variable and each password (and its
 * base64 user:password form). Tolerates a malformed value (then only the whole is returned).
 */
export function registryAuthSecrets(env: Record<string, string | undefined>): string[] {
  const text = env[REGISTRY_AUTH_ENV];
  if (text === undefined || text.trim() === '') return [];
  const out = [text];
  try {
    for (const c of registryAuthFromEnv(env).values()) out.push(c.password, Buffer.from(`${c.username}:${c.password}`).toString('base64'));
  } catch {
    /* malformed: reported where it is used */
  }
  return out;
}
