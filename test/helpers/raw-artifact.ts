/**
 * Artifacts written straight into a filesystem registry's OCI image layout, without Hades's push
 * (so they can be anything a hostile publisher writes): one layer, the empty config, one tag.
 */
import { gzipSync } from 'node:zlib';
import {
  ANNOTATION,
  EMPTY_DIGEST,
  EMPTY_JSON,
  MEDIA_TYPE,
  ensureLayout,
  layoutPath,
  manifestBytes,
  storeBlobBytes,
  writeIndex,
} from '../../src/registry/layout.js';
import { sha256 } from './tree.js';

/** `payload` as the one layer of artifact `name`, tagged `tag`; the manifest's digest. */
export async function writeRawArtifact(
  registryRoot: string,
  name: string,
  tag: string,
  a: { payload: Buffer; mediaType: string; layerAnnotations: Record<string, string>; annotations: Record<string, string> },
): Promise<string> {
  const layout = layoutPath(registryRoot, name);
  await ensureLayout(layout);
  const blob = await storeBlobBytes(layout, a.payload);
  await storeBlobBytes(layout, EMPTY_JSON, EMPTY_DIGEST, 'empty config');
  const manifest = manifestBytes({
    artifactType: 'application/vnd.unknown.artifact.v1',
    layer: { mediaType: a.mediaType, digest: blob.digest, size: a.payload.length, annotations: a.layerAnnotations },
    annotations: a.annotations,
  });
  const m = await storeBlobBytes(layout, manifest, undefined, 'manifest');
  await writeIndex(layout, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: [{ mediaType: MEDIA_TYPE.manifest, digest: m.digest, size: manifest.length, annotations: { [ANNOTATION.refName]: tag } }],
  });
  return m.digest;
}

/** A directory artifact as oras writes one (tar+gzip, unpack=true, title = the top directory) holding `tar`; the manifest's digest. */
export function writeDirectoryArtifact(registryRoot: string, name: string, tag: string, title: string, tar: Buffer): Promise<string> {
  return writeRawArtifact(registryRoot, name, tag, {
    payload: gzipSync(tar),
    mediaType: MEDIA_TYPE.layerTarGzip,
    layerAnnotations: { [ANNOTATION.title]: title, [ANNOTATION.unpack]: 'true', [ANNOTATION.contentDigest]: `sha256:${sha256(tar)}` },
    annotations: { [ANNOTATION.created]: '2024-01-01T00:00:00Z' },
  });
}
