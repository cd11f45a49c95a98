import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { acquireLock, LockLostError, LockTimeoutError, readLockOwner, withLock } from '../../src/registry/fs/lock.js';
import { kill9, startLockHolder } from '../fixtures/registry/procs.js';
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

  test('the lock directory holds an owner file (pid, hostname, time, token)', async () => {
    const lockDir = join(fresh(), '.lock');
    const lock = await acquireLock(lockDir, { purpose: 'push myapp:v1' });
    const owner = await readLockOwner(lockDir);
    expect(owner).toMatchObject({ pid: process.pid, hostname: hostname(), purpose: 'push myapp:v1', token: lock.owner.token });
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

  test('a lock from another host is respected until it is older than staleMs', async () => {
    const lockDir = join(fresh(), '.lock');
    const fake = (ageMs: number) => {
      rmSync(lockDir, { recursive: true, force: true });
      mkdirSync(lockDir);
      writeFileSync(
        join(lockDir, 'owner'),
        JSON.stringify({ pid: 1, hostname: 'build-host-7', created: new Date(Date.now() - ageMs).toISOString(), token: 'foreign' }),
      );
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

  test('a holder whose lock was broken detects it before committing; release leaves the new owner alone', async () => {
    const lockDir = join(fresh(), '.lock');
    const a = await acquireLock(lockDir, { staleMs: 50 });
    await new Promise((r) => setTimeout(r, 80));
    const b = await acquireLock(lockDir, { staleMs: 50, timeoutMs: 1000 }); // a is older than staleMs: broken
    await expect(a.assertHeld()).rejects.toBeInstanceOf(LockLostError);
    await a.release();
    expect((await readLockOwner(lockDir))?.token).toBe(b.owner.token);
    await b.release();
    expect(existsSync(lockDir)).toBe(false);
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
