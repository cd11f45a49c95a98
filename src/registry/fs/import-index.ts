/**
 * Storing a multi-platform artifact given by value (an IndexBundle, image-index.ts) in a
 * filesystem registry, keeping its index digest: every blob and every child manifest is
 * verified on arrival and registered in flight (fs/inflight.ts) before it is looked at, then the
 * index blob, then the tags with the usual rules (commitTags: immutability, semver aliases).
 * Also the staging step of a copy into an oci registry (oci/write.ts importIndex).
 */
import { RunError } from '../../errors.js';
import { verifyBytes } from '../digest.js';
import { indexCreated, indexPlatforms, isImageIndex, type IndexBundle } from '../image-index.js';
import { ensureLayout, hasVerifiedBlob, type ImageManifest, MEDIA_TYPE, storeBlob, storeBlobBytes } from '../layout.js';
import { check, checkTags, describeManifest } from '../push-rules.js';
import { validateDigest } from '../reference.js';
import type { ArtifactDescriptor, IndexPushResult } from '../types.js';
import { startFlight, type Flight } from './inflight.js';
import type { FilesystemRegistry } from './registry.js';

export async function importIndex(
  reg: FilesystemRegistry,
  name: string,
  tag: string,
  bundle: IndexBundle,
  opts: { extraTags?: string[]; semverAliases?: boolean } = {},
): Promise<IndexPushResult> {
  const layout = reg.layoutOf(name);
  const tags = checkTags(tag, opts);
  check(validateDigest(bundle.digest));
  const from = `copy of ${bundle.name} from registry "${bundle.registry}"`;
  verifyBytes(bundle.bytes, { digest: bundle.digest }, `${from} (index)`);
  const index = JSON.parse(bundle.bytes.toString('utf8')) as unknown;
  if (!isImageIndex(index)) throw new RunError(`${from}: ${bundle.digest} is not an image index`);
  const entries = indexPlatforms(reg.name, name, `@${bundle.digest}`, index);
  await ensureLayout(layout);
  const flight = await startFlight(layout, `copy into ${name}:${tag}`);
  try {
    const platforms: { platform: string; descriptor: ArtifactDescriptor }[] = [];
    for (const e of entries) {
      const child = bundle.children.find((c) => c.bundle.descriptor.manifestDigest === e.descriptor.digest);
      if (!child) throw new RunError(`${from}: the source did not provide the ${e.platform} manifest ${e.descriptor.digest}`);
      platforms.push({ platform: e.platform, descriptor: await storeChild(reg, layout, name, child.bundle, e.descriptor, flight, from) });
    }
    await storeBlobBytes(layout, bundle.bytes, bundle.digest, `${from} (index)`, flight.register);
    const created = indexCreated(index);
    const res = await reg.commitTags(
      layout,
      name,
      {
        digest: bundle.digest,
        size: bundle.bytes.length,
        mediaType: MEDIA_TYPE.index,
        artifactType: typeof index.artifactType === 'string' ? index.artifactType : (platforms[0]?.descriptor.artifactType ?? ''),
        ...(created !== undefined ? { created } : {}),
      },
      tags,
      opts.semverAliases === true ? tag : undefined,
    );
    return { indexDigest: bundle.digest, platforms, ...res };
  } finally {
    await flight.end();
  }
}

/** One platform's manifest and its blobs into the layout, each verified and registered first. */
async function storeChild(
  reg: FilesystemRegistry,
  layout: string,
  name: string,
  bundle: IndexBundle['children'][number]['bundle'],
  entry: { digest: string; size: number },
  flight: Flight,
  from: string,
): Promise<ArtifactDescriptor> {
  verifyBytes(bundle.manifest, { digest: entry.digest, size: entry.size }, `${from} (manifest ${entry.digest})`);
  const manifest = JSON.parse(bundle.manifest.toString('utf8')) as ImageManifest;
  const descriptor = describeManifest(reg.name, name, undefined, entry.digest, manifest);
  for (const d of [manifest.config, ...manifest.layers]) {
    check(validateDigest(d.digest));
    await flight.register(d.digest); // before looking: see fs/inflight.ts
    if (await hasVerifiedBlob(layout, d.digest, d.size)) continue;
    const src = bundle.blobs.find((b) => b.digest === d.digest);
    if (!src) throw new RunError(`${from}: the source did not provide blob ${d.digest}`);
    await storeBlob(
      layout,
      await src.open(),
      { digest: d.digest, size: d.size },
      `${from} into registry "${reg.name}" (blob ${d.digest})`,
      flight.register,
    );
  }
  await storeBlobBytes(layout, bundle.manifest, entry.digest, `${from} (manifest ${entry.digest})`, flight.register);
  return descriptor;
}
