/**
 * Builds one artifact's blobs and manifest into an OCI layout (no tag is written here): the
 * payload layer (a file's raw bytes, or the reproducible tar+gzip of a directory), the config
 * (the OCI empty config, or `config:`'s bytes), the manifest. Shared by FilesystemRegistry's
 * push and its multi-platform pushIndex (each platform is one such manifest).
 */
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { basename, resolve as resolvePath } from 'node:path';
import { RunError, UserError } from '../../errors.js';
import { newestMtime, packDirectory, scanDirectory } from '../archive.js';
import { digestOf } from '../digest.js';
import { isCode } from '../errno.js';
import { ANNOTATION, EMPTY_DIGEST, EMPTY_JSON, MEDIA_TYPE, type Descriptor, manifestBytes, storeBlob, storeBlobBytes } from '../layout.js';
import { check, pinnedCreated, titleProblem } from '../push-rules.js';
import type { PushSource } from '../types.js';

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
): Promise<BuiltArtifact> {
  const { path, st } = await statSource(source.path);
  const title = basename(path);
  let layer: Descriptor;
  let when: string;
  if (st.isFile()) {
    when = created ?? pinnedCreated(env, Math.floor(st.mtimeMs / 1000));
    const stored = await storeBlob(layout, createReadStream(path, { highWaterMark: 1024 * 1024 }));
    if (stored.size !== st.size)
      throw new RunError(`${path} changed while it was being pushed (size ${st.size} → ${stored.size}); push again`);
    layer = { mediaType: MEDIA_TYPE.layerTar, digest: stored.digest, size: stored.size, annotations: { [ANNOTATION.title]: title } };
  } else {
    const entries = await scanDirectory(path, title);
    when = created ?? pinnedCreated(env, newestMtime(entries));
    const mtime = Math.max(0, Math.floor(Date.parse(when) / 1000));
    const packed = packDirectory(entries, mtime);
    const stored = await storeBlob(layout, packed.stream);
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
  const config = await storeConfig(layout, source);
  const manifest = manifestBytes({
    artifactType,
    layer,
    annotations: { ...extra, [ANNOTATION.created]: when },
    ...(config ? { config } : {}),
  });
  const manifestDigest = digestOf(manifest);
  await storeBlobBytes(layout, manifest, manifestDigest, 'manifest');
  return { manifest, manifestDigest, created: when };
}

/** The config blob (`config:`), or the OCI empty config (returns undefined: inline in the manifest). */
export async function storeConfig(
  layout: string,
  source: PushSource,
): Promise<{ mediaType: string; digest: string; size: number } | undefined> {
  if (!source.config) {
    await storeBlobBytes(layout, EMPTY_JSON, EMPTY_DIGEST, 'empty config');
    return undefined;
  }
  const stored = await storeBlobBytes(layout, source.config.data, undefined, 'config');
  return { mediaType: source.config.mediaType, digest: stored.digest, size: stored.size };
}
