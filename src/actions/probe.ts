/**
 * One health-probe attempt over a stream the host opened (Transport.openStream): a TCP
 * connect, or an HTTP GET (TLS on top for https, certificate checked unless `insecure`).
 * Returns what was seen, as one short line; throws only when the host itself is gone
 * (a TransportError that is not a StreamOpenError) or the wait was aborted.
 */
import * as http from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { formatDuration } from '../config/duration.js';
import { StreamOpenError, type Transport } from '../transport/types.js';

/** Bytes of the body read at most (`contains` looks in these). */
export const BODY_LIMIT = 64 * 1024;
/** How much of the body an observation quotes. */
const QUOTE = 60;

export interface StatusRule {
  /** An exact code, or a class (2 for 2xx). */
  code?: number;
  class?: number;
}

export interface ProbeTarget {
  probe: 'http' | 'tcp';
  host: string;
  port: number;
  url?: string;
  tls?: boolean;
  insecure?: boolean;
  /** Request target: path and query. */
  path?: string;
  status?: StatusRule[];
  contains?: string;
  headers?: Record<string, string>;
}

export interface Observation {
  ok: boolean;
  /** What was seen: "connected", "answered 503: \"starting\"", "connection refused"... */
  seen: string;
}

export class ProbeAborted extends Error {}

export function statusMatches(rules: StatusRule[], code: number): boolean {
  return rules.some((r) => (r.code !== undefined ? r.code === code : Math.floor(code / 100) === r.class));
}

export function statusText(rules: StatusRule[]): string {
  return rules.map((r) => (r.code !== undefined ? String(r.code) : `${r.class}xx`)).join(' or ');
}

function quote(body: Buffer): string {
  const text = body
    .subarray(0, QUOTE * 4)
    .toString('utf8')
    .replace(/\s+/g, ' ')
    .trim();
  if (!text) return '';
  return ` ${JSON.stringify(text.length > QUOTE ? `${text.slice(0, QUOTE)}…` : text)}`;
}

/** One attempt; `budgetMs` bounds the whole of it (connect, TLS, answer). */
export async function probeOnce(t: ProbeTarget, transport: Transport, budgetMs: number, signal: AbortSignal): Promise<Observation> {
  let stream: Duplex;
  try {
    stream = await transport.openStream(t.host, t.port, { timeoutMs: budgetMs, signal });
  } catch (e) {
    if (signal.aborted) throw new ProbeAborted('interrupted');
    if (e instanceof StreamOpenError) return { ok: false, seen: e.reason };
    throw e;
  }
  if (t.probe === 'tcp') {
    stream.destroy();
    return { ok: true, seen: 'connected' };
  }
  return httpGet(t, stream, budgetMs, signal);
}

function httpGet(t: ProbeTarget, raw: Duplex, budgetMs: number, signal: AbortSignal): Promise<Observation> {
  return new Promise((resolve, reject) => {
    let done = false;
    let req: http.ClientRequest | undefined;
    let sock: Duplex = raw;
    const finish = (o: Observation | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req?.destroy();
      sock.destroy();
      raw.destroy();
      if (o instanceof Error) reject(o);
      else resolve(o);
    };
    const timer = setTimeout(() => finish({ ok: false, seen: `no answer within ${formatDuration(budgetMs)}` }), budgetMs);
    const onAbort = () => finish(new ProbeAborted('interrupted'));
    signal.addEventListener('abort', onAbort, { once: true });
    raw.on('error', () => {
      /* reported through the request */
    });
    if (t.tls) {
      const s = tls.connect({
        socket: raw,
        host: t.host,
        // SNI carries names only (RFC 6066); the certificate is still checked against an IP.
        ...(isIP(t.host) ? {} : { servername: t.host }),
        rejectUnauthorized: !t.insecure,
        ALPNProtocols: ['http/1.1'],
      });
      s.on('error', (e: Error) => finish({ ok: false, seen: `TLS: ${e.message}` }));
      sock = s;
    }
    const hostHeader = `${isIP(t.host) === 6 ? `[${t.host}]` : t.host}:${t.port}`;
    req = http.request({
      createConnection: () => sock as never,
      method: 'GET',
      path: t.path ?? '/',
      setHost: false,
      headers: { host: hostHeader, 'user-agent': 'hades-health', connection: 'close', ...t.headers },
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      const m = e.code === 'ECONNRESET' ? 'connection closed without an answer' : e.message;
      finish({ ok: false, seen: t.tls && /certificate|self.signed|SSL|TLS/i.test(m) ? `TLS: ${m}` : m });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const judge = () => {
        const body = Buffer.concat(chunks).subarray(0, BODY_LIMIT);
        const code = res.statusCode ?? 0;
        if (!statusMatches(t.status ?? [{ code: 200 }], code)) return finish({ ok: false, seen: `answered ${code}${quote(body)}` });
        if (t.contains !== undefined && !body.includes(t.contains))
          return finish({ ok: false, seen: `answered ${code} without ${JSON.stringify(t.contains)}${quote(body)}` });
        finish({ ok: true, seen: `answered ${code}${t.contains !== undefined ? ` with ${JSON.stringify(t.contains)}` : ''}` });
      };
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= BODY_LIMIT) judge();
      });
      res.on('end', judge);
      res.on('error', judge);
      res.on('aborted', judge);
    });
    req.end();
  });
}
