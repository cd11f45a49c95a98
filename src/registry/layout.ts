/**
 * OCI Image Layout on disk, written the way the `oras` CLI writes it (`oras push --oci-layout`):
 *
 *   <layout>/oci-layout          {"imageLayoutVersion":"1.0.0"}
 *   <layout>/index.json          manifest descriptors; tags are org.opencontainers.image.ref.name
 *   <layout>/blobs/sha256/<hex>  content-addressed blobs, read-only (0444)
 *
 * Every write is atomic: a temp file in the same directory (dot-named, so it can never be
 * mistaken for a blob or collide with an artifact name), fsync, rename, fsync of the directory.
 * Index commits are also fenced against each other (commitIndex): see INDEX GENERATIONS below.
 * Blobs are hashed while written and the hash decides (or, for copies, must equal) their name.
 * Every read is verified against the digest (and size) it was asked for.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { RunError } from '../errors.js';
import { digestFile, digestHex, digestOf, FILE_CHUNK, IntegrityError, verifyBytes, verifyStream } from './digest.js';
import { isCode } from './errno.js';
import { fsyncDir } from './fs/lock.js';
import { validateDigest, validateName } from './reference.js';
import { meterAdd } from './progress.js';

export const MEDIA_TYPE = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
  /** oras's media type for a single file. */
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  /** oras's media type for a directory (tar+gzip, unpacked on pull). */
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export const ANNOTATION = {
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  refName: 'org.opencontainers.image.ref.name',
  /** oras: digest of the uncompressed tar of a directory layer. */
  contentDigest: 'io.deis.oras.content.digest',
  /** oras: "true" → the layer is a directory to unpack. */
  unpack: 'io.deis.oras.content.unpack',
  /** Hades: the index entry is a moving semver alias tag. */
  mutable: 'io.hades.tag.mutable',
  /** Hades: the version tag an alias tag was last moved to (e.g. "v1.2.3"). */
  aliasOf: 'io.hades.tag.version',
} as const;

export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  data?: string;
  [extra: string]: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  [extra: string]: unknown;
}

/** Path components that would collide with a layout's own files if used in a name. */
export const RESERVED_NAME_COMPONENTS = ['blobs', 'index.json', 'oci-layout'];

/** validateName plus the components a filesystem registry can't use (they are a layout's own files). */
export function validateLayoutName(name: string): string | null {
  const e = validateName(name);
  if (e) return e;
  const bad = name.split('/').find((c) => RESERVED_NAME_COMPONENTS.includes(c));
  return bad
    ? `artifact name ${JSON.stringify(name)} can't be stored in a filesystem registry: "${bad}" is reserved by the OCI layout`
    : null;
}

/** `<root>/<name>` — callers validate `name` first (validateLayoutName). */
export function layoutPath(root: string, name: string): string {
  return join(root, ...name.split('/'));
}

export function blobPath(layout: string, digest: string): string {
  const e = validateDigest(digest);
  if (e) throw new RunError(`refusing blob reference: ${e}`);
  return join(layout, 'blobs', 'sha256', digestHex(digest));
}

function tmpName(prefix: string): string {
  return `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Writes `data` to `path` atomically: temp in the same dir, fsync, rename, fsync dir. */
export async function atomicWriteFile(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const dir = join(path, '..');
  const tmp = join(dir, tmpName(`.${path.split('/').pop()}.tmp-`));
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** Creates the layout's directories and `oci-layout` file when missing (idempotent, race-safe). */
export async function ensureLayout(layout: string): Promise<void> {
  await fsp.mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  try {
    const cur = await fsp.readFile(join(layout, 'oci-layout'), 'utf8');
    const v = (JSON.parse(cur) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    if (v !== '1.0.0') throw new RunError(`${join(layout, 'oci-layout')}: unsupported imageLayoutVersion ${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof RunError) throw e;
    if (!isCode(e, 'ENOENT')) throw new RunError(`${join(layout, 'oci-layout')} is not a valid OCI layout marker`, { cause: e });
    await atomicWriteFile(join(layout, 'oci-layout'), OCI_LAYOUT_CONTENT);
  }
}

export async function isLayout(dir: string): Promise<boolean> {
  try {
    return (await fsp.stat(join(dir, 'oci-layout'))).isFile();
  } catch {
    return false;
  }
}

/**
 * INDEX GENERATIONS — the fenced index commit. Every index Hades commits carries a generation
 * number (index annotation io.hades.index.generation) and is claimed exclusively under the
 * name `.index.gen-<N>` with link() before it is renamed onto index.json (the file oras reads;
 * it ignores dot files). link() fails with EEXIST when another writer already committed that
 * generation, so each generation has exactly one author, built on the content of the one
 * before it: no commit can silently overwrite another, whether or not the writers still hold
 * the layout's lock (a holder paused past the stale limit may have lost it).
 *
 *  - The committed index is index.json, unless a higher `.index.gen-<N>` exists than the
 *    generation index.json carries (a commit in flight, or a writer that resumed after a pause
 *    and renamed an older generation back): then it is that highest generation file. Readers
 *    and writers both follow this rule. An index.json without the annotation (written by oras
 *    or an older Hades) counts as generation 0, or as the highest generation when oras
 *    rewrote our index in place (it keeps the annotation).
 *  - A writer builds generation N+1 on the committed index N, writes it to a temp file, claims
 *    `.index.gen-<N+1>` with link(); EEXIST → rebuild on the new committed index. After the
 *    claim it checks that no higher generation exists (a claim after a long pause can hit a
 *    pruned, old number) — else it drops out and rebuilds. Then rename onto index.json, and
 *    converge: while a higher generation exists than index.json carries, install that one
 *    (a hard link of it, renamed onto index.json). Finally generations below the newest are
 *    removed: only the newest ones matter for claims and reads.
 */
export const INDEX_GENERATION = 'io.hades.index.generation';
const GEN_PREFIX = '.index.gen-';

function genPath(layout: string, gen: number): string {
  return join(layout, `${GEN_PREFIX}${gen}`);
}

function generationOf(index: ImageIndex | null): number {
  const v = (index?.annotations as Record<string, unknown> | undefined)?.[INDEX_GENERATION];
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : 0;
  return n;
}

/** The generation numbers claimed in the layout, highest first. */
async function generations(layout: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(layout);
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) return [];
    throw e;
  }
  return names
    .filter((n) => n.startsWith(GEN_PREFIX) && /^\d{1,15}$/.test(n.slice(GEN_PREFIX.length)))
    .map((n) => Number(n.slice(GEN_PREFIX.length)))
    .sort((a, b) => b - a);
}

/** The committed index and its generation (see INDEX GENERATIONS). */
async function readCommitted(layout: string): Promise<{ index: ImageIndex | null; gen: number }> {
  for (let attempt = 0; ; attempt++) {
    const index = await readIndexFile(join(layout, 'index.json'));
    const g = generationOf(index);
    const high = (await generations(layout))[0] ?? 0;
    if (high <= g) return { index, gen: g };
    const newer = await readIndexFile(genPath(layout, high));
    if (newer) return { index: newer, gen: Math.max(high, generationOf(newer)) };
    // Pruned between the listing and the read: an even newer one exists; look again.
    if (attempt >= 20) throw new RunError(`${join(layout, 'index.json')}: the index keeps changing while it is read; try again`);
  }
}

/** The layout's committed index, or null when it has none yet. Throws RunError when it is not a valid index. */
export async function readIndex(layout: string): Promise<ImageIndex | null> {
  return (await readCommitted(layout)).index;
}

async function readIndexFile(p: string): Promise<ImageIndex | null> {
  let text: string;
  try {
    text = await fsp.readFile(p, 'utf8');
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) return null;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RunError(`${p} is not valid JSON (${(e as Error).message}); refusing to use or rewrite it`);
  }
  const idx = v as Partial<ImageIndex>;
  if (typeof v !== 'object' || v === null || idx.schemaVersion !== 2 || !Array.isArray(idx.manifests))
    throw new RunError(`${p} is not an OCI image index (schemaVersion 2 with a "manifests" array)`);
  for (const [i, m] of idx.manifests.entries()) {
    const d = m as Partial<Descriptor>;
    if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || validateDigest(d.digest) || typeof d.size !== 'number')
      throw new RunError(`${p}: manifests[${i}] is not a valid descriptor`);
  }
  return idx as ImageIndex;
}

/** Writes index.json unfenced: only for private layouts (e.g. a stage nobody else writes). */
export async function writeIndex(layout: string, index: ImageIndex): Promise<void> {
  await atomicWriteFile(join(layout, 'index.json'), JSON.stringify(index));
}

export interface CommitIndexHooks {
  /**
   * Another writer committed first. Throw to give up (e.g. LockLostError when the lock is
   * gone); return to rebuild on the newer index.
   */
  onConflict?: () => Promise<void>;
  /** Test hooks: called right before the generation is claimed / before it is renamed onto index.json. */
  beforeClaim?: () => Promise<void>;
  beforeInstall?: () => Promise<void>;
}

/** A private temp name in the layout directory (swept by sweepTempFiles once abandoned). */
function indexTemp(layout: string): string {
  return join(layout, tmpName('.index.json.tmp-'));
}

/**
 * The fenced index commit (see INDEX GENERATIONS): `build` gets the committed index (null when
 * none) and returns the next one, or null when nothing needs writing. It is called again with
 * the newer index whenever another writer committed first, so it must be a pure function of
 * its argument (it may throw, e.g. a UserError for a conflicting tag). Returns whether it wrote.
 */
export async function commitIndex(
  layout: string,
  build: (current: ImageIndex | null) => ImageIndex | null,
  hooks: CommitIndexHooks = {},
): Promise<{ written: boolean; generation: number }> {
  for (let attempt = 0; ; attempt++) {
    if (attempt >= 1000)
      throw new RunError(`${join(layout, 'index.json')}: gave up after ${attempt} commits of other writers came first; try again`);
    const { index: current, gen } = await readCommitted(layout);
    const next = build(current);
    if (!next) return { written: false, generation: gen };
    const mine = gen + 1;
    const body: ImageIndex = {
      ...next,
      annotations: { ...(next.annotations as Record<string, string> | undefined), [INDEX_GENERATION]: String(mine) },
    };
    const tmp = indexTemp(layout);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(JSON.stringify(body));
      await fh.sync();
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    try {
      await hooks.beforeClaim?.();
      try {
        await fsp.link(tmp, genPath(layout, mine));
      } catch (e) {
        if (!isCode(e, 'EEXIST')) throw e;
        await hooks.onConflict?.();
        continue;
      }
      await fsyncDir(layout);
      if (((await generations(layout))[0] ?? 0) > mine) {
        // A claim after a long pause can hit a number already pruned; a newer index exists.
        await hooks.onConflict?.();
        continue;
      }
      await hooks.beforeInstall?.();
      await fsp.rename(tmp, join(layout, 'index.json'));
      await fsyncDir(layout);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    await converge(layout);
    await pruneGenerations(layout);
    return { written: true, generation: mine };
  }
}

/** While a higher generation exists than index.json carries, installs it (a writer that resumed late may have put an older one back). */
async function converge(layout: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let onDisk: ImageIndex | null;
    try {
      onDisk = await readIndexFile(join(layout, 'index.json'));
    } catch {
      return; // not ours to repair (written by someone else, mid-write)
    }
    const high = (await generations(layout))[0] ?? 0;
    if (high <= generationOf(onDisk)) return;
    const tmp = indexTemp(layout);
    try {
      await fsp.link(genPath(layout, high), tmp);
    } catch (e) {
      if (isCode(e, 'ENOENT')) continue; // pruned meanwhile: a newer one exists
      throw e;
    }
    try {
      await fsp.rename(tmp, join(layout, 'index.json'));
      await fsyncDir(layout);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
}

/** Removes every generation file below the newest (claims of stale writers included). */
async function pruneGenerations(layout: string): Promise<void> {
  const [, ...older] = await generations(layout);
  for (const g of older) await fsp.rm(genPath(layout, g), { force: true }).catch(() => undefined);
}

/** Deterministic annotations: keys sorted (what Go's encoding/json does for oras). */
export function sortedAnnotations(a: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(a).sort()) out[k] = a[k]!;
  return out;
}

/** The exact bytes of an artifact manifest, fields in oras's order. */
export function manifestBytes(m: {
  artifactType: string;
  layer: Descriptor;
  annotations: Record<string, string>;
  /** A config blob (`config:` of an artifact); default the OCI empty config, inline. */
  config?: { mediaType: string; digest: string; size: number };
}): Buffer {
  const layer: Descriptor = {
    mediaType: m.layer.mediaType,
    digest: m.layer.digest,
    size: m.layer.size,
    ...(m.layer.annotations ? { annotations: sortedAnnotations(m.layer.annotations) } : {}),
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    artifactType: m.artifactType,
    config: m.config
      ? { mediaType: m.config.mediaType, digest: m.config.digest, size: m.config.size }
      : { mediaType: MEDIA_TYPE.empty, digest: EMPTY_DIGEST, size: 2, data: 'e30=' },
    layers: [layer],
    annotations: sortedAnnotations(m.annotations),
  };
  return Buffer.from(JSON.stringify(manifest));
}

export interface StoredBlob {
  digest: string;
  size: number;
  /** The blob was already there (verified identical); nothing was written. */
  existed: boolean;
}

/** True when the blob exists with this size and its bytes hash to its name. */
export async function hasVerifiedBlob(layout: string, digest: string, size?: number): Promise<boolean> {
  const p = blobPath(layout, digest);
  let st: import('node:fs').Stats;
  try {
    st = await fsp.stat(p);
  } catch {
    return false;
  }
  if (!st.isFile() || (size !== undefined && st.size !== size)) return false;
  return (await digestFile(p)).digest === digest;
}

/**
 * Streams `source` into the layout's blob store. The bytes are hashed while written to a temp
 * file (`blobs/sha256/.tmp-…`), fsync'd, checked against `expected` when given, then renamed to
 * their digest. An existing identical blob is kept and the temp dropped; an existing blob whose
 * bytes don't match its name (corrupt) is replaced. `register` (a push's in-flight registration,
 * fs/inflight.ts) is told the digest before the blob is looked up or placed.
 */
export async function storeBlob(
  layout: string,
  source: AsyncIterable<Buffer> | Readable,
  expected?: { digest: string; size?: number },
  what = 'blob',
  register?: (digest: string) => Promise<void>,
): Promise<StoredBlob> {
  const dir = join(layout, 'blobs', 'sha256');
  const tmp = join(dir, tmpName('.tmp-'));
  const hash = createHash('sha256');
  let size = 0;
  const fh = await fsp.open(tmp, 'wx', 0o444);
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      meterAdd(chunk.length);
    }
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  const digest = `sha256:${hash.digest('hex')}`;
  try {
    if (expected && (digest !== expected.digest || (expected.size !== undefined && size !== expected.size))) {
      throw new IntegrityError(
        `${what}: received bytes don't match: expected ${expected.digest}${expected.size !== undefined ? ` (${expected.size} bytes)` : ''}, actual ${digest} (${size} bytes)`,
        expected,
        { digest, size },
      );
    }
    const final = join(dir, digestHex(digest));
    // In-flight registration (fs/inflight.ts): before the blob is looked up or placed.
    await register?.(digest);
    if (await hasVerifiedBlob(layout, digest, size)) {
      await fsp.rm(tmp, { force: true });
      return { digest, size, existed: true };
    }
    await fsp.rename(tmp, final);
    await fsyncDir(dir);
    return { digest, size, existed: false };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** storeBlob for bytes in memory. */
export async function storeBlobBytes(
  layout: string,
  data: Buffer,
  expectedDigest?: string,
  what = 'blob',
  register?: (digest: string) => Promise<void>,
): Promise<StoredBlob> {
  const digest = digestOf(data);
  if (expectedDigest !== undefined && digest !== expectedDigest)
    throw new IntegrityError(
      `${what}: bytes don't match: expected ${expectedDigest}, actual ${digest}`,
      { digest: expectedDigest },
      { digest, size: data.length },
    );
  return storeBlob(layout, [data] as unknown as AsyncIterable<Buffer>, { digest, size: data.length }, what, register);
}

/** A small blob (manifest) read fully and verified. */
export async function readBlobVerified(layout: string, desc: { digest: string; size?: number }, what: string): Promise<Buffer> {
  const p = blobPath(layout, desc.digest);
  let data: Buffer;
  try {
    data = await fsp.readFile(p);
  } catch (e) {
    if (isCode(e, 'ENOENT')) throw new RunError(`${what}: blob ${desc.digest} is missing (${p})`);
    throw e;
  }
  verifyBytes(data, desc, what, p);
  return data;
}

/** A verified stream of a blob. Throws (RunError) at once when the blob is missing. */
export async function openBlobVerified(layout: string, desc: { digest: string; size?: number }, what: string): Promise<Readable> {
  const p = blobPath(layout, desc.digest);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, 'r');
  } catch (e) {
    if (isCode(e, 'ENOENT')) throw new RunError(`${what}: blob ${desc.digest} is missing (${p})`);
    throw e;
  }
  const raw = fh.createReadStream({ highWaterMark: FILE_CHUNK });
  const verified = verifyStream(desc, what, p);
  // The bytes start flowing now: a small blob can be read to its end — and a mismatch error
  // the stream — before the caller starts consuming it. The caller still gets that error (an
  // errored stream rejects its iterator / pipeline); it just must not surface as an uncaught
  // 'error' event meanwhile.
  verified.on('error', () => undefined);
  raw.on('error', (e) => verified.destroy(e));
  verified.on('close', () => {
    if (!raw.destroyed) raw.destroy();
  });
  return raw.pipe(verified);
}

/** Removes temp files left by killed writers (older than `olderThanMs`; live writers keep theirs fresh). */
export async function sweepTempFiles(layout: string, olderThanMs: number): Promise<number> {
  let removed = 0;
  for (const dir of [layout, join(layout, 'blobs', 'sha256')]) {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (!(n.startsWith('.tmp-') || /^\..+\.tmp-/.test(n))) continue;
      const p = join(dir, n);
      try {
        const st = await fsp.stat(p);
        if (st.isFile() && Date.now() - st.mtimeMs > olderThanMs) {
          await fsp.rm(p, { force: true });
          removed++;
        }
      } catch {
        // gone already
      }
    }
  }
  return removed;
}
