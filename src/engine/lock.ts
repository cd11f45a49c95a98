/**
 * Host deploy locks (issue 14): before the first step a run locks every host it will touch
 * and fails with exit 5, naming each holder, when another run holds one. Released at the end
 * of every run that took them. A run killed with kill -9 leaves its locks: no automatic
 * takeover (`hades lock status|release --force`). The commands come from src/shell/lock.ts
 * and are planned before anything runs, so `--dry-run` shows them exactly (RunPlan.locks).
 *
 * Acquisition costs one round trip when nobody else holds the hosts (issue 16):
 *  1. Parallel phase: every lock is tried at once, with the record `state: trying`.
 *     All taken → the run proceeds; `confirm` (also in parallel, not awaited before step 1,
 *     awaited before any release) rewrites each record to `state: held`.
 *  2. Any host held, or a failing lock command: everything taken is given back. A holder whose
 *     record says `held` (final), or a failed command → the run fails; every host was tried,
 *     so every holder is named. Only holders still `trying` (another run in its parallel
 *     phase, or a record being written) → ordered phase.
 *  3. Ordered phase: one host after another in inventory order, record `state: held`. A lock
 *     that is `trying` is waited for (polled every 100 ms, at most 10 s, reported as
 *     lock.held "…waiting"): it resolves within a round trip or two (confirmed or given back).
 *     A `held` lock stops the run as before (give back, read the rest, fail).
 *
 * Why of two overlapping runs A and B exactly one proceeds. At most one: a run proceeds only
 * holding all its locks, and mkdir is atomic. At least one: a run fails only on a `held` lock
 * (or a broken lock command), never on a `trying` one. A `held` lock is either a confirmed one
 * — its run took everything in its parallel phase and proceeds — or an ordered-phase one. So
 * if both failed, each failed on an ordered-phase lock of the other: A failed at x held by B
 * while B still tried hosts after x, and B failed at y held by A while A still tried hosts
 * after y; ordered runs go in the same inventory order, so x was taken by B before B tried y
 * (x < y) and y by A before A tried x (y < x): impossible. The cases the protocol adds:
 * both in the parallel phase (each sees the other's `trying` locks, both give back, both go
 * ordered, and wait out each other's leftovers); one in its ordered phase while the other's
 * parallel phase runs (the ordered one waits on `trying`; the parallel one sees an ordered
 * `held` lock or a `trying` one, gives back, and fails or goes ordered). No run waits while
 * holding a `trying` lock, so waits form no cycle; a `trying` lock left by a run killed in
 * its parallel phase makes the others fail after the 10 s wait, naming it.
 */
import { join } from 'node:path';
import type { Hadesfile, HostSpec } from '../config/model.js';
import type { PlannedHost, PlannedLock, RunPlan } from '../plan/types.js';
import {
  DEFAULT_LOCK_DIR,
  lockAcquireCommand,
  lockConfirmCommand,
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
      confirm: lockConfirmCommand(dir, h.host, plan.runId),
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
  /** `trying` while its run is in the parallel phase, `held` once final (absent in records of older versions: final). */
  state?: string;
}

export type LockPhase = 'trying' | 'held';

export function lockRecordText(r: Required<Omit<LockRecord, 'state'>>, state?: LockPhase): string {
  return `run: ${r.run}\nplan: ${r.plan}\nby: ${r.by}\npid: ${r.pid}\nstarted: ${r.started}\n${state ? `state: ${state}\n` : ''}`;
}

/** A lock that will resolve by itself within a round trip or two: its run is in the parallel phase, or its record is being written. */
export function isTransient(r: LockRecord): boolean {
  return !r.run || r.state === 'trying';
}

export function parseLockRecord(lines: string[]): LockRecord {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const m = /^(run|plan|by|pid|started|state): (.*)$/.exec(l);
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
  /** Settles when the parallel phase's locks are confirmed (`state: held`): await it before releasing them. */
  confirmed: Promise<void>;
  /** Which phase decided: `parallel` (one round trip) or `ordered` (the fallback). */
  phase: 'parallel' | 'ordered';
}

export interface LockEvents {
  acquired(host: string, path: string): void;
  held(host: string, holder: string): void;
  failed(host: string, message: string): void;
  released(host: string): void;
}

export interface AcquireOptions {
  /** How long the ordered phase waits for a `trying` lock (default 10 s), and how often it looks (default 100 ms). */
  waitMs?: number;
  pollMs?: number;
}

type Answer = Awaited<ReturnType<typeof runLockCommand>>;

/**
 * Takes the locks (the protocol is in this file's header). An unreachable host is left
 * unlocked and reported: nothing can run there either (its connection error is kept for
 * the run). `record(state)` is the run's lock record with that state line.
 */
export async function acquireLocks(
  locks: PlannedLock[],
  transportFor: (host: string) => Transport,
  record: (state: LockPhase) => string,
  ev: LockEvents,
  opts: AcquireOptions = {},
): Promise<AcquireResult> {
  const res: AcquireResult = { taken: [], held: [], errors: [], confirmed: Promise.resolve(), phase: 'parallel' };
  const take = (l: PlannedLock, state: LockPhase) => runLockCommand(transportFor(l.host), lockRecordPrefix(record(state)) + l.acquire);
  const unreachable = (l: PlannedLock, r: { error: string; unreachable: boolean }) => {
    res.errors.push({ host: l.host, message: r.error, unreachable: r.unreachable });
    ev.failed(l.host, r.unreachable ? `${r.error} (not locked: the host is unreachable, so nothing runs there either)` : r.error);
  };
  const unexpected = (first: string) => `unexpected answer from the lock command: ${JSON.stringify(first)}`;

  // 1. Parallel phase.
  const answers: Answer[] = await Promise.all(locks.map((l) => take(l, 'trying')));
  const got: PlannedLock[] = [];
  const holders: Array<{ host: string; record: LockRecord }> = [];
  let fatal = false;
  answers.forEach((r, i) => {
    const l = locks[i]!;
    if ('error' in r) {
      if (!r.unreachable) fatal = true;
    } else if (r.first === 'locked') got.push(l);
    else if (r.first === 'held') holders.push({ host: l.host, record: parseLockRecord(r.rest) });
    else fatal = true;
  });
  if (!fatal && !holders.length) {
    answers.forEach((r, i) => {
      if ('error' in r) unreachable(locks[i]!, r);
    });
    for (const l of got) ev.acquired(l.host, l.path);
    res.taken = got;
    res.confirmed = Promise.all(
      got.map(async (l) => {
        const r = await runLockCommand(transportFor(l.host), lockRecordPrefix(record('held')) + l.confirm);
        if ('error' in r || r.first !== 'confirmed')
          ev.failed(l.host, `cannot confirm the lock (it stays marked trying): ${'error' in r ? r.error : r.first}`);
      }),
    ).then(() => undefined);
    return res;
  }
  await giveBack(got, transportFor, ev);
  if (fatal || holders.some((h) => !isTransient(h.record))) {
    answers.forEach((r, i) => {
      const l = locks[i]!;
      if ('error' in r) unreachable(l, r);
      else if (r.first !== 'locked' && r.first !== 'held') {
        res.errors.push({ host: l.host, message: unexpected(r.first), unreachable: false });
        ev.failed(l.host, unexpected(r.first));
      }
    });
    for (const h of holders) ev.held(h.host, describeHolder(h.record));
    res.held = holders;
    return res;
  }

  // 3. Ordered phase: only runs in their parallel phase were in the way.
  res.phase = 'ordered';
  const waitMs = opts.waitMs ?? 10_000;
  const pollMs = opts.pollMs ?? 100;
  let i = 0;
  for (; i < locks.length; i++) {
    const l = locks[i]!;
    const t0 = Date.now();
    let r = await take(l, 'held');
    let waited = false;
    while (!('error' in r) && r.first === 'held' && isTransient(parseLockRecord(r.rest)) && Date.now() - t0 < waitMs) {
      if (!waited)
        ev.held(
          l.host,
          `${describeHolder(parseLockRecord(r.rest))}: it is taking its locks right now; waiting (at most ${waitMs / 1000}s)`,
        );
      waited = true;
      await new Promise((ok) => setTimeout(ok, pollMs));
      r = await take(l, 'held');
    }
    if ('error' in r) {
      unreachable(l, r);
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
      res.errors.push({ host: l.host, message: unexpected(r.first), unreachable: false });
      break;
    }
  }
  if (i < locks.length) {
    await releaseLocks(res.taken, transportFor, ev);
    res.taken = [];
    const rest = locks.slice(i + 1);
    const states = await Promise.all(rest.map((l) => lockStatus(transportFor(l.host), l.dir)));
    states.forEach((s, k) => {
      if (s.state !== 'held') return;
      res.held.push({ host: rest[k]!.host, record: s.record });
      ev.held(rest[k]!.host, describeHolder(s.record));
    });
  }
  return res;
}

/** Gives back the parallel phase's locks after a conflict (they were never announced: only a failure is reported). */
async function giveBack(taken: PlannedLock[], transportFor: (host: string) => Transport, ev: LockEvents): Promise<void> {
  await releaseLocks(taken, transportFor, { ...ev, released: () => undefined });
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
