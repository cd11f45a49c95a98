/**
 * `health: {http | tcp, status?, contains?, headers?, insecure?, timeout, interval?}` — waits,
 * per host, until a service answers. The probe travels through the host's own SSH
 * connection (a direct-tcpip channel: the host makes the TCP connect, to the address as
 * it sees it; nothing is installed or run there); a `local: true` host connects directly.
 * Polls every `interval` until healthy or `timeout`; every attempt is reported
 * (ActionRuntime.attempt → an `action.attempt` event). Nothing else retries.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActionCheck } from '../config/action-kinds.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { ActionFailure, type ActionModule, type BaseEntry, type PlanContext } from './types.js';
import { ProbeAborted, type ProbeTarget, type StatusRule, probeOnce, statusText } from './probe.js';

/** The longest one attempt waits for an answer (less when the timeout ends sooner). */
export const ATTEMPT_MAX_MS = 10_000;
const DEFAULT_INTERVAL_MS = 1_000;

export interface HealthEntry extends BaseEntry, ProbeTarget {
  kind: 'health';
  /** What the dry run and messages call the target: the URL, or host:port. */
  target: string;
  timeoutMs: number;
  intervalMs: number;
  /** At most this many attempts: one every interval, while the timeout lasts. */
  maxAttempts: number;
  /** Where the probe is made from. */
  via: 'ssh' | 'local';
}

type Parsed =
  | { ok: Omit<ProbeTarget, 'status' | 'contains' | 'headers' | 'insecure'> & { target: string } }
  | { error: string; hint: string };

const HOST = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

function port(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `host:port` or `[v6]:port`. */
export function parseTcp(text: string): Parsed {
  const m = /^\[([0-9A-Fa-f:.]+)\]:([^:]*)$/.exec(text) ?? /^([^:[\]]*):([^:]*)$/.exec(text);
  const hint = 'write host:port, e.g. 127.0.0.1:5432 or [::1]:5432 (the address as the host sees it)';
  if (!m) return { error: `tcp ${JSON.stringify(text)} is not host:port`, hint };
  const [, host, p] = m as unknown as [string, string, string];
  if (!host || (!HOST.test(host) && !host.includes(':')))
    return { error: `tcp ${JSON.stringify(text)}: ${JSON.stringify(host)} is not a host name or address`, hint };
  const n = port(p);
  if (n === undefined) return { error: `tcp ${JSON.stringify(text)}: port ${JSON.stringify(p)} is not a number from 1 to 65535`, hint };
  return { ok: { probe: 'tcp', host, port: n, target: host.includes(':') ? `[${host}]:${n}` : `${host}:${n}` } };
}

export function parseHttp(text: string): Parsed {
  const hint = 'write a full URL, e.g. http://127.0.0.1:8080/healthz (the address as the host sees it)';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    const p = /^[a-z]+:\/\/[^/]*:([^/]*)/i.exec(text)?.[1];
    if (p !== undefined && port(p) === undefined)
      return { error: `http ${JSON.stringify(text)}: port ${JSON.stringify(p)} is not a number from 1 to 65535`, hint };
    return { error: `http ${JSON.stringify(text)} is not a valid URL`, hint };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return { error: `http ${JSON.stringify(text)}: scheme ${u.protocol.slice(0, -1)} is not http or https`, hint };
  if (u.username || u.password)
    return {
      error: `http ${JSON.stringify(text)}: credentials in the URL would be shown everywhere`,
      hint: 'send them in headers: (values from env, redacted when secret)',
    };
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) return { error: `http ${JSON.stringify(text)} names no host`, hint };
  const tls = u.protocol === 'https:';
  const n = u.port ? Number(u.port) : tls ? 443 : 80;
  u.hash = '';
  return { ok: { probe: 'http', host, port: n, tls, path: `${u.pathname}${u.search}`, url: u.href, target: u.href } };
}

/** `status`: 200, "2xx", or a list of them. */
export function parseStatus(v: unknown): { rules: StatusRule[] } | { error: string } {
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) return { error: 'status is an empty list' };
  const rules: StatusRule[] = [];
  for (const it of items) {
    const s = String(it);
    if (/^[1-5][0-9][0-9]$/.test(s)) rules.push({ code: Number(s) });
    else if (/^[1-5]xx$/i.test(s)) rules.push({ class: Number(s[0]) });
    else return { error: `status ${JSON.stringify(it)} is not an HTTP status (100-599) or a class like 2xx` };
  }
  return { rules };
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkDuration(c: ActionCheck, field: 'timeout' | 'interval'): void {
  const v = c.value?.[field];
  if (typeof v === 'string' && parseDuration(v) === 0)
    c.error(
      `health ${field} must be longer than 0`,
      c.pos(field, 'value'),
      field === 'timeout' ? 'how long to wait for the service, e.g. 60s' : 'how long between attempts, e.g. 1s',
    );
}

export const healthAction: ActionModule<HealthEntry> = {
  kind: 'health',
  check(c) {
    const has = { http: c.has('http'), tcp: c.has('tcp') };
    if (has.http && has.tcp)
      c.error('health has both http and tcp', c.pos('tcp'), 'one probe per health action: write two health actions to check both');
    else if (!has.http && !has.tcp)
      c.error(
        'health needs http or tcp',
        c.pos(),
        'add http: http://127.0.0.1:8080/healthz (an HTTP GET) or tcp: 127.0.0.1:5432 (a connection that opens)',
      );
    for (const f of ['http', 'tcp'] as const) {
      const v = c.value?.[f];
      if (typeof v !== 'string' || v.includes('${')) continue; // expanded and checked when planned
      const r = f === 'http' ? parseHttp(v) : parseTcp(v);
      if ('error' in r) c.error(`health ${r.error}`, c.pos(f, 'value'), r.hint);
    }
    if (has.tcp && !has.http)
      for (const f of ['status', 'contains', 'headers', 'insecure'])
        if (c.has(f)) c.error(`health ${f} applies to http probes only`, c.pos(f), 'a tcp probe only checks that a connection opens');
    if (c.has('status')) {
      const r = parseStatus(c.value!.status);
      if ('error' in r) c.error(`health ${r.error}`, c.pos('status', 'value'), 'write e.g. 200, 2xx or [200, 204]');
    }
    checkDuration(c, 'timeout');
    checkDuration(c, 'interval');
  },
  schema: {
    title: 'health',
    description:
      'Wait until a service answers, probed from the host through its own SSH connection (http GET or tcp connect), every interval until timeout.',
    type: 'object',
    additionalProperties: false,
    required: ['timeout'],
    properties: {
      http: { description: 'URL to GET, as the host sees it (http:// or https://).', type: 'string', minLength: 1 },
      tcp: { description: 'host:port to connect to, as the host sees it.', type: 'string', minLength: 1 },
      status: {
        description: 'Healthy status: a code (200, the default), a class ("2xx"), or a list of them.',
        type: ['integer', 'string', 'array'],
        items: { type: ['integer', 'string'] },
      },
      contains: { description: 'Healthy only when the body (its first 64 KiB) contains this text.', type: 'string', minLength: 1 },
      headers: {
        description: 'Request headers; values expand ${VAR} (secrets are redacted).',
        type: 'object',
        additionalProperties: { type: 'string' },
      },
      insecure: { description: 'https: do not verify the certificate.', type: 'boolean' },
      timeout: { $ref: '#/definitions/duration' },
      interval: { $ref: '#/definitions/duration' },
    },
  },
  plan(spec, ctx) {
    const s = spec as {
      http?: string;
      tcp?: string;
      status?: unknown;
      contains?: string;
      headers?: Record<string, string>;
      insecure?: boolean;
      timeout: string;
      interval?: string;
    };
    const field = s.http !== undefined ? 'http' : 'tcp';
    const text = ctx.expand(String(s[field] ?? ''), field);
    const parsed = field === 'http' ? parseHttp(text) : parseTcp(text);
    if ('error' in parsed) {
      ctx.problems.add(`health ${parsed.error}`, ctx.fieldPos(field), parsed.hint);
      return undefined;
    }
    const timeoutMs = durationOf(ctx, s.timeout, 'timeout');
    const intervalMs = s.interval === undefined ? DEFAULT_INTERVAL_MS : durationOf(ctx, s.interval, 'interval');
    const st = s.status === undefined ? { rules: [{ code: 200 }] } : parseStatus(s.status);
    if ('error' in st) ctx.problems.add(`health ${st.error}`, ctx.fieldPos('status'), 'write e.g. 200, 2xx or [200, 204]');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.headers ?? {})) {
      const value = ctx.expand(String(v), 'headers');
      if (!HEADER_NAME.test(k)) ctx.problems.add(`health header ${JSON.stringify(k)} is not a valid header name`, ctx.fieldPos('headers'));
      // eslint-disable-next-line no-control-regex
      else if (/[\r\n\x00]/.test(value)) ctx.problems.add(`health header ${k}: the value contains a line break`, ctx.fieldPos('headers'));
      else headers[k.toLowerCase()] = value;
    }
    if (timeoutMs === undefined || intervalMs === undefined || 'error' in st) return undefined;
    const { target, ...probe } = parsed.ok;
    return {
      kind: 'health',
      index: ctx.action.index,
      title: ctx.action.name ?? `health ${target}`,
      pos: ctx.action.pos,
      ...probe,
      target,
      ...(field === 'http'
        ? {
            status: st.rules,
            ...(s.contains !== undefined ? { contains: ctx.expand(s.contains, 'contains') } : {}),
            ...(Object.keys(headers).length ? { headers } : {}),
            ...(s.insecure ? { insecure: true } : {}),
          }
        : {}),
      timeoutMs,
      intervalMs,
      maxAttempts: Math.max(1, Math.ceil(timeoutMs / intervalMs)),
      via: ctx.host.local ? 'local' : 'ssh',
    };
  },
  describe(e) {
    const from =
      e.via === 'ssh'
        ? 'from the host, through its SSH connection (direct-tcpip; nothing runs on the host)'
        : 'from the orchestrator (local host: a direct connection)';
    const what =
      e.probe === 'tcp'
        ? `tcp connect to ${e.target}: healthy when the connection opens`
        : `http GET ${e.target}: healthy on status ${statusText(e.status ?? [{ code: 200 }])}${e.contains !== undefined ? ` with a body containing ${JSON.stringify(e.contains)}` : ''}${e.tls ? (e.insecure ? ' (certificate NOT verified: insecure)' : ' (certificate verified)') : ''}`;
    const lines = [what, `  ${from}`];
    for (const [k, v] of Object.entries(e.headers ?? {})) lines.push(`  header ${k}: ${v}`);
    lines.push(
      `  an attempt every ${formatDuration(e.intervalMs)} for at most ${formatDuration(e.timeoutMs)} (at most ${e.maxAttempts} attempt${e.maxAttempts === 1 ? '' : 's'}; each waits at most ${formatDuration(Math.min(ATTEMPT_MAX_MS, e.timeoutMs))} for an answer)`,
    );
    return lines;
  },
  async run(e, rt) {
    const stop = AbortSignal.any([rt.signal, rt.stopSignal]);
    const t0 = Date.now();
    const deadline = t0 + e.timeoutMs;
    let last = '';
    const interrupted = (n: number) =>
      new ActionFailure(
        `health wait interrupted after ${formatDuration(Date.now() - t0)}, ${n} attempt${n === 1 ? '' : 's'}${last ? ` (last: ${e.target}${last.startsWith(':') ? '' : ' '}${last})` : ''}`,
      );
    for (let n = 1; ; n++) {
      if (stop.aborted) throw interrupted(n - 1);
      const ta = Date.now();
      let obs: Awaited<ReturnType<typeof probeOnce>>;
      try {
        obs = await probeOnce(e, rt.transport, Math.max(1, Math.min(ATTEMPT_MAX_MS, deadline - ta)), stop);
      } catch (x) {
        if (x instanceof ProbeAborted) throw interrupted(n - 1);
        throw x;
      }
      rt.attempt({ attempt: n, ok: obs.ok, message: obs.seen, durationMs: Date.now() - ta });
      if (obs.ok) return { status: 'ok', detail: `${e.target} ${obs.seen} (attempt ${n}, after ${formatDuration(Date.now() - t0)})` };
      last = /^answered /.test(obs.seen) ? obs.seen : `: ${obs.seen}`;
      const next = ta + e.intervalMs;
      if (next >= deadline || n >= e.maxAttempts)
        throw new ActionFailure(
          `${e.target}${last.startsWith(':') ? '' : ' '}${last} after ${formatDuration(Date.now() - t0)}, ${n} attempt${n === 1 ? '' : 's'} (timeout ${formatDuration(e.timeoutMs)})`,
        );
      try {
        await sleep(Math.max(0, next - Date.now()), undefined, { signal: stop });
      } catch {
        throw interrupted(n);
      }
    }
  },
};

function durationOf(ctx: PlanContext, raw: unknown, field: string): number | undefined {
  const ms = typeof raw === 'string' ? parseDuration(ctx.expand(raw, field)) : undefined;
  if (ms === undefined || ms <= 0) {
    ctx.problems.add(
      `health ${field}: ${JSON.stringify(raw)} is not a duration longer than 0`,
      ctx.fieldPos(field),
      'write e.g. 500ms, 30s or 5m',
    );
    return undefined;
  }
  return ms;
}
