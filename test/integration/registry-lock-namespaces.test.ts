/**
 * The registry lock and the fenced index commit (security issue 11) with real processes in
 * separate PID namespaces (`unshare --pid --fork --mount-proc`, like containers or CI runners
 * sharing a hostname and a filesystem), and writers really stopped (SIGSTOP) past the stale limit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystemRegistry } from '../../src/registry/fs/registry.js';
import { acquireLock, LockTimeoutError, readLockOwner } from '../../src/registry/fs/lock.js';
import { buildRegistryForWorkers, cleanupRegistryBuild, workerScript } from '../fixtures/registry/build.js';
import { askHeld, finished, kill9, namespacedPid, nextLine, runWorker, spawnWorker, startLockHolder } from '../fixtures/registry/procs.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
let tmp: string;
let k = 0;
const fresh = (): string => {
  const d = join(tmp, `t${k++}`);
  mkdirSync(d);
  return d;
};
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const open = (root: string) => openFilesystemRegistry({ name: 'store', type: 'filesystem', path: root, pos }, { env: {} });

function srcFile(content: string): string {
  const p = join(fresh(), 'f');
  writeFileSync(p, content);
  return p;
}

/** The tags in index.json (what oras reads), after checking every tagged payload verifies. */
async function tagsOf(root: string, name: string): Promise<string[]> {
  const layout = join(root, name);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const tags: string[] = index.manifests.map(
    (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'],
  );
  expect(new Set(tags).size).toBe(tags.length);
  for (const n of readdirSync(join(layout, 'blobs', 'sha256')).filter((n) => !n.startsWith('.')))
    expect(sha(readFileSync(join(layout, 'blobs', 'sha256', n)))).toBe(`sha256:${n}`);
  const reg = open(root);
  for (const tag of tags) for await (const _ of await reg.open(await reg.resolve(name, { tag })));
  return tags.sort();
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-lockns-'));
  buildRegistryForWorkers();
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  cleanupRegistryBuild();
});

describe('liveness across PID namespaces', () => {
  test('a live holder is never broken by a waiter in another PID namespace (same hostname, its pid unknown there)', async () => {
    const lockDir = join(fresh(), '.lock');
    const holder = await startLockHolder(lockDir); // this namespace; its pid does not exist in the waiter's
    try {
      const r = await runWorker({ op: 'acquire', lockDir, timeoutMs: 1500 }, { pidNamespace: true });
      expect(r.out, r.stderr).toMatchObject({ kind: 'LockTimeoutError' });
      expect(r.out!.error).toContain(`held by pid ${holder.pid}`);
      expect(await askHeld(holder)).toBe(true);
      expect((await readLockOwner(lockDir))?.pid).toBe(holder.pid);
    } finally {
      await kill9(holder);
    }
  });

  test('a holder in another PID namespace: respected while alive; once killed, broken only when its heartbeat is stale', async () => {
    const lockDir = join(fresh(), '.lock');
    const holder = await startLockHolder(lockDir, { pidNamespace: true });
    const inner = namespacedPid(holder);
    try {
      const owner = (await readLockOwner(lockDir))!;
      expect(owner.pid).not.toBe(inner); // it knows itself by its pid in its own namespace
      await expect(acquireLock(lockDir, { timeoutMs: 500 })).rejects.toBeInstanceOf(LockTimeoutError);
      process.kill(inner, 'SIGKILL');
      await finished(holder);
      // Its pid means nothing here: not judged dead, only by age.
      const err = await acquireLock(lockDir, { timeoutMs: 300, staleMs: 60_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockTimeoutError);
      const lock = await acquireLock(lockDir, { timeoutMs: 30_000, staleMs: 500 });
      expect((await readLockOwner(lockDir))?.token).toBe(lock.owner.token);
      await lock.release();
    } finally {
      await kill9(holder);
    }
  });
});

describe('the fenced index commit', () => {
  test('a push stopped past the stale limit right before its commit cannot overwrite the commit made meanwhile', async () => {
    const root = fresh();
    const w = spawnWorker({ op: 'push', root, name: 'app', tag: 'v1', path: srcFile('one'), staleLockMs: 500, pauseAt: 'claim' });
    const wDone = finished(w);
    expect(await nextLine(w, 'paused')).toEqual({ paused: 'claim' }); // holds the lock, checked it, stopped
    const b = await runWorker({ op: 'push', root, name: 'app', tag: 'v2', path: srcFile('two'), staleLockMs: 500 });
    expect(b.out, b.stderr).toMatchObject({ ok: true, tag: 'v2' }); // broke the silent lock and committed
    w.kill('SIGCONT');
    const r = await wDone;
    expect(r.out, r.stderr).toMatchObject({ kind: 'LockLostError', tag: 'v1' });
    expect(r.out!.error).toContain('nothing was written');
    expect(await tagsOf(root, 'app')).toEqual(['v2']);
    await open(root).push('app', 'v1', { path: srcFile('one') }); // and pushing goes on
    expect(await tagsOf(root, 'app')).toEqual(['v1', 'v2']);
  });

  test('a push stopped after claiming its generation: the next writer builds on it, and the resumed rename is repaired', async () => {
    const root = fresh();
    const w = spawnWorker({ op: 'push', root, name: 'app', tag: 'v1', path: srcFile('one'), staleLockMs: 500, pauseAt: 'install' });
    const wDone = finished(w);
    expect(await nextLine(w, 'paused')).toEqual({ paused: 'install' });
    expect(existsSync(join(root, 'app', 'index.json'))).toBe(false); // claimed, not yet renamed onto index.json
    expect((await open(root).resolve('app', { tag: 'v1' })).manifestDigest).toMatch(/^sha256:/); // already committed for readers
    const b = await runWorker({ op: 'push', root, name: 'app', tag: 'v2', path: srcFile('two'), staleLockMs: 500 });
    expect(b.out, b.stderr).toMatchObject({ ok: true, tag: 'v2' });
    expect(await tagsOf(root, 'app')).toEqual(['v1', 'v2']);
    w.kill('SIGCONT'); // renames its (older) generation onto index.json, then converges
    const r = await wDone;
    expect(r.out, r.stderr).toMatchObject({ ok: true, tag: 'v1' });
    expect(await tagsOf(root, 'app')).toEqual(['v1', 'v2']);
    expect(readdirSync(join(root, 'app')).filter((n) => n.startsWith('.index'))).toEqual(['.index.gen-2']);
    const index = JSON.parse(readFileSync(join(root, 'app', 'index.json'), 'utf8'));
    expect(index.annotations['io.hades.index.generation']).toBe('2');
  });

  test('concurrent pushes from two PID namespaces: every push succeeds, none hangs, the index holds every tag', async () => {
    const root = fresh();
    const build = buildRegistryForWorkers();
    const startAt = Date.now() + 1500;
    const group = (g: number) => {
      const jobs = Array.from({ length: 6 }, (_, i) =>
        JSON.stringify({
          op: 'push',
          root,
          name: 'team/app',
          tag: `g${g}-v${i}`,
          path: srcFile(`group ${g} push ${i}`),
          startAt,
          staleLockMs: 60_000,
        }),
      );
      // Several workers per namespace, so their pids (2, 3, …) mean other processes — or none — in the other one.
      const child = spawn(
        'unshare',
        [
          '--pid',
          '--fork',
          '--mount-proc',
          '--kill-child',
          'sh',
          '-c',
          'for j in "$@"; do "$NODE" "$WORKER" "$BUILD" "$j" & done; wait',
          'sh',
          ...jobs,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE: process.execPath, WORKER: workerScript, BUILD: build } },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      return new Promise<{ lines: Record<string, unknown>[]; err: string }>((resolve) =>
        child.on('close', () =>
          resolve({
            lines: out
              .trim()
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l)),
            err,
          }),
        ),
      );
    };
    const results = await Promise.all([group(0), group(1)]);
    const lines = results.flatMap((r) => r.lines);
    expect(lines, results.map((r) => r.err).join('\n')).toHaveLength(12);
    expect(lines.filter((l) => l.ok !== true)).toEqual([]);
    const expected = [0, 1].flatMap((g) => Array.from({ length: 6 }, (_, i) => `g${g}-v${i}`)).sort();
    expect(await tagsOf(root, 'team/app')).toEqual(expected);
    expect(existsSync(join(root, 'team', 'app', '.lock'))).toBe(false);
  });

  test('oras rewrites the index between two Hades pushes: the generation rule keeps its tag, oras reads every tag', async () => {
    const root = fresh();
    const reg = open(root);
    await reg.push('app', 'v1', { path: srcFile('one') });
    const src = fresh();
    writeFileSync(join(src, 'o.txt'), 'by oras');
    execFileSync('oras', ['push', '--oci-layout', `${join(root, 'app')}:o1`, 'o.txt'], { cwd: src, stdio: 'pipe' });
    await reg.push('app', 'v2', { path: srcFile('two') });
    expect(await tagsOf(root, 'app')).toEqual(['o1', 'v1', 'v2']);
    expect(
      execFileSync('oras', ['repo', 'tags', '--oci-layout', join(root, 'app')])
        .toString()
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(['o1', 'v1', 'v2']);
  });
});
