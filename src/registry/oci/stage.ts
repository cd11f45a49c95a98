/**
 * Builds the artifact an `oci` push uploads, as a private OCI layout that `oras cp
 * --from-oci-layout` copies byte for byte. The result is exactly what the filesystem registry
 * stores for the same source (same manifest bytes, same digest — asserted by the tests):
 *
 *   - a directory goes through the filesystem registry itself (its reproducible tar+gzip);
 *   - a file takes a fast path that doesn't copy the payload: it is hashed in place (1 MiB
 *     reads, started by `prehashFile` before the registry is asked about the tag, so the two
 *     overlap) and the layout's layer blob is a symlink to it. The manifest is built with the same function
 *     (layout.ts manifestBytes), the same media types and annotations and the same pinned
 *     `created` rule. If the file changes after it was hashed, the registry refuses the upload
 *     (it verifies every blob's digest) and the caller reports the change.
 */
import { promises as fsp, type Stats } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { RunError, type Position } from '../../errors.js';
import { digestFile, digestHex, digestOf } from '../digest.js';
import { storeConfig } from '../fs/build.js';
import { FilesystemRegistry } from '../fs/registry.js';
import { ANNOTATION, MEDIA_TYPE, ensureLayout, manifestBytes, storeBlobBytes, writeIndex, type ImageManifest } from '../layout.js';
import type { PushSource } from '../types.js';
import { check, checkPushSource, pinnedCreated, titleProblem } from '../push-rules.js';

/** Name of the artifact inside a staging layout. */
export const STAGE = 'artifact';

export interface StagedArtifact {
  /** The OCI layout holding the artifact under `tag`. */
  layout: string;
  manifestDigest: string;
  manifest: ImageManifest;
  /** For the file fast path: the source as it was hashed (to detect a change during the upload). */
  file?: { path: string; size: number; mtimeMs: number; ino: number };
}

/** A file source stat'ed and being hashed (started early, so the hash overlaps other work). */
export interface PrehashedFile {
  path: string;
  st: Stats;
  hash: Promise<{ digest: string; size: number }>;
  /** Stops the hashing when the push fails before it is needed. */
  abort(): void;
}

/**
 * For a regular file: its stat and its hash, started now (1 MiB reads); undefined for anything
 * else (directories go through the filesystem registry). The hash promise never rejects unhandled.
 */
export async function prehashFile(source: PushSource): Promise<PrehashedFile | undefined> {
  const path = resolvePath(source.path);
  const st = await fsp.stat(path).catch(() => null);
  if (!st?.isFile()) return undefined;
  const ac = new AbortController();
  const hash = digestFile(path, ac.signal);
  hash.catch(() => undefined);
  return { path, st, hash, abort: () => ac.abort() };
}

/** True when the source as hashed is no longer what is on disk. */
export async function fileChanged(f: NonNullable<StagedArtifact['file']>): Promise<boolean> {
  const st = await fsp.stat(f.path).catch(() => null);
  return !st || st.size !== f.size || st.mtimeMs !== f.mtimeMs || st.ino !== f.ino;
}

export async function stageArtifact(
  dir: string,
  tag: string,
  source: PushSource & { artifactType: string },
  ctx: { registry: string; pos: Position; env: Record<string, string | undefined> },
  prehashed?: PrehashedFile,
): Promise<StagedArtifact> {
  const file = prehashed ?? (await prehashFile(source));
  if (!file) {
    // Directories (and every error case) as the filesystem registry does it.
    const stage = new FilesystemRegistry({ name: ctx.registry, type: 'filesystem', path: dir, pos: ctx.pos }, { env: ctx.env });
    const built = await stage.push(STAGE, tag, source);
    const layout = stage.layoutOf(STAGE);
    const manifest = JSON.parse(
      (await fsp.readFile(join(layout, 'blobs', 'sha256', digestHex(built.descriptor.manifestDigest)))).toString('utf8'),
    ) as ImageManifest;
    return { layout, manifestDigest: built.descriptor.manifestDigest, manifest };
  }

  // The file fast path: the same checks and the same manifest as FilesystemRegistry.push.
  const { path, st } = file;
  const extra = checkPushSource(source, source.artifactType);
  const title = basename(path);
  check(titleProblem(title) ? `cannot push ${path}: it has no usable file name` : null);
  const created = source.created ?? pinnedCreated(ctx.env, Math.floor(st.mtimeMs / 1000));

  const { digest, size } = await file.hash;
  if (size !== st.size) throw new RunError(`${path} changed while it was being pushed (size ${st.size} → ${size}); push again`);
  const layer = { mediaType: MEDIA_TYPE.layerTar, digest, size, annotations: { [ANNOTATION.title]: title } };
  const layout = join(dir, STAGE);
  await ensureLayout(layout);
  const config = await storeConfig(layout, source);
  const manifest = manifestBytes({
    artifactType: source.artifactType,
    layer,
    annotations: { ...extra, [ANNOTATION.created]: created },
    ...(config ? { config } : {}),
  });
  const manifestDigest = digestOf(manifest);
  await storeBlobBytes(layout, manifest, manifestDigest, 'manifest');
  await fsp.symlink(path, join(layout, 'blobs', 'sha256', digestHex(digest)));
  await writeIndex(layout, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: [
      {
        mediaType: MEDIA_TYPE.manifest,
        digest: manifestDigest,
        size: manifest.length,
        annotations: { [ANNOTATION.refName]: tag },
        artifactType: source.artifactType,
      },
    ],
  });
  return {
    layout,
    manifestDigest,
    manifest: JSON.parse(manifest.toString('utf8')) as ImageManifest,
    file: { path, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino },
  };
}
