import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  acquireLock,
  LockLostError,
  LockTimeoutError,
  processIdentity,
  provablyDead,
  readLockOwner,
  withLock,
} from '../../src/registry/fs/lock.js';
import { askHeld, kill9, startLockHolder } from '../fixtures/registry/procs.js';
import { cleanupRegistryBuild } from '../fixtures/registry/build.js';

let tmp: string;
let n = 0;
const fresh = (): string => {
  const d = join(tmp, `l${n++}`);
  mkdirSync(d);
  return d;
};
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-lock-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  cleanupRegistryBuild();
});

describe('lock directory', () => {
  test('mutual exclusion: 20 concurrent read-modify-write sections lose no update', async () => {
    const dir = fresh();
    const counter = join(dir, 'counter');
    writeFileSync(counter, '0');
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withLock(join(dir, '.lock'), async () => {
          const v = Number(readFileSync(counter, 'utf8'));
          await new Promise((r) => setTimeout(r, 2));
          writeFileSync(counter, String(v + 1));
        }),
      ),
    );
    expect(readFileSync(counter, 'utf8')).toBe('20');
    expect(readdirSync(dir)).toEqual(['counter']); // no lock, staging or dead dirs left
  });

  test('the lock directory holds an owner file (pid, hostname, time, token, boot id, PID namespace, start time)', async () => {
    const lockDir = join(fresh(), '.lock');
    const lock = await acquireLock(lockDir, { purpose: 'push myapp:v1' });
    const owner = await readLockOwner(lockDir);
    expect(owner).toMatchObject({ pid: process.pid, hostname: hostname(), purpose: 'push myapp:v1', token: lock.owner.token });
    expect(owner).toMatchObject({
      bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      pidNs: readlinkSync('/proc/self/ns/pid'),
    });
    expect(owner!.startTime).toMatch(/^\d+$/);
    expect(Date.now() - Date.parse(owner!.created)).toBeLessThan(5000);
    await lock.release();
    expect(existsSync(lockDir)).toBe(false);
  });

  test('a live holder in another process makes waiters time out with a clear error', async () => {
    const lockDir = join(fresh(), '.lock');
    const holder = await startLockHolder(lockDir);
    try {
      const t0 = Date.now();
      const err = await acquireLock(lockDir, { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(err).toBeInstanceOf(LockTimeoutError);
      const msg = (err as Error).message;
      expect(msg).toContain(`held by pid ${holder.pid} on ${hostname()}`);
      expect(msg).toContain('(test holder)');
      expect(msg).toContain(`remove ${lockDir}`);
    } finally {
      await kill9(holder);
    }
  });

  test('kill -9 of the holder: the lock is recovered at once (its pid is gone on this host)', async () => {
    const lockDir = join(fresh(), '.lock');
    const holder = await startLockHolder(lockDir);
    const deadPid = holder.pid;
    await kill9(holder);
    expect((await readLockOwner(lockDir))?.pid).toBe(deadPid);
    const t0 = Date.now();
    const lock = await acquireLock(lockDir, { timeoutMs: 2000 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect((await readLockOwner(lockDir))?.pid).toBe(process.pid);
    await lock.release();
  });

  test('a lock from another host is respected until it has had no heartbeat (owner mtime) for staleMs', async () => {
    const lockDir = join(fresh(), '.lock');
    const fake = (ageMs: number) => {
      rmSync(lockDir, { recursive: true, force: true });
      mkdirSync(lockDir);
      const then = new Date(Date.now() - ageMs);
      writeFileSync(
        join(lockDir, 'owner'),
        JSON.stringify({ pid: 1, hostname: 'build-host-7', created: then.toISOString(), token: 'foreign' }),
      );
      utimesSync(join(lockDir, 'owner'), then, then); // its last heartbeat
    };
    fake(1000);
    await expect(acquireLock(lockDir, { timeoutMs: 150, staleMs: 60_000 })).rejects.toThrow(/held by pid 1 on build-host-7/);
    fake(61_000);
    const lock = await acquireLock(lockDir, { timeoutMs: 1000, staleMs: 60_000 });
    expect((await readLockOwner(lockDir))?.token).toBe(lock.owner.token);
    await lock.release();
  });

  test('an ownerless lock directory (made by hand) is judged by its mtime', async () => {
    const lockDir = join(fresh(), '.lock');
    mkdirSync(lockDir);
    await expect(acquireLock(lockDir, { timeoutMs: 100 })).rejects.toThrow(/no owner information/);
    utimesSync(lockDir, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const lock = await acquireLock(lockDir, { timeoutMs: 1000 });
    await lock.release();
  });

  test('a holder stopped past the stale limit (SIGSTOP) loses its lock and detects it when it resumes; release leaves the new owner alone', async () => {
    const lockDir = join(fresh(), '.lock');
    const a = await startLockHolder(lockDir, { staleMs: 300 });
    try {
      const aToken = (await readLockOwner(lockDir))!.token;
      a.kill('SIGSTOP'); // no heartbeat from now on
      const b = await acquireLock(lockDir, { staleMs: 300, timeoutMs: 30_000 });
      expect((await readLockOwner(lockDir))?.token).toBe(b.owner.token);
      a.kill('SIGCONT');
      expect(await askHeld(a)).toBe(false);
      expect((await readLockOwner(lockDir))?.token).not.toBe(aToken);
      await b.release();
      expect(existsSync(lockDir)).toBe(false);
    } finally {
      a.kill('SIGCONT');
      await kill9(a);
    }
  });

  test('a holder that is alive keeps its lock past staleMs by its heartbeat', async () => {
    const lockDir = join(fresh(), '.lock');
    const a = await startLockHolder(lockDir, { staleMs: 1000 });
    try {
      const err = await acquireLock(lockDir, { staleMs: 1000, timeoutMs: 3000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockTimeoutError);
      expect((err as Error).message).toContain('after 1 s without a heartbeat');
      expect(await askHeld(a)).toBe(true);
    } finally {
      await kill9(a);
    }
  });

  test('in-process: a holder whose lock was taken over detects it before committing; release leaves the new owner alone', async () => {
    const lockDir = join(fresh(), '.lock');
    const a = await acquireLock(lockDir);
    // Another process took it over (as after a pause): the lock directory now carries its token.
    rmSync(lockDir, { recursive: true, force: true });
    const b = await acquireLock(lockDir, { timeoutMs: 1000 });
    await expect(a.assertHeld()).rejects.toBeInstanceOf(LockLostError);
    await a.release();
    expect((await readLockOwner(lockDir))?.token).toBe(b.owner.token);
    await b.release();
    expect(existsSync(lockDir)).toBe(false);
  });

  test('pid reuse: an owner on this boot and PID namespace whose pid now runs another process (other start time) is dead', async () => {
    const lockDir = join(fresh(), '.lock');
    const other = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const me = processIdentity();
      expect(me.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      expect(me.pidNs).toBe(readlinkSync('/proc/self/ns/pid'));
      const stat = readFileSync(`/proc/${other.pid}/stat`, 'utf8');
      const realStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
      const fake = (startTime: string) => {
        rmSync(lockDir, { recursive: true, force: true });
        mkdirSync(lockDir);
        const owner = {
          pid: other.pid,
          hostname: hostname(),
          created: new Date().toISOString(),
          token: 'reused',
          bootId: me.bootId,
          pidNs: me.pidNs,
          ...(me.timeNs ? { timeNs: me.timeNs } : {}),
          startTime,
        };
        writeFileSync(join(lockDir, 'owner'), JSON.stringify(owner));
      };
      fake(realStart); // the pid's own process: alive
      await expect(acquireLock(lockDir, { timeoutMs: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
      fake(String(Number(realStart) - 1)); // a process that started earlier with this pid: gone
      const lock = await acquireLock(lockDir, { timeoutMs: 200 });
      expect((await readLockOwner(lockDir))?.token).toBe(lock.owner.token);
      await lock.release();
    } finally {
      other.kill('SIGKILL');
    }
  });

  test('an owner that only shares the hostname (no boot id / PID namespace) is never judged dead by its pid', async () => {
    const lockDir = join(fresh(), '.lock');
    mkdirSync(lockDir);
    // pid 2^22+1 can't exist here; an older Hades (or a foreign namespace) wrote this owner.
    writeFileSync(
      join(lockDir, 'owner'),
      JSON.stringify({ pid: 4194305, hostname: hostname(), created: new Date().toISOString(), token: 'legacy' }),
    );
    expect(provablyDead((await readLockOwner(lockDir))!)).toBe(false);
    await expect(acquireLock(lockDir, { timeoutMs: 200 })).rejects.toThrow(/held by pid 4194305/);
  });

  test('leftovers of processes killed while taking, breaking or releasing a lock are swept once abandoned', async () => {
    const dir = fresh();
    const lockDir = join(dir, '.lock');
    const old = [`${lockDir}.dead-0123456789ab`, `${lockDir}.new-0123456789abcdef01234567`];
    const recent = [`${lockDir}.dead-ba9876543210`, `${lockDir}.new-ba9876543210fedcba987654`];
    for (const d of [...old, ...recent]) {
      mkdirSync(d);
      writeFileSync(join(d, 'owner'), '{}');
    }
    for (const d of old) utimesSync(d, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    await withLock(lockDir, async () => undefined);
    for (const d of old) expect(existsSync(d)).toBe(false);
    for (const d of recent) expect(existsSync(d)).toBe(true); // might still be in use by its process
  });

  test('the lock appears with its owner already inside (a holder killed at any point never leaves an ownerless lock)', async () => {
    const lockDir = join(fresh(), '.lock');
    // Watch the lock path while 30 takers come and go: whenever it exists, it names its owner.
    let seen = 0;
    let ownerless = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const before = statSync(lockDir, { throwIfNoEntry: false });
        if (before) {
          seen++;
          const hasOwner = existsSync(join(lockDir, 'owner'));
          const after = statSync(lockDir, { throwIfNoEntry: false });
          // Only the same directory, still in place, counts (a release moves it away meanwhile).
          if (!hasOwner && after?.ino === before.ino) ownerless++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all(Array.from({ length: 30 }, () => withLock(lockDir, async () => new Promise((r) => setTimeout(r, 1)))));
    watching = false;
    await watcher;
    expect(seen).toBeGreaterThan(0);
    expect(ownerless).toBe(0);
  });
});
