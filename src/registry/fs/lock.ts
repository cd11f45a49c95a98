/**
 * A cross-process lock that also works on NFS-like shared storage: a lock DIRECTORY holding an
 * `owner` file. It is prepared under a private name with the owner file inside, then renamed
 * into place (atomic: exactly one process succeeds; a rename onto an existing, non-empty
 * directory fails), so a lock never exists without its owner.
 *
 * Protocol (security issue 11):
 *  - The owner file names the holder: pid, hostname, time, a random token, and the identity of
 *    the holder's process across PID namespaces — the boot id (/proc/sys/kernel/random/boot_id),
 *    the PID and time namespaces (readlink /proc/self/ns/pid, /proc/self/ns/time) and the
 *    process's start time (/proc/self/stat field 22, against pid reuse).
 *  - Heartbeat: while it holds the lock, the holder sets the owner file's mtime to "now" every
 *    staleMs/4 (only while the lock still carries its token). The owner file's mtime is the
 *    last sign of life.
 *  - A holder is PROVABLY DEAD only when it ran on the same boot AND in the same PID (and time)
 *    namespace as the judge AND its pid is gone there (or that pid now belongs to a process
 *    with another start time: reuse). Such a lock is broken at once. The hostname plays no
 *    part: containers and CI runners share hostnames, not PID namespaces.
 *  - Otherwise (another namespace, another machine, an owner file without that identity) only
 *    age may break it: stale = no heartbeat for `staleMs` (default 60 s). A lock directory
 *    without an owner file (left by an older Hades) is judged by the directory's mtime.
 *  - Breaking moves the lock directory aside atomically (rename) and re-reads the owner of
 *    what was moved: if it is not the stale owner that was judged (another waiter broke it
 *    first and a live process took it), it is put back.
 *  - A holder paused past the stale limit (SIGSTOP, a suspended VM) can lose its lock while it
 *    sleeps. `assertHeld()` detects that before a commit, but a check-then-write can still be
 *    overtaken, so the index commit itself is fenced (layout.ts commitIndex: every index
 *    generation is claimed exclusively with link(), readers and writers follow the highest one).
 *    The lock only serializes writers; correctness does not depend on it.
 *
 * Waiting is bounded (`timeoutMs`, default 30 s) and ends in a LockTimeoutError naming the owner.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, basename, join } from 'node:path';
import { RunError } from '../../errors.js';
import { isCode } from '../errno.js';

export interface LockOwner {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken. */
  created: string;
  token: string;
  /** Free text: what the lock is for (e.g. "push myapp:v1"). */
  purpose?: string;
  /** /proc/sys/kernel/random/boot_id of the holder's machine (absent: unknown, judged by age only). */
  bootId?: string;
  /** readlink /proc/self/ns/pid of the holder, e.g. "pid:[4026531836]". */
  pidNs?: string;
  /** readlink /proc/self/ns/time of the holder (absent on kernels without time namespaces). */
  timeNs?: string;
  /** Field 22 of the holder's /proc/self/stat (start time in clock ticks since boot). */
  startTime?: string;
}

export interface LockOptions {
  /** Give up waiting after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** A lock without a heartbeat for this long is stale and may be broken (default 60 000 ms). */
  staleMs?: number;
  /** First poll interval; doubles up to 100 ms, with jitter (default 5 ms). */
  pollMs?: number;
  purpose?: string;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const DEFAULT_STALE_LOCK_MS = 60_000;

export class LockTimeoutError extends RunError {
  constructor(
    readonly lockDir: string,
    readonly owner: LockOwner | null,
    readonly waitedMs: number,
    readonly staleMs: number,
  ) {
    const who = owner
      ? `held by pid ${owner.pid} on ${owner.hostname} since ${owner.created}${owner.purpose ? ` (${owner.purpose})` : ''}`
      : 'held (no owner information)';
    super(
      `timed out after ${(waitedMs / 1000).toFixed(1)} s waiting for the lock ${lockDir}: ${who}; ` +
        `it counts as stale once its process is gone (same machine and PID namespace) or after ${staleMs < 1000 ? `${staleMs} ms` : `${Math.round(staleMs / 1000)} s`} without a heartbeat — ` +
        `if you are sure no push is running, remove ${lockDir}`,
    );
    this.name = 'LockTimeoutError';
  }
}

/** The lock was broken by another process (judged stale) while this process held it. */
export class LockLostError extends RunError {
  constructor(readonly lockDir: string) {
    super(`lost the lock ${lockDir}: another process judged it stale and took it over; nothing was written`);
    this.name = 'LockLostError';
  }
}

export interface Lock {
  readonly dir: string;
  readonly owner: LockOwner;
  /** True while the lock directory still carries this holder's token. */
  stillHeld(): Promise<boolean>;
  /** Throws LockLostError unless `stillHeld()`. Call right before committing a write. */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

const HOST = hostname();

/** How this process is identified across PID namespaces (see the protocol above). */
export interface ProcessIdentity {
  bootId?: string;
  pidNs?: string;
  timeNs?: string;
  startTime?: string;
  /** /proc shows the pids of this process's own PID namespace (so /proc/<pid>/stat is about `pid`). */
  procIsOwnNamespace: boolean;
}

function readOr(f: () => string): string | undefined {
  try {
    return f().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat; the command name may contain spaces and parentheses. */
function statField(pid: number | 'self', n: number): string | undefined {
  const text = readOr(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (!text) return undefined;
  if (n === 1) return text.slice(0, text.indexOf(' '));
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return rest[n - 3];
}

let identity: ProcessIdentity | undefined;
export function processIdentity(): ProcessIdentity {
  if (identity) return identity;
  const nspid = readOr(() => readFileSync('/proc/self/status', 'utf8'))
    ?.split('\n')
    .find((l) => l.startsWith('NSpid:'))
    ?.slice(6)
    .trim()
    .split(/\s+/);
  const bootId = readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const pidNs = readOr(() => readlinkSync('/proc/self/ns/pid'));
  const timeNs = readOr(() => readlinkSync('/proc/self/ns/time'));
  const startTime = statField('self', 22);
  identity = {
    ...(bootId ? { bootId } : {}),
    ...(pidNs ? { pidNs } : {}),
    ...(timeNs ? { timeNs } : {}),
    ...(startTime ? { startTime } : {}),
    // NSpid lists the pid from the namespace of the /proc mount inward: one entry = ours.
    procIsOwnNamespace: nspid !== undefined && nspid.length === 1 && nspid[0] === String(process.pid),
  };
  return identity;
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
    if (!isCode(e, 'EINVAL', 'ENOTSUP', 'EISDIR', 'EBADF', 'EPERM')) throw e;
  } finally {
    await fh?.close();
  }
}

/** The owner of the lock at `lockDir`, or null when there is no lock / no readable owner file. */
export async function readLockOwner(lockDir: string): Promise<LockOwner | null> {
  try {
    const o = JSON.parse(await fsp.readFile(join(lockDir, 'owner'), 'utf8')) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || typeof o.hostname !== 'string' || typeof o.created !== 'string' || typeof o.token !== 'string')
      return null;
    return o as LockOwner;
  } catch {
    return null;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return !isCode(e, 'ESRCH');
  }
}

/**
 * True only when the owner provably no longer runs: same boot, same PID and time namespace as
 * this process, and its pid is gone (or belongs to a process started at another time).
 */
export function provablyDead(owner: LockOwner, me: ProcessIdentity = processIdentity()): boolean {
  if (!owner.bootId || !owner.pidNs || owner.bootId !== me.bootId || owner.pidNs !== me.pidNs) return false;
  if ((owner.timeNs ?? null) !== (me.timeNs ?? null)) return false;
  if (owner.pid === process.pid) return owner.startTime !== undefined && me.startTime !== undefined && owner.startTime !== me.startTime;
  if (!pidAlive(owner.pid)) return true;
  if (!me.procIsOwnNamespace || owner.startTime === undefined) return false;
  const now = statField(owner.pid, 22);
  return now !== undefined && now !== owner.startTime; // the pid was reused
}

/** Why a lock is stale, or null when it must be respected. */
async function staleReason(lockDir: string, owner: LockOwner | null, staleMs: number): Promise<string | null> {
  if (owner) {
    if (provablyDead(owner)) return `its holder (pid ${owner.pid} on ${owner.hostname}, this machine and PID namespace) is gone`;
    let beat: number;
    try {
      beat = (await fsp.stat(join(lockDir, 'owner'))).mtimeMs;
    } catch {
      return null; // vanished: the caller simply retries
    }
    const age = Date.now() - beat;
    if (age > staleMs) return `its holder has shown no heartbeat for ${Math.round(age / 1000)} s`;
    return null;
  }
  try {
    const st = await fsp.stat(lockDir);
    if (Date.now() - st.mtimeMs > staleMs) return 'it has no owner file and is old';
  } catch {
    return null; // vanished: the caller simply retries
  }
  return null;
}

/** Writes the owner file inside the lock directory atomically (readers never see half of it). */
async function writeOwner(dir: string, owner: LockOwner): Promise<void> {
  const tmp = join(dir, `.owner.tmp-${owner.token}`);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(owner)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, join(dir, 'owner'));
  await fsyncDir(dir);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Moves a stale lock away. Returns when the lock named by `staleToken` is gone (by us or anyone).
 * If what we moved turns out to be a different (live) lock, it is put back.
 */
async function breakLock(lockDir: string, stale: LockOwner | null): Promise<void> {
  const dead = `${lockDir}.dead-${randomBytes(6).toString('hex')}`;
  try {
    await fsp.rename(lockDir, dead);
  } catch (e) {
    if (isCode(e, 'ENOENT')) return;
    throw e;
  }
  const moved = await readLockOwner(dead);
  if ((moved?.token ?? null) === (stale?.token ?? null)) {
    await fsp.rm(dead, { recursive: true, force: true });
    return;
  }
  // We raced another breaker and moved a live lock: put it back if its place is still free.
  try {
    await fsp.rename(dead, lockDir);
  } catch {
    // Someone took the lock meanwhile; the holder we displaced detects it in assertHeld().
    await fsp.rm(dead, { recursive: true, force: true });
  }
}

/** Removes `.lock.dead-*` / `.lock.new-*` directories left by processes that crashed while breaking, releasing or taking a lock. */
async function sweepLeftovers(lockDir: string, staleMs: number): Promise<void> {
  const parent = dirname(lockDir);
  const prefix = `${basename(lockDir)}.`;
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(`${prefix}dead-`) && !n.startsWith(`${prefix}new-`)) continue;
    const p = join(parent, n);
    // Dead and staging dirs are private to the process that made them; one older than staleMs is abandoned.
    const st = await fsp.stat(p).catch(() => null);
    if (st && Date.now() - st.mtimeMs > staleMs) await fsp.rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function acquireLock(lockDir: string, opts: LockOptions = {}): Promise<Lock> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const staleMs = opts.staleMs ?? DEFAULT_STALE_LOCK_MS;
  let poll = opts.pollMs ?? 5;
  const token = randomBytes(12).toString('hex');
  const { bootId, pidNs, timeNs, startTime } = processIdentity();
  const owner: LockOwner = {
    pid: process.pid,
    hostname: HOST,
    created: new Date().toISOString(),
    token,
    ...(opts.purpose ? { purpose: opts.purpose } : {}),
    ...(bootId ? { bootId } : {}),
    ...(pidNs ? { pidNs } : {}),
    ...(timeNs ? { timeNs } : {}),
    ...(startTime ? { startTime } : {}),
  };
  const ownerFile = join(lockDir, 'owner');
  const heartbeat = async (): Promise<void> => {
    const now = new Date();
    await fsp.utimes(ownerFile, now, now);
  };
  const start = Date.now();
  // The lock directory appears with its owner file already inside: it is prepared under a
  // private name and renamed into place (atomic; a rename onto an existing, non-empty lock
  // fails). A holder killed at any point leaves either no lock or a lock naming its pid —
  // never an ownerless one that others could only judge by age.
  const staging = `${lockDir}.new-${token}`;
  let stagedAt = 0;
  const stage = async (): Promise<void> => {
    await fsp.rm(staging, { recursive: true, force: true });
    await fsp.mkdir(staging);
    owner.created = new Date().toISOString();
    await writeOwner(staging, owner);
    stagedAt = Date.now();
  };
  try {
    for (;;) {
      // Others judge the lock by its owner file's mtime (the heartbeat): refresh a staged owner
      // that has been waiting, well within the stale limit.
      if (Date.now() - stagedAt > Math.min(1_000, staleMs / 4)) await stage();
      let made = false;
      // rename() would replace an EMPTY directory: an ownerless lock an older Hades made (it
      // created the directory first) must be judged by its age instead, so look first. Two of
      // us racing past this check cannot both win: ours are never empty.
      const taken = await fsp.lstat(lockDir).then(
        () => true,
        (e: unknown) => {
          if (isCode(e, 'ENOENT')) return false;
          throw e;
        },
      );
      if (!taken) {
        try {
          await fsp.rename(staging, lockDir);
          made = true;
        } catch (e) {
          if (!isCode(e, 'ENOTEMPTY', 'EEXIST')) throw e;
        }
      }
      if (made) {
        stagedAt = 0;
        await fsyncDir(dirname(lockDir));
        if ((await readLockOwner(lockDir))?.token === token) {
          await heartbeat().catch(() => undefined);
          break;
        }
        continue;
      }
      const current = await readLockOwner(lockDir);
      const reason = await staleReason(lockDir, current, staleMs);
      if (reason) {
        await breakLock(lockDir, current);
        continue;
      }
      const waited = Date.now() - start;
      if (waited >= timeoutMs) throw new LockTimeoutError(lockDir, current, waited, staleMs);
      await sleep(Math.min(poll, timeoutMs - waited) * (0.5 + Math.random()));
      poll = Math.min(poll * 2, 100);
    }
  } finally {
    if (stagedAt !== 0) await fsp.rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
  await sweepLeftovers(lockDir, staleMs);

  const stillHeld = async (): Promise<boolean> => (await readLockOwner(lockDir))?.token === token;
  // The heartbeat: while the lock carries our token, its owner file's mtime is kept fresh. (A
  // beat racing a takeover can at worst freshen the new holder's lock once: it is live anyway.)
  let beating = false;
  const timer = setInterval(
    () => {
      if (beating) return;
      beating = true;
      void (async () => {
        if (await stillHeld()) await heartbeat();
      })()
        .catch(() => undefined)
        .finally(() => (beating = false));
    },
    Math.max(10, Math.floor(staleMs / 4)),
  );
  timer.unref();
  let released = false;
  return {
    dir: lockDir,
    owner,
    stillHeld,
    async assertHeld() {
      if (!(await stillHeld())) throw new LockLostError(lockDir);
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      if (!(await stillHeld())) return;
      const dead = `${lockDir}.dead-${token}`;
      try {
        await fsp.rename(lockDir, dead);
      } catch (e) {
        if (isCode(e, 'ENOENT')) return;
        throw e;
      }
      await fsp.rm(dead, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` holding the lock; always releases it. */
export async function withLock<T>(lockDir: string, fn: (lock: Lock) => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(lockDir, opts);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
