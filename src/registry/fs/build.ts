/**
 * Builds one artifact's blobs and manifest into an OCI layout (no tag is written here): the
 * payload layer (a file's raw bytes, or the reproducible tar+gzip of a directory), the config
 * (the OCI empty config, or `config:`'s bytes), the manifest; a multi-platform artifact's
 * manifests and image index (buildIndex). Used by FilesystemRegistry's push and pushIndex;
 * also the listing of a registry root's artifact names (layoutNames).
 */
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { RunError, UserError } from '../../errors.js';
import { newestMtime, packDirectory, scanDirectory } from '../archive.js';
import { digestOf } from '../digest.js';
import { isCode } from '../errno.js';
import {
  ANNOTATION,
  EMPTY_DIGEST,
  EMPTY_JSON,
  MEDIA_TYPE,
  type Descriptor,
  type ImageManifest,
  manifestBytes,
  storeBlob,
  storeBlobBytes,
  validateLayoutName,
} from '../layout.js';
import { check, pinnedCreated, titleProblem } from '../push-rules.js';
import { indexBytes } from '../image-index.js';
import { formatPlatform, type Platform } from '../platform.js';
import type { ArtifactDescriptor, PushSource } from '../types.js';

export interface BuiltArtifact {
  manifest: Buffer;
  manifestDigest: string;
  created: string;
}

/** stat()s a push source: a regular file or a directory (UserError otherwise). */
export async function statSource(p: string): Promise<{ path: string; st: Stats }> {
  const path = resolvePath(p);
  let st: Stats;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw new UserError({
      message: `cannot push ${path}: ${isCode(e, 'ENOENT') ? 'no such file or directory' : (e as Error).message}`,
    });
  }
  if (!st.isFile() && !st.isDirectory()) check(`cannot push ${path}: not a regular file or directory`);
  check(titleProblem(basename(path)) ? `cannot push ${path}: it has no usable file name` : null);
  return { path, st };
}

/** The modification time (seconds) `created` is pinned to: a file's, or the newest inside a directory. */
export async function sourceMtime(p: string): Promise<number> {
  const { path, st } = await statSource(p);
  if (st.isFile()) return Math.floor(st.mtimeMs / 1000);
  return newestMtime(await scanDirectory(path, basename(path)));
}

/** Registers a blob digest with a push's in-flight record before storing it (fs/inflight.ts: gc keeps it). */
type Register = (digest: string) => Promise<void>;

/**
 * Stores the payload, config and manifest of `source` in `layout` (which exists). `created`:
 * the caller's pin, else SOURCE_DATE_EPOCH / the source's mtime. `extra`: checked annotations.
 */
export async function buildArtifact(
  layout: string,
  source: PushSource,
  artifactType: string,
  extra: Record<string, string>,
  created: string | undefined,
  env: Record<string, string | undefined>,
  register?: Register,
): Promise<BuiltArtifact> {
  const { path, st } = await statSource(source.path);
  const title = basename(path);
  let layer: Descriptor;
  let when: string;
  if (st.isFile()) {
    when = created ?? pinnedCreated(env, Math.floor(st.mtimeMs / 1000));
    const stored = await storeBlob(layout, createReadStream(path, { highWaterMark: 1024 * 1024 }), undefined, 'blob', register);
    if (stored.size !== st.size)
      throw new RunError(`${path} changed while it was being pushed (size ${st.size} → ${stored.size}); push again`);
    layer = { mediaType: MEDIA_TYPE.layerTar, digest: stored.digest, size: stored.size, annotations: { [ANNOTATION.title]: title } };
  } else {
    const entries = await scanDirectory(path, title);
    when = created ?? pinnedCreated(env, newestMtime(entries));
    const mtime = Math.max(0, Math.floor(Date.parse(when) / 1000));
    const packed = packDirectory(entries, mtime);
    const stored = await storeBlob(layout, packed.stream, undefined, 'blob', register);
    layer = {
      mediaType: MEDIA_TYPE.layerTarGzip,
      digest: stored.digest,
      size: stored.size,
      annotations: {
        [ANNOTATION.contentDigest]: packed.tar().digest,
        [ANNOTATION.unpack]: 'true',
        [ANNOTATION.title]: title,
      },
    };
  }
  const config = await storeConfig(layout, source, register);
  const manifest = manifestBytes({
    artifactType,
    layer,
    annotations: { ...extra, [ANNOTATION.created]: when },
    ...(config ? { config } : {}),
  });
  const manifestDigest = digestOf(manifest);
  await storeBlobBytes(layout, manifest, manifestDigest, 'manifest', register);
  return { manifest, manifestDigest, created: when };
}

/** The config blob (`config:`), or the OCI empty config (returns undefined: inline in the manifest). */
export async function storeConfig(
  layout: string,
  source: PushSource,
  register?: Register,
): Promise<{ mediaType: string; digest: string; size: number } | undefined> {
  if (!source.config) {
    await storeBlobBytes(layout, EMPTY_JSON, EMPTY_DIGEST, 'empty config', register);
    return undefined;
  }
  const stored = await storeBlobBytes(layout, source.config.data, undefined, 'config', register);
  return { mediaType: source.config.mediaType, digest: stored.digest, size: stored.size };
}

/**
 * A multi-platform artifact into `layout`: one manifest per platform (all with `created`), then
 * the image index over them (see image-index.ts), stored as a blob; no tag is written here.
 */
export async function buildIndex(
  layout: string,
  source: Omit<PushSource, 'path'>,
  platforms: { platform: Platform; path: string }[],
  artifactType: string,
  extra: Record<string, string>,
  created: string,
  env: Record<string, string | undefined>,
  describe: (digest: string, m: ImageManifest) => ArtifactDescriptor,
  register?: Register,
): Promise<{ index: Buffer; indexDigest: string; children: { platform: string; descriptor: ArtifactDescriptor }[] }> {
  const children: { platform: string; descriptor: ArtifactDescriptor }[] = [];
  const entries: { platform: Platform; digest: string; size: number }[] = [];
  for (const p of platforms) {
    const built = await buildArtifact(layout, { ...source, path: p.path }, artifactType, extra, created, env, register);
    children.push({
      platform: formatPlatform(p.platform),
      descriptor: describe(built.manifestDigest, JSON.parse(built.manifest.toString('utf8')) as ImageManifest),
    });
    entries.push({ platform: p.platform, digest: built.manifestDigest, size: built.manifest.length });
  }
  const index = indexBytes({ artifactType, entries, annotations: { ...extra, [ANNOTATION.created]: created } });
  const indexDigest = digestOf(index);
  await storeBlobBytes(layout, index, indexDigest, 'image index', register);
  return { index, indexDigest, children };
}

/** The artifact names under a filesystem registry's root: every directory holding an `oci-layout` (nested names allowed). */
export async function layoutNames(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string[]): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR')) return;
      throw e;
    }
    const here = rel.length > 0 && entries.some((e) => e.name === 'oci-layout' && e.isFile());
    if (here) {
      const name = rel.join('/');
      if (!validateLayoutName(name)) out.push(name);
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      if (here && e.name === 'blobs') continue;
      await walk(join(dir, e.name), [...rel, e.name]);
    }
  };
  await walk(root, []);
  return out.sort();
}
