/**
 * OCI Image Layout on disk, written the way the `oras` CLI writes it (`oras push --oci-layout`):
 *
 *   <layout>/oci-layout          {"imageLayoutVersion":"1.0.0"}
 *   <layout>/index.json          manifest descriptors; tags are org.opencontainers.image.ref.name
 *   <layout>/blobs/sha256/<hex>  content-addressed blobs, read-only (0444)
 *
 * Every write is atomic: a temp file in the same directory (dot-named, so it can never be
 * mistaken for a blob or collide with an artifact name), fsync, rename, fsync of the directory.
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
import { fsyncDir } from './fs/lock.js';
import { validateDigest, validateName } from './reference.js';

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
  return bad ? `artifact name ${JSON.stringify(name)} can't be stored in a filesystem registry: "${bad}" is reserved by the OCI layout` : null;
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

function isCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
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

/** The layout's index, or null when it has none yet. Throws RunError when it is not a valid index. */
export async function readIndex(layout: string): Promise<ImageIndex | null> {
  const p = join(layout, 'index.json');
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

export async function writeIndex(layout: string, index: ImageIndex): Promise<void> {
  await atomicWriteFile(join(layout, 'index.json'), JSON.stringify(index));
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
    config: { mediaType: MEDIA_TYPE.empty, digest: EMPTY_DIGEST, size: 2, data: 'e30=' },
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
  let st;
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
 * bytes don't match its name (corrupt) is replaced.
 */
export async function storeBlob(
  layout: string,
  source: AsyncIterable<Buffer> | Readable,
  expected?: { digest: string; size?: number },
  what = 'blob',
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
export async function storeBlobBytes(layout: string, data: Buffer, expectedDigest?: string, what = 'blob'): Promise<StoredBlob> {
  const digest = digestOf(data);
  if (expectedDigest !== undefined && digest !== expectedDigest)
    throw new IntegrityError(`${what}: bytes don't match: expected ${expectedDigest}, actual ${digest}`, { digest: expectedDigest }, { digest, size: data.length });
  return storeBlob(layout, [data] as unknown as AsyncIterable<Buffer>, { digest, size: data.length }, what);
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
