/**
 * `hades registry gc` on a filesystem registry: what it removes (orphans of losing pushes and of
 * removed tags, manifests included) and what it never removes — blobs a tag reaches, blobs of a
 * push still in flight (fs/inflight.ts), blobs younger than the grace period — and that what it
 * leaves is still a layout the real `oras` pulls from. The loop test runs gc over and over beside
 * concurrent pushes (separate `hades` processes) and then pulls every tag.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectGarbage } from '../../src/registry/fs/gc.js';
import { openFilesystemRegistry } from '../../src/registry/fs/registry.js';
import { project, runCli, startCli } from '../helpers/cli.js';
import { registrySkipReason } from '../lab/registry.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const HADESFILE = 'registries:\n  local: { type: filesystem, path: ./reg }\n';

/** The blob files of a layout (digests), without temp or dot files. */
function blobFiles(layout: string): string[] {
  return readdirSync(join(layout, 'blobs', 'sha256'))
    .filter((n) => /^[a-f0-9]{64}$/.test(n))
    .map((n) => `sha256:${n}`)
    .sort();
}

/** What index.json reaches, computed here independently of gc: manifests, their config and layers. */
function reachableBlobs(layout: string): string[] {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const out = new Set<string>();
  for (const m of index.manifests) {
    out.add(m.digest);
    const man = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', m.digest.slice(7)), 'utf8'));
    out.add(man.config.digest);
    for (const l of man.layers) out.add(l.digest);
  }
  return [...out].sort();
}

describe('hades registry gc (filesystem)', () => {
  it('removes what no tag reaches (after rm, and a losing push), keeps what a tag reaches; dry-run and grace remove nothing; audit log', async () => {
    const dir = project({ 'hadesfile.yaml': HADESFILE, 'a.txt': 'aaa\n', 'b.txt': 'bbb\n' });
    const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    const layout = join(dir, 'reg', 'app');
    expect((await run('push', 'local', 'a.txt', 'app:v1.0.0')).code).toBe(0);
    expect((await run('tag', 'local', 'app:v1.0.0', 'stable')).code).toBe(0);
    // A losing push: other content for an existing tag is refused after its blobs were stored.
    writeFileSync(join(dir, 'a.txt'), 'other content\n');
    expect((await run('push', 'local', 'a.txt', 'app:v1.0.0')).code).toBe(2);
    const orphans = blobFiles(layout).filter((d) => !reachableBlobs(layout).includes(d));
    expect(orphans.length, 'the refused push left its layer and manifest').toBe(2);

    // Young orphans are kept by default (grace 1h).
    const young = JSON.parse((await run('gc', 'local', '--output', 'json')).stdout);
    expect(young.removed).toEqual([]);
    expect(young.keptYoung).toBe(2);
    const dry = await run('gc', 'local', '--grace', '0s', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would remove 2 blobs \(1 manifests\), \d+ bytes would be freed/m);
    expect(blobFiles(layout)).toContain(orphans[0]);

    const orphanBytes = orphans.reduce((n, d) => n + statSync(join(layout, 'blobs', 'sha256', d.slice(7))).size, 0);
    const gc = await run('gc', 'local', '--grace', '0s');
    expect(gc.code, gc.stderr).toBe(0);
    for (const d of orphans) expect(gc.stdout).toContain(`removed app@${d} (`);
    expect(gc.stdout).toMatch(new RegExp(`^removed 2 blobs \\(1 manifests\\), ${orphanBytes} bytes freed`, 'm'));
    expect(blobFiles(layout)).toEqual(reachableBlobs(layout));
    const log = /audit log: (.+\.jsonl)/.exec(gc.stderr)![1]!;
    const events = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ type: 'run.meta', command: 'registry gc', registry: 'local' });
    expect(
      events
        .filter((e) => e.type === 'registry.removed')
        .map((e) => /@(sha256:\w+)/.exec(e.message)![1])
        .sort(),
    ).toEqual(orphans);

    // rm one of two tags on a digest: nothing becomes garbage; rm the other: all three blobs go.
    const rm1 = await run('rm', 'local', 'app:v1.0.0', '--force');
    expect(rm1.code, rm1.stderr).toBe(0);
    expect(rm1.stdout).toContain('stable still points at it');
    expect(JSON.parse((await run('gc', 'local', '--grace', '0s', '--output', 'json')).stdout).removed).toEqual([]);
    expect((await run('pull', 'local', 'app:stable', '-o', join(dir, 'out.txt'))).code).toBe(0);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('aaa\n');
    expect((await run('rm', 'local', 'app:stable', '--force')).code).toBe(0);
    const all = JSON.parse((await run('gc', 'local', '--grace', '0s', '--output', 'json')).stdout);
    expect(all.removed.map((x: { kind: string }) => x.kind).sort()).toEqual(['blob', 'blob', 'manifest']);
    expect(all.bytes).toBe(all.removed.reduce((n: number, x: { size: number }) => n + x.size, 0));
    expect(blobFiles(layout)).toEqual([]);
  });

  it('never removes the blobs of a push that stored them and has not committed its tag yet (also when they already existed)', async () => {
    const dir = project({ 'a.txt': 'payload A\n', 'b.txt': 'payload B\n' });
    const root = join(dir, 'reg');
    const spec = { name: 'local', type: 'filesystem' as const, path: root, pos };
    const gcReg = openFilesystemRegistry(spec, { env: {} });
    const removedInWindow: string[][] = [];
    const keptInWindow: number[] = [];
    // gc runs exactly in the window: blobs stored, tag not yet committed, layout lock not held.
    const pusher = openFilesystemRegistry(spec, {
      env: { SOURCE_DATE_EPOCH: '1700000000' },
      beforeTagLock: async () => {
        const res = await collectGarbage(gcReg, { dryRun: false, graceMs: 0 });
        removedInWindow.push(res.removed.map((x) => x.digest));
        keptInWindow.push(res.keptInFlight);
      },
    });
    await pusher.push('app', 'v1', { path: join(dir, 'a.txt') });
    expect((await pusher.push('app', 'v2', { path: join(dir, 'b.txt') })).unchanged).toBe(false);
    // The same bytes again under a new tag after its old tag went: the blobs exist already (as
    // garbage) when the push finds them — it must still keep them.
    const plain = openFilesystemRegistry(spec, { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    const { removeTag } = await import('../../src/registry/fs/lifecycle.js');
    await removeTag(plain, 'app', 'v1');
    await pusher.push('app', 'v1-again', { path: join(dir, 'a.txt') });
    expect(removedInWindow).toEqual([[], [], []]);
    // Layer, empty config and manifest; then layer and manifest (the empty config is v1's too);
    // then the old blobs of v1, garbage when the push found them.
    expect(keptInWindow).toEqual([3, 2, 2]);
    for (const [tag, text] of [
      ['v2', 'payload B\n'],
      ['v1-again', 'payload A\n'],
    ]) {
      const d = await plain.resolve('app', { tag });
      const chunks: Buffer[] = [];
      for await (const c of await plain.open(d)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe(text);
    }
    expect(readdirSync(join(root, 'app')), 'every push removed its registration').not.toContain('.inflight');
  });

  it('gc in a loop beside concurrent pushes (separate processes, some losing a tag race): every pushed tag pulls afterwards', async () => {
    const pushers = 3;
    const rounds = 5;
    const files: Record<string, string> = { 'hadesfile.yaml': HADESFILE };
    for (let p = 0; p < pushers; p++)
      for (let i = 0; i < rounds; i++) {
        files[`p${p}-${i}.txt`] = `pusher ${p} round ${i}\n`;
        files[`race-${p}-${i}.txt`] = `race entry of pusher ${p} in round ${i}\n`;
      }
    const dir = project(files);
    const layout = join(dir, 'reg', 'app');
    const cli = (...a: string[]) => startCli(['registry', ...a], { cwd: dir }).done;
    const pushed: { tag: string; file: string; digest: string }[] = [];
    let refused = 0;
    let pushing = true;
    const gcRuns: { removed: unknown[] }[] = [];
    const gcLoop = (async () => {
      while (pushing) {
        const r = await cli('gc', 'local', '--grace', '0s', '--output', 'json');
        expect(r.code, r.stderr).toBe(0);
        gcRuns.push(JSON.parse(r.stdout));
      }
    })();
    await Promise.all(
      Array.from({ length: pushers }, async (_, p) => {
        for (let i = 0; i < rounds; i++) {
          const file = `p${p}-${i}.txt`;
          // Every pusher also races for the shared tag race-<i>: one wins, the others are refused.
          const own = await cli('push', 'local', file, `app:p${p}-${i}`, '--output', 'json');
          expect(own.code, own.stderr).toBe(0);
          pushed.push({ tag: `p${p}-${i}`, file, digest: JSON.parse(own.stdout).descriptor.manifestDigest });
          const raceFile = `race-${p}-${i}.txt`;
          const race = await cli('push', 'local', raceFile, `app:race-${i}`, '--output', 'json');
          if (race.code === 0) pushed.push({ tag: `race-${i}`, file: raceFile, digest: JSON.parse(race.stdout).descriptor.manifestDigest });
          else {
            expect(race.code, race.stderr).toBe(2);
            expect(race.stderr).toMatch(/tag race-\d+ of app already exists/);
            refused++;
          }
        }
      }),
    );
    pushing = false;
    await gcLoop;
    expect(gcRuns.length, 'gc ran while pushes were going on').toBeGreaterThan(1);
    expect(refused).toBe((pushers - 1) * rounds);
    const final = await cli('gc', 'local', '--grace', '0s', '--output', 'json');
    expect(final.code).toBe(0);
    const removed = [...gcRuns, JSON.parse(final.stdout)].reduce((n, r) => n + r.removed.length, 0);
    expect(removed, "the losers' orphans were collected").toBeGreaterThan(0);
    expect(blobFiles(layout)).toEqual(reachableBlobs(layout));
    expect(readdirSync(layout).filter((n) => n.startsWith('.gc-'))).toEqual([]);
    for (const p of pushed) {
      const out = join(dir, `pulled-${p.tag}`);
      const r = await cli('pull', 'local', `app:${p.tag}`, '-o', out, '--output', 'json');
      expect(r.code, `${p.tag}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).manifestDigest).toBe(p.digest);
      expect(readFileSync(out, 'utf8')).toBe(files[p.file]);
    }
    expect(pushed.length).toBe(pushers * rounds + rounds);
  });

  it.skipIf(registrySkipReason())('what gc leaves is a layout oras pulls from; gc keeps what oras pushed into it', async () => {
    const dir = project({ 'hadesfile.yaml': HADESFILE, 'a.txt': 'via hades\n', 'o.txt': 'via oras\n', 'x.txt': 'garbage\n' });
    const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir });
    const layout = join(dir, 'reg', 'app');
    expect((await run('push', 'local', 'a.txt', 'app:v1')).code).toBe(0);
    expect((await run('tag', 'local', 'app:v1', 'prod')).code).toBe(0);
    expect((await run('push', 'local', 'x.txt', 'app:tmp')).code).toBe(0);
    expect((await run('rm', 'local', 'app:tmp', '--force')).code).toBe(0);
    execFileSync('oras', ['push', '--oci-layout', `${layout}:from-oras`, 'o.txt'], { cwd: dir, stdio: 'pipe' });
    const gc = await run('gc', 'local', '--grace', '0s', '--output', 'json');
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout).removed.length).toBe(2); // x.txt's layer and manifest (the empty config is shared)
    for (const [tag, text, file] of [
      ['prod', 'via hades\n', 'a.txt'],
      ['from-oras', 'via oras\n', 'o.txt'],
    ]) {
      const out = join(dir, `oras-${tag}`);
      execFileSync('oras', ['pull', '--oci-layout', `${layout}:${tag}`, '-o', out], { stdio: 'pipe' });
      expect(readFileSync(join(out, file!), 'utf8')).toBe(text);
    }
  });
});
