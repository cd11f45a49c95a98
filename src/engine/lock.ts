/**
 * Host deploy locks (issue 14): before the first step a run locks every host it will touch,
 * one command per host, in inventory order, stopping at the first host another run holds
 * (ordered locking: of two overlapping runs, exactly one gets all its hosts). It then gives
 * back what it took, reads (read-only) who holds the hosts it did not try, and fails with
 * exit 5 naming each holder. Released at the end of every run that took them. A run killed
 * with kill -9 leaves its locks: no automatic takeover (`hades lock status|release --force`).
 *
 * The commands come from src/shell/lock.ts and are planned before anything runs, so
 * `--dry-run` shows them exactly (RunPlan.locks).
 */
import { join } from 'node:path';
import type { Hadesfile, HostSpec } from '../config/model.js';
import type { PlannedHost, PlannedLock, RunPlan } from '../plan/types.js';
import {
  DEFAULT_LOCK_DIR,
  lockAcquireCommand,
  lockRecordPrefix,
  lockForceReleaseCommand,
  lockName,
  lockReleaseCommand,
  lockStatusCommand,
} from '../shell/lock.js';
import { TransportError, type Transport } from '../transport/types.js';

export type { PlannedLock } from '../plan/types.js';

/** Where a host's lock lives: `lock_dir:`, else ~/.hades/locks (SSH) or <project>/.hades/locks (local). */
export function lockDirOf(spec: HostSpec | undefined, baseDir: string): string {
  if (spec?.lockDir) return spec.lockDir;
  return !spec || spec.local ? join(baseDir, '.hades', 'locks') : DEFAULT_LOCK_DIR;
}

/** The hosts a plan touches (after --limit), in inventory order, each once. */
export function touchedHosts(hf: Hadesfile, plan: RunPlan): PlannedHost[] {
  const seen = new Map<string, PlannedHost>();
  for (const s of plan.steps) for (const b of s.batches) for (const h of b.hosts) if (!seen.has(h.host)) seen.set(h.host, h);
  const order = (h: string) => hf.hosts.get(h)?.order ?? -1;
  return [...seen.values()].sort((a, b) => order(a.host) - order(b.host));
}

/** The lock commands for each host the plan touches (what --dry-run shows and the run executes). */
export function planLocks(hf: Hadesfile, plan: RunPlan): PlannedLock[] {
  return touchedHosts(hf, plan).map((h) => {
    const dir = lockDirOf(hf.hosts.get(h.host), hf.baseDir);
    return {
      host: h.host,
      transport: h.transport,
      dir,
      path: `${dir}/${lockName(h.host)}`,
      acquire: lockAcquireCommand(dir, h.host),
      release: lockReleaseCommand(dir, h.host, plan.runId),
    };
  });
}

/** The record a lock holds (`key: value` lines), and its parsed form. */
export interface LockRecord {
  run?: string;
  plan?: string;
  by?: string;
  pid?: string;
  started?: string;
}

export function lockRecordText(r: Required<LockRecord>): string {
  return `run: ${r.run}\nplan: ${r.plan}\nby: ${r.by}\npid: ${r.pid}\nstarted: ${r.started}\n`;
}

export function parseLockRecord(lines: string[]): LockRecord {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const m = /^(run|plan|by|pid|started): (.*)$/.exec(l);
    if (m) out[m[1]!] = m[2]!;
  }
  return out as LockRecord;
}

/** "run R (plan P, by u@m, pid N, since T, 3m ago)". */
export function describeHolder(r: LockRecord, now = Date.now()): string {
  if (!r.run) return 'a run whose lock record is missing or still being written';
  const t = r.started ? Date.parse(r.started) : NaN;
  const age = Number.isNaN(t) ? '' : `, ${ageText(now - t)} ago`;
  return `run ${r.run} (plan ${r.plan ?? '?'}, by ${r.by ?? '?'}, pid ${r.pid ?? '?'}, since ${r.started ?? '?'}${age})`;
}

export function ageText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export type LockState =
  | { state: 'free' }
  | { state: 'held'; record: LockRecord }
  | { state: 'error'; message: string; unreachable: boolean };

/** Runs a lock command and reads its answer: first line free|held|locked|released…, then the record. */
async function runLockCommand(
  t: Transport,
  command: string,
  stdin?: string,
  signal?: AbortSignal,
): Promise<{ first: string; rest: string[] } | { error: string; unreachable: boolean }> {
  try {
    const r = await t.exec(command, { ...(stdin !== undefined ? { stdin } : {}), ...(signal ? { signal } : {}) });
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    if (r.exitCode !== 0)
      return { error: (r.stderr.trim() || `the lock command exited ${r.exitCode ?? r.signal}`).split('\n').pop()!, unreachable: false };
    return { first: lines[0] ?? '', rest: lines.slice(1) };
  } catch (e) {
    const msg = (e as Error).message;
    return { error: msg.startsWith(`${t.name}: `) ? msg.slice(t.name.length + 2) : msg, unreachable: e instanceof TransportError };
  }
}

export interface AcquireResult {
  /** Hosts locked by this run (to release at the end). */
  taken: PlannedLock[];
  /** Hosts another run holds, with the holder (inventory order). */
  held: Array<{ host: string; record: LockRecord }>;
  /** Hosts whose lock command failed (untrusted lock_dir…), or that could not be reached. */
  errors: Array<{ host: string; message: string; unreachable: boolean }>;
}

export interface LockEvents {
  acquired(host: string, path: string): void;
  held(host: string, holder: string): void;
  failed(host: string, message: string): void;
  released(host: string): void;
}

/**
 * Takes the locks in order. An unreachable host is left unlocked and reported: nothing can
 * run there either (its connection error is kept for the run). A host held by another run,
 * or a failing lock command, stops the acquisition: what was taken is released, and the
 * hosts not yet tried are read (status only) so every holder is named.
 */
export async function acquireLocks(
  locks: PlannedLock[],
  transportFor: (host: string) => Transport,
  record: string,
  ev: LockEvents,
): Promise<AcquireResult> {
  const res: AcquireResult = { taken: [], held: [], errors: [] };
  let i = 0;
  for (; i < locks.length; i++) {
    const l = locks[i]!;
    const r = await runLockCommand(transportFor(l.host), lockRecordPrefix(record) + l.acquire);
    if ('error' in r) {
      res.errors.push({ host: l.host, message: r.error, unreachable: r.unreachable });
      ev.failed(l.host, r.unreachable ? `${r.error} (not locked: the host is unreachable, so nothing runs there either)` : r.error);
      if (r.unreachable) continue;
      break;
    }
    if (r.first === 'locked') {
      res.taken.push(l);
      ev.acquired(l.host, l.path);
    } else if (r.first === 'held') {
      const rec = parseLockRecord(r.rest);
      res.held.push({ host: l.host, record: rec });
      ev.held(l.host, describeHolder(rec));
      break;
    } else {
      res.errors.push({ host: l.host, message: `unexpected answer from the lock command: ${JSON.stringify(r.first)}`, unreachable: false });
      break;
    }
  }
  if (i < locks.length) {
    await releaseLocks(res.taken, transportFor, ev);
    res.taken = [];
    for (const l of locks.slice(i + 1)) {
      const s = await lockStatus(transportFor(l.host), l.dir);
      if (s.state === 'held') {
        res.held.push({ host: l.host, record: s.record });
        ev.held(l.host, describeHolder(s.record));
      }
    }
  }
  return res;
}

/** Gives back every lock taken (concurrently); a failure is reported, the lock stays. */
export async function releaseLocks(taken: PlannedLock[], transportFor: (host: string) => Transport, ev: LockEvents): Promise<string[]> {
  const failed: string[] = [];
  await Promise.all(
    taken.map(async (l) => {
      const r = await runLockCommand(transportFor(l.host), l.release);
      if ('error' in r) {
        failed.push(l.host);
        ev.failed(l.host, `cannot release the lock: ${r.error}`);
      } else if (r.first === 'released') ev.released(l.host);
      else {
        failed.push(l.host);
        ev.failed(l.host, "the lock was no longer this run's when it was released (removed with release --force?)");
      }
    }),
  );
  return failed;
}

/** Reads one host's lock (read-only); `t.name` is the host's inventory name. */
export async function lockStatus(t: Transport, dir: string): Promise<LockState> {
  const r = await runLockCommand(t, lockStatusCommand(dir, t.name));
  if ('error' in r) return { state: 'error', message: r.error, unreachable: r.unreachable };
  return r.first === 'held' ? { state: 'held', record: parseLockRecord(r.rest) } : { state: 'free' };
}

/** Removes one host's lock whoever holds it; says what it removed. */
export async function forceRelease(t: Transport, dir: string): Promise<LockState> {
  const r = await runLockCommand(t, lockForceReleaseCommand(dir, t.name));
  if ('error' in r) return { state: 'error', message: r.error, unreachable: r.unreachable };
  return r.first === 'held' ? { state: 'held', record: parseLockRecord(r.rest) } : { state: 'free' };
}
