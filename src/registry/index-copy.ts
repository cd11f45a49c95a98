/**
 * Promote (copy between registries) for every artifact, single or multi-platform, the same for
 * every pair of registry kinds. A tag naming an image index is copied BY ITS DIGEST (the source
 * tag can't move meanwhile): oci → oci in one `oras cp` (the index with its manifests and
 * blobs); otherwise the source's IndexBundle (exact index bytes + one ArtifactBundle per
 * platform) is imported by the target, which verifies every blob and manifest on arrival. The
 * index digest stays the same; the destination tags follow the usual rules. A single artifact
 * goes through the backend's `copyTo` as before.
 */
import { RunError } from '../errors.js';
import { FilesystemRegistry } from './fs/registry.js';
import { importIndex as importFsIndex } from './fs/import-index.js';
import { indexDigestOf, indexPlatforms, isImageIndex, type IndexBundle } from './image-index.js';
import { readBlobVerified } from './layout.js';
import { fetchRaw } from './oci/read.js';
import { OciSettings } from './oci/settings.js';
import { importIndex as importOciIndex, receiveIndex } from './oci/write.js';
import type { IndexPushResult, PushResult, Registry } from './types.js';

/** The exact bytes of the index name@digest, verified. */
export async function readIndexBytes(reg: Registry, name: string, digest: string): Promise<Buffer> {
  if (reg instanceof FilesystemRegistry)
    return readBlobVerified(reg.layoutOf(name), { digest }, `registry "${reg.name}": artifact ${name}@${digest} (index)`);
  if (reg instanceof OciSettings) return (await fetchRaw(reg, name, { digest })).bytes;
  throw new RunError(`registry "${reg.name}" (${reg.type}) can't export an image index`);
}

/** The index name@digest by value: its bytes and each platform's artifact bundle. */
export async function exportIndex(reg: Registry, name: string, digest: string): Promise<IndexBundle> {
  if (!reg.exportArtifact) throw new RunError(`registry "${reg.name}" (${reg.type}) can't export artifacts`);
  const bytes = await readIndexBytes(reg, name, digest);
  const index = JSON.parse(bytes.toString('utf8')) as unknown;
  if (!isImageIndex(index)) throw new RunError(`registry "${reg.name}": ${name}@${digest} is not an image index`);
  const children: IndexBundle['children'] = [];
  for (const e of indexPlatforms(reg.name, name, `@${digest}`, index))
    children.push({ platform: e.platform, bundle: await reg.exportArtifact(name, { digest: e.descriptor.digest }) });
  return { registry: reg.name, name, digest, bytes, children };
}

/** Copies the index name@digest from `from` into `to` as name:tag. */
export async function copyIndex(
  from: Registry,
  to: Registry,
  name: string,
  digest: string,
  tag: string,
  opts: { semverAliases?: boolean } = {},
): Promise<IndexPushResult> {
  if (from instanceof OciSettings && to instanceof OciSettings) return receiveIndex(to, from, name, tag, digest, opts);
  if (!(to instanceof FilesystemRegistry) && !(to instanceof OciSettings))
    throw new RunError(`registry "${to.name}" (${to.type}) can't receive copies of image indexes`);
  const bundle = await exportIndex(from, name, digest);
  if (to instanceof FilesystemRegistry) return importFsIndex(to, name, tag, bundle, opts);
  return importOciIndex(to, name, tag, bundle, opts);
}

/** What a promote did: the digest the destination tag names, and the manifests whose signatures go with it. */
export interface Promoted {
  digest: string;
  unchanged: boolean;
  /** The manifests a host gets (one, or one per platform): their signatures are copied, and signed by `sign:`. */
  manifests: string[];
  /** A single artifact: the copy's result. */
  single?: PushResult;
  /** A multi-platform artifact: the copy's result. */
  index?: IndexPushResult;
}

/** name:tag of `from` into `to` as name:(asTag ?? tag), single or multi-platform. */
export async function promoteArtifact(
  from: Registry,
  to: Registry,
  name: string,
  tag: string,
  asTag?: string,
  opts: { semverAliases?: boolean } = {},
): Promise<Promoted> {
  const indexDigest = await indexDigestOf(from, name, { tag });
  if (indexDigest === undefined) {
    const single = await from.copyTo(to, name, tag, asTag, opts);
    return { digest: single.descriptor.manifestDigest, unchanged: single.unchanged, manifests: [single.descriptor.manifestDigest], single };
  }
  const index = await copyIndex(from, to, name, indexDigest, asTag ?? tag, opts);
  return {
    digest: index.indexDigest,
    unchanged: index.unchanged,
    manifests: index.platforms.map((p) => p.descriptor.manifestDigest),
    index,
  };
}
