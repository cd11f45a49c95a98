/**
 * `hades lock status [plan]` and `hades lock release --force [plan]` (issue 14): the host
 * locks of a plan's hosts (or of every inventory host), narrowed by --limit. Status is
 * read-only and shows each holder and its age; exit 1 when a host could not be read
 * (unreachable, …). Release --force removes the locks whoever holds them — there is no
 * automatic takeover — and records what it removed in an audit log (.hades/runs/).
 */
import { hostname, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { durationField } from '../config/duration.js';
import type { Hadesfile } from '../config/model.js';
import { describeHolder, forceRelease, lockDirOf, lockStatus, touchedHosts, type LockState } from '../engine/lock.js';
import { EXIT, UserError } from '../errors.js';
import { lockName } from '../shell/lock.js';
import type { Transport } from '../transport/types.js';
import { makeRunId, preparePlan, readSelection } from './context.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';
import { VERSION } from './version.js';

export interface LockOptions extends CommonOptions {
  limit: string[];
  knownHosts: string[];
  connectTimeout?: string;
  output: 'plain' | 'json';
  force?: boolean;
  logDir?: string;
}

/** The hosts the command looks at: the plan's (as the run would lock them), else the inventory's; --limit narrows. */
async function lockHosts(plan: string | undefined, opts: LockOptions): Promise<{ hf: Hadesfile; hosts: string[] }> {
  const hf = loadFiles(opts);
  if (plan) {
    const p = await preparePlan(plan, opts, hf);
    return { hf, hosts: touchedHosts(hf, p.plan).map((h) => h.host) };
  }
  const sel = opts.limit.length ? new Set(readSelection(hf, opts.limit).hosts) : undefined;
  return { hf, hosts: [...hf.hosts.keys()].filter((h) => !sel || sel.has(h)) };
}

async function withTransports<T>(
  hf: Hadesfile,
  hosts: string[],
  opts: LockOptions,
  fn: (t: (h: string) => Transport) => Promise<T>,
): Promise<T> {
  const { HostTransports } = await import('../transport/hosts.js');
  const ssh = hosts.filter((h) => !hf.hosts.get(h)?.local);
  let pool: import('../transport/pool.js').TransportPool | undefined;
  if (ssh.length) {
    const { TransportPool, defaultKnownHostsFile } = await import('../transport/pool.js');
    const connectTimeoutMs = opts.connectTimeout !== undefined ? durationField(opts.connectTimeout) : undefined;
    pool = new TransportPool({
      hosts: hf.hosts,
      knownHostsFiles: [defaultKnownHostsFile(), ...hf.knownHosts, ...opts.knownHosts.map((f) => resolve(process.cwd(), f))],
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
      localCwd: hf.baseDir,
    });
  }
  const ht = pool?.hosts ?? new HostTransports(hf.baseDir);
  try {
    return await fn((h) => ht.get(h, hf.hosts.get(h)));
  } finally {
    await pool?.closeAll();
    await ht.closeLocal();
  }
}

interface Row {
  host: string;
  path: string;
  state: LockState;
}

function rowJson(r: Row, now: number): Record<string, unknown> {
  const s = r.state;
  if (s.state === 'held') {
    const t = s.record.started ? Date.parse(s.record.started) : NaN;
    return { host: r.host, lock: r.path, state: 'held', holder: s.record, ...(Number.isNaN(t) ? {} : { ageMs: Math.max(0, now - t) }) };
  }
  if (s.state === 'error') return { host: r.host, lock: r.path, state: 'error', error: s.message };
  return { host: r.host, lock: r.path, state: 'free' };
}

async function readAll(
  hf: Hadesfile,
  hosts: string[],
  opts: LockOptions,
  op: (t: Transport, dir: string) => Promise<LockState>,
): Promise<Row[]> {
  return withTransports(hf, hosts, opts, (tf) =>
    Promise.all(
      hosts.map(async (host) => {
        const dir = lockDirOf(hf.hosts.get(host), hf.baseDir);
        return { host, path: `${dir}/${lockName(host)}`, state: await op(tf(host), dir) };
      }),
    ),
  );
}

export async function lockStatusCommand(plan: string | undefined, opts: LockOptions): Promise<number> {
  const { hf, hosts } = await lockHosts(plan, opts);
  const rows = await readAll(hf, hosts, opts, lockStatus);
  const now = Date.now();
  if (opts.output === 'json') process.stdout.write(`${JSON.stringify({ hosts: rows.map((r) => rowJson(r, now)) })}\n`);
  else {
    const w = Math.max(4, ...rows.map((r) => r.host.length));
    for (const r of rows) {
      const s = r.state;
      const what = s.state === 'held' ? `held by ${describeHolder(s.record, now)}` : s.state === 'error' ? `error: ${s.message}` : 'free';
      process.stdout.write(`${r.host.padEnd(w)}  ${what}\n`);
    }
    const held = rows.filter((r) => r.state.state === 'held').length;
    process.stdout.write(
      `${rows.length} host(s): ${held} locked, ${rows.filter((r) => r.state.state === 'free').length} free${rows.some((r) => r.state.state === 'error') ? `, ${rows.filter((r) => r.state.state === 'error').length} unreadable` : ''}\n`,
    );
  }
  return rows.some((r) => r.state.state === 'error') ? EXIT.failed : EXIT.ok;
}

export async function lockReleaseCommand(plan: string | undefined, opts: LockOptions): Promise<number> {
  if (!opts.force)
    throw new UserError({
      message: 'lock release needs --force',
      hint: 'it removes the locks whoever holds them: check first with `hades lock status` that the holding run is gone (killed), then run `hades lock release --force --limit HOST`',
    });
  const { hf, hosts } = await lockHosts(plan, opts);
  const runId = makeRunId();
  const { AuditSink } = await import('../report/audit.js');
  const logDir = opts.logDir
    ? isAbsolute(opts.logDir)
      ? opts.logDir
      : resolve(process.cwd(), opts.logDir)
    : join(hf.baseDir, '.hades', 'runs');
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* keep $USER */
  }
  const audit = new AuditSink(logDir, runId, {
    hades: VERSION,
    command: 'lock release --force',
    user,
    host: hostname(),
    cwd: process.cwd(),
    argv: process.argv.slice(2),
    ...(plan ? { plan } : {}),
    files: hf.files,
    hosts,
  });
  const now = Date.now();
  try {
    const rows = await readAll(hf, hosts, opts, forceRelease);
    for (const r of rows) {
      const s = r.state;
      const base = { runId, ts: new Date().toISOString(), host: r.host };
      if (s.state === 'held')
        audit.event({
          ...base,
          type: 'lock.released',
          status: 'forced',
          message: `${r.path}: was held by ${describeHolder(s.record, now)}`,
        });
      else if (s.state === 'error') audit.event({ ...base, type: 'lock.failed', message: s.message });
    }
    if (opts.output === 'json')
      process.stdout.write(
        `${JSON.stringify({ runId, hosts: rows.map((r) => ({ ...rowJson(r, now), state: r.state.state === 'held' ? 'released' : r.state.state })) })}\n`,
      );
    else {
      const w = Math.max(4, ...rows.map((r) => r.host.length));
      for (const r of rows) {
        const s = r.state;
        const what =
          s.state === 'held'
            ? `released (was held by ${describeHolder(s.record, now)})`
            : s.state === 'error'
              ? `error: ${s.message}`
              : 'free (nothing to release)';
        process.stdout.write(`${r.host.padEnd(w)}  ${what}\n`);
      }
    }
    return rows.some((r) => r.state.state === 'error') ? EXIT.failed : EXIT.ok;
  } finally {
    await audit.close();
    if (opts.output !== 'json') process.stderr.write(`audit log: ${audit.path}\n`);
  }
}
