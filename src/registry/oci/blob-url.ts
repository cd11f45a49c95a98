/**
 * Where a host can fetch a blob itself (pull `via: host`), without downloading it here:
 * the blob's URL on the registry's HTTP API (`/v2/<repository>/blobs/<digest>`; the scheme
 * follows `plain_http`) and the Authorization header the host should send:
 *  - the registry answers `/v2/` with 200: none (anonymous);
 *  - 401 with a `Bearer realm=…,service=…` challenge (token auth): a short-lived token for
 *    `repository:<repo>:pull` from the realm, asked with the registry's credentials when it
 *    has any (Basic), anonymously otherwise — `Bearer <token>`, reused while it is valid;
 *  - 401 with a `Basic` challenge: the registry's own credentials, `Basic base64(user:pass)`.
 * Credentials are those of the registry entry: username + password_env, or the `auths`
 * entry of registry_config (or of the docker config oras would use: $DOCKER_CONFIG or
 * ~/.docker/config.json). Credential helpers cannot be read here (they would have to be run
 * for a secret meant for other hosts): a clear error says so.
 * The header value is a secret: it is never put into a message.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../../errors.js';
import type { OciSettings } from './settings.js';

const MAX_BODY = 1024 * 1024;
const TIMEOUT_MS = 30_000;
/** A header value a curl config line carries unquoted-safe: base64 / JWT / token characters only. */
const HEADER_VALUE = /^(Basic|Bearer) [A-Za-z0-9+/=._~-]+$/;

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One GET (no redirects), at most 1 MiB of body; `insecure` skips the TLS certificate check. */
export function httpGet(url: string, o: { insecure: boolean; authorization?: string }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(
      u,
      {
        timeout: TIMEOUT_MS,
        headers: { 'user-agent': 'hades', ...(o.authorization ? { authorization: o.authorization } : {}) },
        ...(u.protocol === 'https:' ? { rejectUnauthorized: !o.insecure } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_BODY) return void req.destroy(new Error('answer larger than 1 MiB'));
          parts.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}

/** The parameters of a `WWW-Authenticate` challenge: scheme + key="value" pairs. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\S+)\s*(.*)$/.exec(header) ?? ['', '', ''];
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

/** user:password for the registry host, from the entry's credentials or a docker config's `auths`. */
export function registryCredentials(reg: OciSettings): { user: string; password: string } | undefined {
  const auth = reg.auth;
  if (auth.kind === 'password') return { user: auth.username, password: auth.password };
  const file =
    auth.kind === 'config' ? auth.path : join(reg.env.DOCKER_CONFIG || join(reg.env.HOME || homedir(), '.docker'), 'config.json');
  if (!existsSync(file)) return undefined;
  let cfg: {
    auths?: Record<string, { auth?: string; username?: string; password?: string }>;
    credsStore?: string;
    credHelpers?: Record<string, string>;
  };
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8')) as typeof cfg;
  } catch (e) {
    // JSON.parse's message quotes the text around the error, which may be a credential: not shown.
    const why = e instanceof SyntaxError ? 'it is not valid JSON' : (e as Error).message;
    throw new RunError(`registry "${reg.name}": cannot read ${file}: ${why}`);
  }
  const entry = cfg.auths?.[reg.host] ?? cfg.auths?.[`https://${reg.host}`] ?? cfg.auths?.[`http://${reg.host}`];
  if (entry?.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { user: text.slice(0, i), password: text.slice(i + 1) };
  }
  if (entry?.username && entry.password) return { user: entry.username, password: entry.password };
  if (cfg.credHelpers?.[reg.host] || cfg.credsStore)
    throw new RunError(
      `registry "${reg.name}": the credentials for ${reg.host} in ${file} are kept by a credential helper, which pull via: host cannot use`,
    );
  return undefined;
}

/** `<scheme>://<host>` of the registry. */
export function registryBase(reg: OciSettings): string {
  return `${reg.plainHttp ? 'http' : 'https'}://${reg.host}`;
}

/** The repository path of an artifact name: the url's prefix + name. */
function repository(reg: OciSettings, name: string): string {
  return reg.repo(name).slice(reg.host.length + 1);
}

/** The URL a host downloads a blob of `name` from. */
export function blobUrl(reg: OciSettings, name: string, digest: string): string {
  return `${registryBase(reg)}/v2/${repository(reg, name)}/blobs/${digest}`;
}

function basic(c: { user: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;
}

/** Asks the challenge's realm for a pull token; the token and its lifetime (seconds). */
async function requestToken(
  reg: OciSettings,
  params: Record<string, string>,
  scope: string,
  creds: { user: string; password: string } | undefined,
): Promise<{ token: string; expiresIn: number }> {
  const what = `registry "${reg.name}": token for ${scope}`;
  if (!params.realm) throw new RunError(`${what}: the registry's Bearer challenge names no realm`);
  let url: URL;
  try {
    url = new URL(params.realm);
  } catch {
    throw new RunError(`${what}: the Bearer challenge's realm ${JSON.stringify(params.realm)} is not a URL`);
  }
  if (params.service) url.searchParams.set('service', params.service);
  url.searchParams.set('scope', scope);
  let res: HttpAnswer;
  try {
    res = await httpGet(url.toString(), { insecure: reg.insecure, ...(creds ? { authorization: basic(creds) } : {}) });
  } catch (e) {
    throw new RunError(`${what}: ${url.origin}: ${(e as Error).message}`);
  }
  if (res.status === 401 || res.status === 403)
    throw new RunError(`${what}: the token server ${url.origin} refused the credentials (HTTP ${res.status})`);
  if (res.status !== 200) throw new RunError(`${what}: the token server ${url.origin} answered HTTP ${res.status}`);
  let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(res.body.toString('utf8')) as typeof body;
  } catch {
    throw new RunError(`${what}: the token server ${url.origin} answered no JSON`);
  }
  const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
  if (typeof token !== 'string' || !token) throw new RunError(`${what}: the token server ${url.origin} answered no token`);
  // The distribution token spec: 60 s when the server does not say.
  return { token, expiresIn: typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60 };
}

/**
 * The Authorization header value a host should send to read `name`'s blobs (undefined for
 * an anonymous registry; see the module comment), and for a token how long it is valid (ms).
 */
export async function hostAuthorization(reg: OciSettings, name: string): Promise<{ value?: string; validMs?: number }> {
  const base = registryBase(reg);
  let ping: HttpAnswer;
  try {
    ping = await httpGet(`${base}/v2/`, { insecure: reg.insecure });
  } catch (e) {
    throw new RunError(`registry "${reg.name}": ${base}/v2/: ${(e as Error).message}`);
  }
  if (ping.status === 200) return {};
  if (ping.status !== 401) throw new RunError(`registry "${reg.name}": ${base}/v2/ answered HTTP ${ping.status}`);
  const header = ping.headers['www-authenticate'];
  const challenge = parseChallenge(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''));
  const creds = registryCredentials(reg);
  let value: string;
  let validMs: number | undefined;
  if (challenge.scheme === 'bearer') {
    const scope = `repository:${repository(reg, name)}:pull`;
    const t = await requestToken(reg, challenge.params, scope, creds);
    value = `Bearer ${t.token}`;
    validMs = t.expiresIn * 1000;
  } else if (challenge.scheme === 'basic') {
    if (!creds) throw new RunError(`registry "${reg.name}": ${base} needs credentials (Basic auth) and none are configured`);
    value = basic(creds);
  } else
    throw new RunError(`registry "${reg.name}": ${base}/v2/ asks for an unknown authentication scheme ${JSON.stringify(challenge.scheme)}`);
  if (!HEADER_VALUE.test(value))
    throw new RunError(`registry "${reg.name}": the credentials for the host hold characters an HTTP header cannot carry`);
  return { value, ...(validMs !== undefined ? { validMs } : {}) };
}
