/**
 * The artifact cache's bookkeeping (src/engine/cache.ts): which entries prune selects, records
 * written whole under concurrent writers, runs in progress protecting what they use, and
 * `hades cache prune`'s age parsing. Real files in a temp dir; nothing mocked.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAge } from '../../src/cli/cache-command.js';
import {
  blobPathIn,
  type CacheEntry,
  checkCached,
  holdCache,
  listCache,
  noteUse,
  pruneCache,
  readRecord,
  recordPathIn,
  selectPrune,
} from '../../src/engine/cache.js';
import { digestOf } from '../../src/registry/digest.js';
import { processIdentity } from '../../src/registry/fs/lock.js';
import type { ArtifactDescriptor } from '../../src/registry/types.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');
const d = (c: string) => `sha256:${c.repeat(64)}`;
const entry = (digest: string, name: string, ageDays: number, blob = digest): CacheEntry => ({
  digest,
  size: 10,
  registry: 'reg',
  name,
  lastUsed: NOW - ageDays * DAY,
  blob,
  present: true,
});
const removed = (r: { remove: CacheEntry[] }) => r.remove.map((e) => e.digest).sort();

describe('selectPrune', () => {
  const entries = [entry(d('1'), 'app', 40), entry(d('2'), 'app', 20), entry(d('3'), 'app', 1), entry(d('4'), 'site', 50)];

  it('--older-than: what was last used longer ago', () => {
    expect(removed(selectPrune(entries, { now: NOW, olderThanMs: 30 * DAY }))).toEqual([d('1'), d('4')]);
  });
  it('--keep-last N: all but the N most recently used of each name, whatever their age', () => {
    expect(removed(selectPrune(entries, { now: NOW, keepLast: 1 }))).toEqual([d('1'), d('2')]);
    expect(removed(selectPrune(entries, { now: NOW, keepLast: 0 }))).toEqual([d('1'), d('2'), d('3'), d('4')]);
  });
  it('both: only what is older AND not among the last N of its name', () => {
    expect(removed(selectPrune(entries, { now: NOW, olderThanMs: 10 * DAY, keepLast: 2 }))).toEqual([d('1')]);
    expect(removed(selectPrune(entries, { now: NOW, olderThanMs: 30 * DAY, keepLast: 1 }))).toEqual([d('1')]);
  });
  it('nothing used since a live run began is removed', () => {
    expect(removed(selectPrune(entries, { now: NOW, keepLast: 0, inUseSince: NOW - 25 * DAY }))).toEqual([d('1'), d('4')]);
  });
  it('a payload goes only when no kept entry needs it; orphan blobs go by age', () => {
    const shared = [entry(d('a'), 'app', 40, d('f')), entry(d('b'), 'other', 1, d('f')), entry(d('c'), 'app', 40, d('e'))];
    const orphan: CacheEntry = { digest: d('9'), size: 1, lastUsed: NOW - 40 * DAY, blob: d('9'), present: true, orphan: true };
    const r = selectPrune([...shared, orphan], { now: NOW, olderThanMs: 30 * DAY });
    expect(removed(r)).toEqual([d('9'), d('a'), d('c')]);
    expect(r.blobs.sort()).toEqual([d('9'), d('e')]);
  });
});

function descriptor(payload: string, name: string, tag?: string): ArtifactDescriptor {
  return {
    registry: 'reg',
    name,
    ...(tag ? { tag } : {}),
    manifestDigest: digestOf(`manifest of ${payload}`),
    artifactType: 'application/vnd.test',
    annotations: {},
    layer: {
      digest: digestOf(payload),
      size: Buffer.byteLength(payload),
      mediaType: 'application/octet-stream',
      title: 'x',
      directory: false,
    },
  };
}

function withBlob(dir: string, payload: string): void {
  const p = blobPathIn(dir, digestOf(payload));
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, payload);
}

describe('cache records', () => {
  it('name:tag last seen survives a use by digest; concurrent writers leave one whole record and no temp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-cache-'));
    const a = descriptor('payload-a', 'app', 'v1');
    await noteUse(dir, a, new Date(NOW));
    const { tag: _, ...byDigest } = a;
    await Promise.all(Array.from({ length: 40 }, (_x, i) => noteUse(dir, byDigest, new Date(NOW + i * 1000))));
    const rec = await readRecord(dir, a.manifestDigest);
    expect(rec).toMatchObject({ name: 'app', tag: 'v1', registry: 'reg', layer: a.layer });
    // Last writer wins (each write whole): lastUsed is one of the values written.
    const used = Date.parse(rec!.lastUsed);
    expect(used).toBeGreaterThanOrEqual(NOW);
    expect(used).toBeLessThanOrEqual(NOW + 39_000);
    expect(used % 1000).toBe(0);
    expect(readdirSync(join(recordPathIn(dir, a.manifestDigest), '..'))).toEqual([`${a.manifestDigest.slice(7)}.json`]);
  });

  it('checkCached: missing record, missing payload, damaged payload, good', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-cache-'));
    const a = descriptor('payload-a', 'app', 'v1');
    expect(await checkCached(dir, a.manifestDigest)).toEqual({ missing: 'not in the cache' });
    await noteUse(dir, a);
    expect(await checkCached(dir, a.manifestDigest)).toEqual({ missing: `its payload ${a.layer.digest} is not in the cache` });
    withBlob(dir, 'payload-a');
    writeFileSync(blobPathIn(dir, a.layer.digest), 'payload-A'); // same size, other bytes
    expect(await checkCached(dir, a.manifestDigest)).toEqual({
      missing: `its payload ${a.layer.digest} in the cache does not match its digest (damaged)`,
    });
    writeFileSync(blobPathIn(dir, a.layer.digest), 'payload-a');
    expect(await checkCached(dir, a.manifestDigest)).toMatchObject({ record: { manifestDigest: a.manifestDigest } });
    // a digest from a tampered audit log never becomes a path
    expect(await checkCached(dir, 'sha256:../../../etc/passwd')).toEqual({
      missing: '"sha256:../../../etc/passwd" is not a sha256 digest',
    });
    writeFileSync(recordPathIn(dir, a.manifestDigest), '{"manifestDigest":');
    expect(await checkCached(dir, a.manifestDigest)).toEqual({
      missing: `cache record ${recordPathIn(dir, a.manifestDigest)} is not JSON`,
    });
  });
});

describe('damaged records', () => {
  it('are listed (not skipped) and pruned by their age', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-cache-'));
    const digest = d('7');
    mkdirSync(join(recordPathIn(dir, digest), '..'), { recursive: true });
    writeFileSync(recordPathIn(dir, digest), 'not json');
    expect(await listCache(dir)).toMatchObject([{ digest, damaged: true, present: false }]);
    expect((await pruneCache(dir, { olderThanMs: 3_600_000 })).removed).toEqual([]);
    const res = await pruneCache(dir, { olderThanMs: 0 }, Date.now() + 1000);
    expect(res.removed.map((e) => e.digest)).toEqual([digest]);
    expect(existsSync(recordPathIn(dir, digest))).toBe(false);
  });
});

describe('pruneCache and runs in progress', () => {
  it('keeps what a live run (this process) used since it began; removes a dead run marker, old entries and their payloads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-cache-'));
    const old = descriptor('old-bytes', 'app', 'v1');
    const cur = descriptor('current-bytes', 'app', 'v2');
    withBlob(dir, 'old-bytes');
    withBlob(dir, 'current-bytes');
    // A run that was killed: its marker names a pid that no longer exists on this machine.
    mkdirSync(join(dir, 'in-use'), { recursive: true });
    const { procIsOwnNamespace: _, ...id } = processIdentity();
    const dead = join(dir, 'in-use', 'dead.json');
    writeFileSync(
      dead,
      JSON.stringify({ pid: 2 ** 22 + 7, hostname: 'x', created: new Date(NOW - 100 * DAY).toISOString(), token: 't', ...id }),
    );
    await noteUse(dir, old, new Date(Date.now() - 60_000)); // holds the cache from now on (this process)
    await holdCache(dir);
    await noteUse(dir, cur);
    const markers = readdirSync(join(dir, 'in-use'));
    expect(markers).toHaveLength(2);

    // `old` was last used before this process began holding the cache, `cur` after: only `old` may go.
    const res = await pruneCache(dir, { keepLast: 0 });
    expect(existsSync(dead)).toBe(false);
    expect(res.inUseSince).toBeDefined();
    expect(res.removed.map((e) => e.digest)).toEqual([old.manifestDigest]);
    expect(existsSync(recordPathIn(dir, old.manifestDigest))).toBe(false);
    expect(existsSync(blobPathIn(dir, old.layer.digest))).toBe(false);
    expect((await listCache(dir)).map((e) => `${e.name}:${e.tag}`)).toEqual(['app:v2']);

    // Once no run holds the cache (this process's marker now names a gone pid), `cur` goes too.
    const mine = join(dir, 'in-use', readdirSync(join(dir, 'in-use'))[0]!);
    writeFileSync(mine, JSON.stringify({ ...JSON.parse(readFileSync(mine, 'utf8')), pid: 2 ** 22 + 9 }));
    const res2 = await pruneCache(dir, { keepLast: 0 });
    expect(res2.inUseSince).toBeUndefined();
    expect(res2.removed.map((e) => e.digest)).toEqual([cur.manifestDigest]);
    expect(existsSync(blobPathIn(dir, cur.layer.digest))).toBe(false);
    expect(await listCache(dir)).toEqual([]);
  });
});

describe('parseAge', () => {
  it('days, days plus a duration, plain durations; junk is undefined', () => {
    expect(parseAge('30d')).toBe(30 * DAY);
    expect(parseAge('1d12h')).toBe(1.5 * DAY);
    expect(parseAge('90m')).toBe(90 * 60_000);
    expect(parseAge('0s')).toBe(0);
    for (const bad of ['', 'd', 'soon', '3w', '-1d', '1d-2h']) expect(parseAge(bad)).toBeUndefined();
  });
});
