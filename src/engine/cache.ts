/**
 * The local artifact cache's bookkeeping (the blobs themselves: artifacts.ts). Layout under
 * the cache dir:
 *   blobs/sha256/<hex>              payload bytes, content-addressed (verified on every read)
 *   artifacts/sha256/<hex>.json     one record per manifest digest: what it resolves to (the
 *                                   payload layer), name:tag last seen, registry, last used
 *   indexes/sha256/<hex>.json       one record per image index a run resolved a platform of:
 *                                   its platforms, and which manifest each resolved platform
 *                                   named (so --offline resolves index + platform)
 *   in-use/<pid>-<rand>.json        one per running run that uses the cache (prune respects it)
 * Every file is written whole to a temp file beside it and renamed (concurrent runs: the last
 * writer of a record wins, and each write is whole).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { digestFile } from '../registry/digest.js';
import { processIdentity, provablyDead, type LockOwner } from '../registry/fs/lock.js';
import type { ArtifactDescriptor } from '../registry/types.js';

export interface CacheRecord {
  manifestDigest: string;
  /** Where it was last resolved from, as the hadesfile named it, and the tag seen then (if any). */
  registry: string;
  name: string;
  tag?: string;
  /** ISO time of the last run that used it. */
  lastUsed: string;
  artifactType: string;
  created?: string;
  annotations: Record<string, string>;
  layer: ArtifactDescriptor['layer'];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** The hex of a sha256 digest; anything else never becomes a path in the cache. */
function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) throw new Error(`${JSON.stringify(digest)} is not a sha256 digest`);
  return digest.slice(7);
}

export const blobPathIn = (cacheDir: string, layerDigest: string): string => join(cacheDir, 'blobs', 'sha256', hexOf(layerDigest));
export const recordPathIn = (cacheDir: string, manifestDigest: string): string =>
  join(cacheDir, 'artifacts', 'sha256', `${hexOf(manifestDigest)}.json`);

export const indexRecordPathIn = (cacheDir: string, indexDigest: string): string =>
  join(cacheDir, 'indexes', 'sha256', `${hexOf(indexDigest)}.json`);

/** What an online run learnt of a multi-platform artifact's index: every platform, and the manifests of those it resolved. */
export interface IndexRecord {
  indexDigest: string;
  registry: string;
  name: string;
  tag?: string;
  lastUsed: string;
  /** Every platform of the index, in index order. */
  platforms: string[];
  /** platform → manifest digest, for each platform a run resolved (only those are in the cache). */
  manifests: Record<string, string>;
  annotations: Record<string, string>;
}

function isIndexRecord(v: unknown): v is IndexRecord {
  const r = v as IndexRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.indexDigest === 'string' &&
    DIGEST.test(r.indexDigest) &&
    typeof r.registry === 'string' &&
    typeof r.name === 'string' &&
    typeof r.lastUsed === 'string' &&
    Array.isArray(r.platforms) &&
    r.platforms.every((p) => typeof p === 'string') &&
    typeof r.manifests === 'object' &&
    r.manifests !== null &&
    Object.values(r.manifests).every((d) => typeof d === 'string' && DIGEST.test(d)) &&
    typeof r.annotations === 'object'
  );
}

/** The record of an index digest; undefined when there is none; throws when it is damaged. */
export function readIndexRecord(cacheDir: string, indexDigest: string): Promise<IndexRecord | undefined> {
  return readJsonRecord(
    indexRecordPathIn(cacheDir, indexDigest),
    (v): v is IndexRecord => isIndexRecord(v) && v.indexDigest === indexDigest,
  );
}

/** A JSON record file: undefined when there is none; throws when it is not JSON or `valid` says no. */
async function readJsonRecord<T>(path: string, valid: (v: unknown) => v is T): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`cache record ${path} is not JSON`);
  }
  if (!valid(v)) throw new Error(`cache record ${path} is damaged`);
  return v;
}

/** Read-modify-writes of one index record in this process, one after the other (hosts of several platforms note theirs at once). */
const indexWrites = new Map<string, Promise<void>>();

/**
 * `desc` was resolved through an index: its record learns (or refreshes) which manifest
 * `desc.platform` names. Serialised per record within a run; between concurrent runs the last
 * writer wins (a platform it did not know is then resolved online again by a later run).
 */
function noteIndexUse(cacheDir: string, desc: ArtifactDescriptor, now: Date): Promise<void> {
  if (!desc.index || desc.platform === undefined) return Promise.resolve();
  const path = indexRecordPathIn(cacheDir, desc.index.digest);
  const next = (indexWrites.get(path) ?? Promise.resolve()).catch(() => undefined).then(() => writeIndexUse(cacheDir, path, desc, now));
  indexWrites.set(path, next);
  void next.finally(() => indexWrites.get(path) === next && indexWrites.delete(path)).catch(() => undefined);
  return next;
}

async function writeIndexUse(cacheDir: string, path: string, desc: ArtifactDescriptor, now: Date): Promise<void> {
  if (!desc.index || desc.platform === undefined) return;
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const old = await readIndexRecord(cacheDir, desc.index.digest).catch(() => undefined);
  const tag = desc.tag ?? (old && old.name === desc.name ? old.tag : undefined);
  const rec: IndexRecord = {
    indexDigest: desc.index.digest,
    registry: desc.registry,
    name: desc.name,
    ...(tag !== undefined ? { tag } : {}),
    lastUsed: now.toISOString(),
    platforms: desc.index.platforms,
    manifests: { ...(old?.manifests ?? {}), [desc.platform]: desc.manifestDigest },
    annotations: desc.index.annotations,
  };
  await writeWhole(path, `${JSON.stringify(rec)}\n`);
}

/**
 * Whether the cache can serve the index `indexDigest` offline: undefined when it has no record
 * of it; else every platform it recorded, each checked as checkCached does.
 */
export async function checkCachedIndex(
  cacheDir: string,
  indexDigest: string,
): Promise<{ index: IndexRecord; platforms: { platform: string; record: CacheRecord }[] } | { missing: string } | undefined> {
  let index: IndexRecord | undefined;
  try {
    index = await readIndexRecord(cacheDir, indexDigest);
  } catch (e) {
    return { missing: (e as Error).message };
  }
  if (!index) return undefined;
  const platforms: { platform: string; record: CacheRecord }[] = [];
  for (const [platform, digest] of Object.entries(index.manifests)) {
    const got = await checkCached(cacheDir, digest);
    if ('missing' in got) return { missing: `its ${platform} manifest ${digest}: ${got.missing}` };
    platforms.push({ platform, record: got.record });
  }
  if (!platforms.length) return { missing: 'no platform of this multi-platform artifact is in the cache' };
  return { index, platforms };
}

/** The signatures (sshsig blobs) a run verified for a manifest: what `--offline` verifies against. */
export const signaturesDirIn = (cacheDir: string, manifestDigest: string): string =>
  join(cacheDir, 'signatures', 'sha256', hexOf(manifestDigest));

/** Keeps the signatures read from the registry for `manifestDigest` (each once, named by its own sha256). */
export async function keepSignatures(cacheDir: string, manifestDigest: string, sigs: Buffer[]): Promise<void> {
  if (!sigs.length) return;
  const dir = signaturesDirIn(cacheDir, manifestDigest);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sig of sigs) {
    const path = join(dir, `${createHash('sha256').update(sig).digest('hex')}.sshsig`);
    if (await stat(path).catch(() => undefined)) continue;
    await writeWhole(path, sig);
  }
}

/** The kept signatures of `manifestDigest` (none when no online run verified it). */
export async function cachedSignatures(cacheDir: string, manifestDigest: string): Promise<Buffer[]> {
  const dir = signaturesDirIn(cacheDir, manifestDigest);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[a-f0-9]{64}\.sshsig$/.test(n)).sort();
  return Promise.all(names.map((n) => readFile(join(dir, n))));
}

/** Writes `text` whole: a temp file created exclusively beside `path`, then renamed over it. */
async function writeWhole(path: string, text: string | Buffer): Promise<void> {
  const tmp = join(path, '..', `.${path.split('/').pop()}.hades-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function isRecord(v: unknown): v is CacheRecord {
  const r = v as CacheRecord;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.manifestDigest === 'string' &&
    DIGEST.test(r.manifestDigest) &&
    typeof r.registry === 'string' &&
    typeof r.name === 'string' &&
    typeof r.lastUsed === 'string' &&
    typeof r.artifactType === 'string' &&
    typeof r.annotations === 'object' &&
    typeof r.layer === 'object' &&
    r.layer !== null &&
    typeof r.layer.digest === 'string' &&
    DIGEST.test(r.layer.digest) &&
    typeof r.layer.size === 'number' &&
    typeof r.layer.title === 'string' &&
    typeof r.layer.directory === 'boolean'
  );
}

/** The record of a manifest digest; undefined when there is none; throws when it is damaged. */
export function readRecord(cacheDir: string, manifestDigest: string): Promise<CacheRecord | undefined> {
  return readJsonRecord(
    recordPathIn(cacheDir, manifestDigest),
    (v): v is CacheRecord => isRecord(v) && v.manifestDigest === manifestDigest,
  );
}

/** The descriptor a record stands for, as `registry`/`name` of this run ask for it. */
export function descriptorOf(r: CacheRecord, registry: string, name: string): ArtifactDescriptor {
  return {
    registry,
    name,
    manifestDigest: r.manifestDigest,
    artifactType: r.artifactType,
    ...(r.created !== undefined ? { created: r.created } : {}),
    annotations: r.annotations,
    layer: { ...r.layer },
  };
}

/**
 * A run uses `desc`: its record is written (or its last-used time and name:tag updated) before
 * the blob is read, so a concurrent prune sees it in use. The tag seen last stays when this use
 * had none (a pull by digest).
 */
export async function noteUse(cacheDir: string, desc: ArtifactDescriptor, now: Date = new Date()): Promise<void> {
  await holdCache(cacheDir);
  const path = recordPathIn(cacheDir, desc.manifestDigest);
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const old = await readRecord(cacheDir, desc.manifestDigest).catch(() => undefined);
  const tag = desc.tag ?? (old && old.name === desc.name ? old.tag : undefined);
  const rec: CacheRecord = {
    manifestDigest: desc.manifestDigest,
    registry: desc.registry,
    name: desc.name,
    ...(tag !== undefined ? { tag } : {}),
    lastUsed: now.toISOString(),
    artifactType: desc.artifactType,
    ...(desc.created !== undefined ? { created: desc.created } : {}),
    annotations: desc.annotations,
    layer: { ...desc.layer },
  };
  await writeWhole(path, `${JSON.stringify(rec)}\n`);
  await noteIndexUse(cacheDir, desc, now);
}

/** Why the cache cannot serve `manifestDigest` offline (after a full sha256 of the blob), or its record. */
export async function checkCached(cacheDir: string, manifestDigest: string): Promise<{ record: CacheRecord } | { missing: string }> {
  let record: CacheRecord | undefined;
  try {
    record = await readRecord(cacheDir, manifestDigest);
  } catch (e) {
    return { missing: (e as Error).message };
  }
  if (!record) return { missing: 'not in the cache' };
  const blob = blobPathIn(cacheDir, record.layer.digest);
  const st = await stat(blob).catch(() => undefined);
  if (!st) return { missing: `its payload ${record.layer.digest} is not in the cache` };
  if (st.size !== record.layer.size || (await digestFile(blob)).digest !== record.layer.digest)
    return { missing: `its payload ${record.layer.digest} in the cache does not match its digest (damaged)` };
  return { record };
}

// ---- runs in progress: one marker file per process using the cache -------------------------

const held = new Map<string, string>();

/** Marks this process as using `cacheDir` until it exits (a killed process's marker is stale: prune sees it dead). */
export async function holdCache(cacheDir: string): Promise<void> {
  if (held.has(cacheDir)) return;
  const dir = join(cacheDir, 'in-use');
  const path = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}.json`);
  held.set(cacheDir, path);
  const { procIsOwnNamespace: _, ...id } = processIdentity();
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    created: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    ...id,
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(owner)}\n`, { mode: 0o600, flag: 'wx' });
  if (held.size === 1)
    process.once('exit', () => {
      for (const p of held.values()) {
        try {
          unlinkSync(p);
        } catch {
          // gone already
        }
      }
    });
}

/** The earliest start of a run still using the cache (markers of provably dead processes are removed). */
async function earliestLiveUse(cacheDir: string): Promise<number | undefined> {
  const dir = join(cacheDir, 'in-use');
  const names = await readdir(dir).catch(() => [] as string[]);
  let earliest: number | undefined;
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const p = join(dir, n);
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(await readFile(p, 'utf8')) as LockOwner;
    } catch {
      owner = undefined;
    }
    const created = owner ? Date.parse(owner.created) : Number.NaN;
    if (owner && typeof owner.pid === 'number' && provablyDead(owner)) {
      await rm(p, { force: true });
      continue;
    }
    // Unreadable or from another machine: respected, from its file's time.
    const t = Number.isFinite(created) ? created : ((await stat(p).catch(() => undefined))?.mtimeMs ?? 0);
    earliest = earliest === undefined ? t : Math.min(earliest, t);
  }
  return earliest;
}

// ---- ls and prune ------------------------------------------------------------------------

export interface CacheEntry {
  /** The manifest digest (a record), or for a blob without one its own digest. */
  digest: string;
  /** The payload's size in bytes. */
  size: number;
  registry?: string;
  name?: string;
  tag?: string;
  /** ms since the epoch: the record's last use, or an orphan blob's mtime. */
  lastUsed: number;
  /** The payload blob's digest. */
  blob: string;
  /** False when the record's blob is not (or no longer) in the cache. */
  present: boolean;
  orphan?: true;
  /** A record that cannot be read (listed so that it can be seen and pruned, by its file's age). */
  damaged?: true;
}

export async function listCache(cacheDir: string): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  const recDir = join(cacheDir, 'artifacts', 'sha256');
  const blobDir = join(cacheDir, 'blobs', 'sha256');
  const blobs = new Map<string, { size: number; mtimeMs: number }>();
  for (const n of await readdir(blobDir).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(n)) continue;
    const st = await stat(join(blobDir, n)).catch(() => undefined);
    if (st?.isFile()) blobs.set(`sha256:${n}`, { size: st.size, mtimeMs: st.mtimeMs });
  }
  const referenced = new Set<string>();
  for (const n of (await readdir(recDir).catch(() => [] as string[])).sort()) {
    const m = /^([a-f0-9]{64})\.json$/.exec(n);
    if (!m) continue;
    const r = await readRecord(cacheDir, `sha256:${m[1]}`).catch(() => undefined);
    if (!r) {
      const st = await stat(join(recDir, n)).catch(() => undefined);
      if (st) out.push({ digest: `sha256:${m[1]}`, size: 0, lastUsed: st.mtimeMs, blob: '', present: false, damaged: true });
      continue;
    }
    referenced.add(r.layer.digest);
    out.push({
      digest: r.manifestDigest,
      size: r.layer.size,
      registry: r.registry,
      name: r.name,
      ...(r.tag !== undefined ? { tag: r.tag } : {}),
      lastUsed: Date.parse(r.lastUsed) || 0,
      blob: r.layer.digest,
      present: blobs.get(r.layer.digest)?.size === r.layer.size,
    });
  }
  for (const [d, b] of blobs)
    if (!referenced.has(d)) out.push({ digest: d, size: b.size, lastUsed: b.mtimeMs, blob: d, present: true, orphan: true });
  return out.sort((a, b) => b.lastUsed - a.lastUsed || a.digest.localeCompare(b.digest));
}

export interface PruneRules {
  /** Remove what was last used before now - olderThanMs. */
  olderThanMs?: number;
  /** Keep the N most recently used digests of each artifact name (whatever their age). */
  keepLast?: number;
  now: number;
  /** A run still using the cache started then: nothing used since is removed. */
  inUseSince?: number;
}

/**
 * Pure: which entries `prune` removes, and which blobs go with them (a blob goes only when no
 * kept entry needs it). An entry goes when it is older than `olderThanMs` (if given) AND not
 * among the `keepLast` newest of its name (if given), and was not used since a live run began.
 */
export function selectPrune(entries: CacheEntry[], rules: PruneRules): { remove: CacheEntry[]; blobs: string[] } {
  const rank = new Map<CacheEntry, number>();
  const byName = new Map<string, CacheEntry[]>();
  for (const e of entries) {
    if (e.orphan || e.damaged) continue;
    const k = e.name ?? '';
    byName.set(k, [...(byName.get(k) ?? []), e]);
  }
  for (const list of byName.values())
    for (const [i, e] of list.sort((a, b) => b.lastUsed - a.lastUsed || a.digest.localeCompare(b.digest)).entries()) rank.set(e, i);
  const goes = (e: CacheEntry): boolean => {
    if (rules.inUseSince !== undefined && e.lastUsed >= rules.inUseSince) return false;
    if (rules.olderThanMs !== undefined && e.lastUsed >= rules.now - rules.olderThanMs) return false;
    if (rules.keepLast !== undefined && !e.orphan && !e.damaged && (rank.get(e) ?? 0) < rules.keepLast) return false;
    return true;
  };
  const remove = entries.filter(goes);
  const kept = new Set(entries.filter((e) => !remove.includes(e)).map((e) => e.blob));
  const blobs = [...new Set(remove.filter((e) => e.present && !kept.has(e.blob)).map((e) => e.blob))];
  return { remove, blobs };
}

/** Temp files of runs that died mid-write are removed once they are this old. */
const STALE_TEMP_MS = 24 * 3600_000;

export async function pruneCache(
  cacheDir: string,
  rules: Omit<PruneRules, 'inUseSince' | 'now'>,
  now = Date.now(),
): Promise<{ removed: CacheEntry[]; blobs: string[]; bytes: number; inUseSince?: number }> {
  const inUseSince = await earliestLiveUse(cacheDir);
  const { remove, blobs } = selectPrune(await listCache(cacheDir), { ...rules, now, ...(inUseSince !== undefined ? { inUseSince } : {}) });
  let bytes = 0;
  // Records first: a run that looks for one after this finds none and fetches again (or, offline, says it is missing).
  for (const e of remove)
    if (!e.orphan) {
      await rm(recordPathIn(cacheDir, e.digest), { force: true });
      await rm(signaturesDirIn(cacheDir, e.digest), { recursive: true, force: true });
    }
  for (const b of blobs) {
    const p = blobPathIn(cacheDir, b);
    const st = await stat(p).catch(() => undefined);
    await rm(p, { force: true });
    bytes += st?.size ?? 0;
  }
  for (const d of [join(cacheDir, 'blobs', 'sha256'), join(cacheDir, 'artifacts', 'sha256')])
    for (const n of await readdir(d).catch(() => [] as string[])) {
      if (!n.startsWith('.') || !n.includes('.hades-')) continue;
      const st = await stat(join(d, n)).catch(() => undefined);
      if (st && st.mtimeMs < now - STALE_TEMP_MS && (inUseSince === undefined || st.mtimeMs < inUseSince))
        await rm(join(d, n), { force: true });
    }
  return { removed: remove, blobs, bytes, ...(inUseSince !== undefined ? { inUseSince } : {}) };
}
