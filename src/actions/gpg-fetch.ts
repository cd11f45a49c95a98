/**
 * The gpg action's download, on the orchestrator: Node's https (TLS ≥ 1.2, the certificate
 * verified against Node's CAs plus NODE_EXTRA_CA_CERTS), redirects followed only to https://,
 * an overall deadline, a size cap. Once per run per URL: every host of the run awaits the
 * same download (keyed by the run's SourceFiles object, which the engine shares per run).
 */
import { request } from 'node:https';
import { formatDuration } from '../config/duration.js';

export const MAX_KEY_BYTES = 8 * 1024 * 1024;
export const MAX_REDIRECTS = 5;

export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadError';
  }
}

const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_NOT_YET_VALID',
]);

function why(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (CERT_CODES.has(code))
    return `TLS certificate not accepted: ${err.message} (add the CA with NODE_EXTRA_CA_CERTS=ca.pem if the server is yours)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the host name (${code})`;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (/protocol|version/i.test(err.message) && /ssl|tls/i.test(`${code} ${err.message}`))
    return `TLS handshake failed (TLS 1.2 or newer is required): ${err.message}`;
  return err.message;
}

/** One GET: the body of a 200, the Location of a redirect, else a DownloadError. */
function get(url: URL, deadline: number, signal: AbortSignal): Promise<{ body: Buffer } | { location: string }> {
  return new Promise((resolveGet, reject) => {
    const left = deadline - Date.now();
    const timeoutMs = Math.max(1, left);
    let done = false;
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      reject(e);
    };
    const req = request(url, {
      method: 'GET',
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      agent: false,
      headers: { 'user-agent': 'hades', accept: '*/*' },
      signal,
    });
    const timer = setTimeout(() => fail(new DownloadError('timed out')), timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => fail(new DownloadError(signal.aborted ? 'aborted' : why(err))));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        const loc = res.headers.location;
        if (!loc) return fail(new DownloadError(`HTTP ${status} redirect without a Location`));
        done = true;
        clearTimeout(timer);
        req.destroy();
        return resolveGet({ location: loc });
      }
      if (status !== 200) {
        res.resume();
        return fail(new DownloadError(`HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`));
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_KEY_BYTES)
        return fail(new DownloadError(`the response is ${declared} bytes, more than a key file may be (${MAX_KEY_BYTES})`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_KEY_BYTES)
          return fail(new DownloadError(`the response is more than ${MAX_KEY_BYTES} bytes, more than a key file may be`));
        chunks.push(c);
      });
      res.on('error', (err) => fail(new DownloadError(why(err))));
      res.on('aborted', () => fail(new DownloadError('the server closed the connection mid-body')));
      res.on('end', () => {
        if (done) return;
        if (!res.complete) return fail(new DownloadError('the server closed the connection mid-body'));
        done = true;
        clearTimeout(timer);
        resolveGet({ body: Buffer.concat(chunks) });
      });
    });
    req.end();
  });
}

/** GET `src` over https, following at most MAX_REDIRECTS redirects, each to https:// only. */
export async function download(src: string, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  let url = new URL(src);
  for (let hops = 0; ; hops++) {
    if (url.protocol !== 'https:')
      throw new DownloadError(`redirected to ${url.protocol}//${url.host}${url.pathname}: refused (keys are fetched over https:// only)`);
    let r: Awaited<ReturnType<typeof get>>;
    try {
      r = await get(url, deadline, signal);
    } catch (e) {
      if (e instanceof DownloadError && e.message === 'timed out')
        throw new DownloadError(`timed out after ${formatDuration(timeoutMs)} (the action's timeout: raises it)`);
      throw e;
    }
    if ('body' in r) return r.body;
    if (hops >= MAX_REDIRECTS) throw new DownloadError(`more than ${MAX_REDIRECTS} redirects`);
    url = new URL(r.location, url);
  }
}

const perRun = new WeakMap<object, Map<string, Promise<Buffer>>>();

/**
 * The bytes at `src`, downloaded once per run (`run` is an object the whole run shares):
 * the first host starts the download, the others await the same promise — and see the
 * same failure.
 */
export function downloadOnce(run: object, src: string, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  let m = perRun.get(run);
  if (!m) {
    m = new Map();
    perRun.set(run, m);
  }
  let p = m.get(src);
  if (!p) {
    p = download(src, timeoutMs, signal);
    p.catch(() => undefined); // awaited by every caller; no unhandled rejection in between
    m.set(src, p);
  }
  return p;
}
