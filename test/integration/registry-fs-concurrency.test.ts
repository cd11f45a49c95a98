/**
 * The filesystem registry under real concurrency and real crashes: separate OS processes
 * (plain `node` running the transpiled registry, see fixtures/registry/build.ts) racing for one
 * tag, and pushes killed with SIGKILL at different points.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openFilesystemRegistry, type FilesystemRegistry } from '../../src/registry/fs/registry.js';
import { LockTimeoutError } from '../../src/registry/fs/lock.js';
import { buildRegistryForWorkers, cleanupRegistryBuild, workerScript } from '../fixtures/registry/build.js';
import { finished, kill9, runWorker, startLockHolder } from '../fixtures/registry/procs.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
let tmp: string;
const _k = 0;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function open(root: string, opts = {}): FilesystemRegistry {
  return openFilesystemRegistry({ name: 'store', type: 'filesystem', path: root, pos }, { env: {}, ...opts });
}

/** How many other pushes were still in flight when the first one to finish was done (a race needs ≥ 1). */
function overlapping(results: Array<{ out?: Record<string, unknown> | null }>): number {
  const spans = results.map((r) => ({ start: r.out!.startedAt as number, end: r.out!.endedAt as number }));
  for (const s of spans) expect(s.start, 'every push reports when it ran').toBeGreaterThan(0);
  const firstEnd = Math.min(...spans.map((s) => s.end));
  return spans.filter((s) => s.start <= firstEnd).length - 1;
}

/** Everything a crash or race must never break. Returns the tags found. */
async function assertStoreIntact(root: string, name: string): Promise<string[]> {
  const layout = join(root, ...name.split('/'));
  const blobs = join(layout, 'blobs', 'sha256');
  for (const n of existsSync(blobs) ? readdirSync(blobs) : []) {
    if (n.startsWith('.')) continue; // temp files of killed writers: never a blob name
    expect(sha(readFileSync(join(blobs, n))), `blob ${n}`).toBe(`sha256:${n}`);
  }
  if (!existsSync(join(layout, 'index.json'))) return [];
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')); // valid JSON, never half-written
  expect(index.schemaVersion).toBe(2);
  const reg = open(root);
  const tags: string[] = index.manifests.map(
    (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'],
  );
  expect(new Set(tags).size).toBe(tags.length);
  for (const tag of tags) {
    const d = await reg.resolve(name, { tag });
    for await (const _ of await reg.open(d)); // verified read of every tagged payload
  }
  return tags;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-fsrace-'));
  buildRegistryForWorkers();
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  cleanupRegistryBuild();
});

describe('concurrent pushes from separate processes', () => {
  test('8 processes push different content to the same name:tag: exactly one wins, the others fail naming its digest', async () => {
    const root = join(tmp, 'race');
    const srcs = Array.from({ length: 8 }, (_, i) => {
      const p = join(tmp, `race-src-${i}`);
      mkdirSync(p);
      writeFileSync(join(p, 'app.bin'), Buffer.alloc(200_000 + i, i + 1));
      return join(p, 'app.bin');
    });
    const startAt = Date.now() + 700; // all processes booted: they start pushing together
    const results = await Promise.all(srcs.map((path) => runWorker({ op: 'push', root, name: 'myapp', tag: 'v1', path, startAt })));
    const wins = results.filter((r) => r.out?.ok === true);
    const losses = results.filter((r) => r.out?.error !== undefined);
    expect(wins, JSON.stringify(results.map((r) => r.out ?? r.stderr))).toHaveLength(1);
    expect(losses).toHaveLength(7);
    expect(overlapping(results), 'the pushes really raced: others had started before the first one finished').toBeGreaterThanOrEqual(1);
    const winner = wins[0]!.out!.digest as string;
    for (const l of losses) {
      expect(l.code).toBe(1);
      expect(l.out!.kind).toBe('UserError');
      expect(l.out!.error).toBe(`error: tag v1 of myapp already exists with ${winner}; registries are immutable — push a new tag`);
    }
    expect(await assertStoreIntact(root, 'myapp')).toEqual(['v1']);
    const d = await open(root).resolve('myapp', { tag: 'v1' });
    expect(d.manifestDigest).toBe(winner);
    const won = srcs.map((p) => readFileSync(p)).find((b) => sha(b) === d.layer.digest);
    expect(won).toBeDefined();
    // no lock or temp left; only the newest index generation (the fence, see layout.ts)
    expect(readdirSync(join(root, 'myapp')).sort()).toEqual(['.index.gen-1', 'blobs', 'index.json', 'oci-layout']);
  });

  test('8 processes push 8 different tags at once: no update is lost', async () => {
    const root = join(tmp, 'many');
    const startAt = Date.now() + 700;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const p = join(tmp, `many-src-${i}`);
        mkdirSync(p);
        writeFileSync(join(p, 'f'), `content ${i}`);
        return runWorker({ op: 'push', root, name: 'team/app', tag: `v${i}`, path: join(p, 'f'), startAt });
      }),
    );
    expect(
      results.filter((r) => r.out?.ok === true),
      JSON.stringify(results.map((r) => r.out ?? r.stderr)),
    ).toHaveLength(8);
    expect(overlapping(results), 'the pushes really ran at the same time').toBeGreaterThanOrEqual(1);
    expect((await assertStoreIntact(root, 'team/app')).sort()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7']);
  });
});

describe('kill -9 during a push', () => {
  test('while a big blob is being written: no tag, no corrupt blob, and the next push succeeds', async () => {
    const root = join(tmp, 'killblob');
    const src = join(tmp, 'big.bin');
    writeFileSync(src, Buffer.alloc(100 * 1024 * 1024, 0x5a));
    const child = spawn(
      process.execPath,
      [workerScript, buildRegistryForWorkers(), JSON.stringify({ op: 'push', root, name: 'big', tag: 'v1', path: src })],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const done = finished(child);
    const blobs = join(root, 'big', 'blobs', 'sha256');
    const deadline = Date.now() + 20_000;
    let tmpFile: string | undefined;
    while (!tmpFile && Date.now() < deadline) {
      tmpFile = existsSync(blobs)
        ? readdirSync(blobs).find((n) => n.startsWith('.tmp-') && statSync(join(blobs, n)).size > 1 << 20)
        : undefined;
      if (!tmpFile) await new Promise((r) => setTimeout(r, 2));
    }
    expect(tmpFile, 'the push never started writing its blob').toBeDefined();
    await kill9(child);
    expect((await done).signal).toBe('SIGKILL');
    const size = statSync(join(blobs, tmpFile!)).size;
    expect(size).toBeLessThan(100 * 1024 * 1024); // really killed mid-write
    expect(await assertStoreIntact(root, 'big')).toEqual([]);
    expect(await open(root).exists('big', { tag: 'v1' })).toBe(false);
    const r = await open(root).push('big', 'v1', { path: src });
    expect(r.unchanged).toBe(false);
    expect(await assertStoreIntact(root, 'big')).toEqual(['v1']);
  });

  test('while holding the index lock: the lock is recovered at once (owner pid gone), a live holder makes pushes time out cleanly', async () => {
    const root = join(tmp, 'killlock');
    const reg = open(root, { lockTimeoutMs: 300 });
    const a = join(tmp, 'lock-a');
    writeFileSync(a, 'a');
    await reg.push('myapp', 'v1', { path: a });
    const lockDir = join(root, 'myapp', '.lock');

    const live = await startLockHolder(lockDir);
    try {
      const err = await reg.push('myapp', 'v2', { path: a }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockTimeoutError);
      expect((err as Error).message).toContain(`held by pid ${live.pid}`);
      expect(await reg.exists('myapp', { tag: 'v2' })).toBe(false);
    } finally {
      await kill9(live);
    }
    expect(existsSync(lockDir)).toBe(true); // the dead holder's lock is still there…
    const t0 = Date.now();
    await reg.push('myapp', 'v2', { path: a }); // …and is broken at once
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await assertStoreIntact(root, 'myapp')).toEqual(['v1', 'v2']);
    expect(existsSync(lockDir)).toBe(false);
  });

  test('killed at random points of 10 pushes: the store stays intact and pushing goes on', async () => {
    const root = join(tmp, 'killrandom');
    const src = join(tmp, 'medium');
    mkdirSync(src);
    writeFileSync(join(src, 'data.bin'), Buffer.alloc(8 * 1024 * 1024, 7));
    writeFileSync(join(src, 'small.txt'), 'x');
    const build = buildRegistryForWorkers();
    const run = (tag: string) => {
      const child = spawn(process.execPath, [workerScript, build, JSON.stringify({ op: 'push', root, name: 'app', tag, path: src })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { child, done: finished(child) };
    };
    // One uninterrupted push measures how long a push takes here; the kills then land at
    // 10 %, 20 %, … 100 % of it: during start-up, the blob writes, the lock and the index write.
    const t0 = Date.now();
    expect((await run('measure').done).out?.ok).toBe(true);
    const full = Date.now() - t0;
    const killed: string[] = [];
    for (let i = 1; i <= 10; i++) {
      writeFileSync(join(src, 'small.txt'), `round ${i}`); // other content each round
      const { child, done } = run(`r${i}`);
      await new Promise((r) => setTimeout(r, (full * i) / 10));
      await kill9(child);
      const res = await done;
      killed.push(res.signal === 'SIGKILL' ? 'killed' : res.out?.ok ? 'finished' : `failed: ${JSON.stringify(res.out)}`);
      const tags = await assertStoreIntact(root, 'app');
      if (res.out?.ok === true) expect(tags).toContain(`r${i}`);
      // killed before its commit: no tag; killed after it: the whole tag (never a partial one)
    }
    console.log(`kill rounds: ${killed.join(', ')}`);
    expect(killed.some((s) => s === 'killed')).toBe(true);
    expect(killed.filter((s) => s.startsWith('failed'))).toEqual([]);
    const after = await open(root, { lockTimeoutMs: 2000 }).push('app', 'final', { path: src });
    expect(after.unchanged).toBe(false);
    expect(await assertStoreIntact(root, 'app')).toContain('final');
  });
});
