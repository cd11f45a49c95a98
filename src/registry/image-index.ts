/**
 * Multi-platform artifacts, the same for every registry: an OCI image index whose entries are
 * per-platform artifact manifests (each an ordinary one-layer Hades/oras artifact), each with
 * its `platform` (os, architecture, variant). The tag names the index.
 *
 *   {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
 *    "artifactType":"…","manifests":[{"mediaType":"…manifest.v1+json","digest":"…","size":N,
 *    "platform":{"architecture":"amd64","os":"linux"},"artifactType":"…"},…],
 *    "annotations":{"org.opencontainers.image.created":"…",…}}
 *
 * Entries are in the order the platforms were given; the index and every manifest in it carry
 * the same pinned `created` (so the same bytes give the same index digest). Reading: an index
 * resolves to the entry for the platform asked for (platform.ts choosePlatform), never a guess.
 * Pure, except `resolveInIndex`, which reads the chosen manifest through the backend, and
 * `indexDigestOf`, which asks a registry.
 */
import { RunError, UserError } from '../errors.js';
import { ANNOTATION, type Descriptor, type ImageIndex, MEDIA_TYPE, sortedAnnotations } from './layout.js';
import { choosePlatform, formatPlatform, parsePlatform, platformEntries, type Platform } from './platform.js';
import { PlatformNeeded, type ArtifactBundle, type ArtifactDescriptor, type Registry } from './types.js';

/** True for an image index (by media type, or a `manifests` array without `layers`). */
export function isImageIndex(m: unknown): m is ImageIndex {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as { mediaType?: unknown; manifests?: unknown; layers?: unknown };
  return o.mediaType === MEDIA_TYPE.index || (Array.isArray(o.manifests) && o.layers === undefined);
}

/** The platforms of a push, parsed; a bad platform or one listed twice is a UserError. */
export function checkPlatforms(list: { platform: string; path: string }[]): { platform: Platform; path: string }[] {
  if (list.length === 0) throw new UserError({ message: 'a multi-platform push needs at least one platform' });
  const seen = new Set<string>();
  return list.map(({ platform, path }) => {
    const p = parsePlatform(platform);
    if (typeof p === 'string') throw new UserError({ message: p });
    const key = formatPlatform(p);
    if (seen.has(key)) throw new UserError({ message: `platform ${key} is listed twice`, hint: 'give each platform one payload' });
    seen.add(key);
    return { platform: p, path };
  });
}

/** The exact bytes of the index of `entries` (given order). */
export function indexBytes(m: {
  artifactType: string;
  entries: { platform: Platform; digest: string; size: number }[];
  annotations: Record<string, string>;
}): Buffer {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    artifactType: m.artifactType,
    manifests: m.entries.map((e) => ({
      mediaType: MEDIA_TYPE.manifest,
      digest: e.digest,
      size: e.size,
      platform: {
        architecture: e.platform.architecture,
        os: e.platform.os,
        ...(e.platform.variant ? { variant: e.platform.variant } : {}),
      },
      artifactType: m.artifactType,
    })),
    annotations: sortedAnnotations(m.annotations),
  };
  return Buffer.from(JSON.stringify(index));
}

/** The platforms of an index, checked: every entry must be a manifest with a platform, each platform once. */
export function indexPlatforms(
  registry: string,
  name: string,
  refText: string,
  index: ImageIndex,
): { platform: string; descriptor: Descriptor }[] {
  const bad = (why: string): never => {
    throw new RunError(`registry "${registry}": artifact ${name}${refText} is an image index ${why}`);
  };
  const entries = platformEntries(index.manifests);
  if (entries.length === 0) bad('with no platform entries');
  if (entries.length !== index.manifests.length) bad('with entries that name no platform; Hades picks entries by platform');
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.descriptor.mediaType !== MEDIA_TYPE.manifest)
      bad(`whose ${e.platform} entry is not an image manifest (${e.descriptor.mediaType})`);
    if (seen.has(e.platform)) bad(`that lists ${e.platform} twice`);
    seen.add(e.platform);
  }
  return entries;
}

/**
 * name:tag is an index: the descriptor of its entry for `platform` (read by `readChild`), with
 * the index's digest, platforms and annotations. No platform → PlatformNeeded; no such entry →
 * RunError naming the platforms available.
 */
export async function resolveInIndex(
  ctx: { registry: string; name: string; tag?: string; indexDigest: string; refText: string },
  index: ImageIndex,
  platform: string | undefined,
  readChild: (d: Descriptor) => Promise<ArtifactDescriptor>,
): Promise<ArtifactDescriptor> {
  const entries = indexPlatforms(ctx.registry, ctx.name, ctx.refText, index);
  const names = entries.map((e) => e.platform);
  const where = `registry "${ctx.registry}": artifact ${ctx.name}${ctx.refText}`;
  if (platform === undefined)
    throw new PlatformNeeded(`${where} is multi-platform (${names.join(', ')}): choose a platform`, ctx.indexDigest, names);
  const chosen = choosePlatform(entries, platform);
  if (!chosen) throw new RunError(`${where} has no platform ${platform}; platforms available: ${names.join(', ')}`);
  const child = await readChild(chosen.descriptor);
  if (child.manifestDigest !== chosen.descriptor.digest)
    throw new RunError(`${where}: the ${chosen.platform} entry resolved to ${child.manifestDigest}, not ${chosen.descriptor.digest}`);
  return {
    ...child,
    ...(ctx.tag !== undefined ? { tag: ctx.tag } : {}),
    index: { digest: ctx.indexDigest, platforms: names, annotations: { ...(index.annotations as Record<string, string> | undefined) } },
    platform: chosen.platform,
  };
}

/** `created` of an index (its annotation), if any. */
export function indexCreated(index: ImageIndex): string | undefined {
  return (index.annotations as Record<string, string> | undefined)?.[ANNOTATION.created];
}

/** What `ls` shows for a tag naming an index: the sum of its payloads, its created, its platforms. */
export async function summarizeIndex(
  registry: string,
  name: string,
  tag: string,
  index: ImageIndex,
  read: (d: Descriptor) => Promise<ArtifactDescriptor>,
): Promise<{ size: number; created?: string; platforms: string[] }> {
  const entries = indexPlatforms(registry, name, `:${tag}`, index);
  let size = 0;
  for (const e of entries) size += (await read(e.descriptor)).layer.size;
  const created = indexCreated(index);
  return { size, ...(created !== undefined ? { created } : {}), platforms: entries.map((e) => e.platform) };
}

/**
 * An image index by value, for copies between registries (index-copy.ts): its exact bytes (so
 * the index digest is preserved) and one ArtifactBundle per platform entry.
 */
export interface IndexBundle {
  registry: string;
  name: string;
  digest: string;
  bytes: Buffer;
  children: { platform: string; bundle: ArtifactBundle }[];
}

/** The index digest name:ref names in `reg`, or undefined when it names a single artifact. */
export async function indexDigestOf(reg: Registry, name: string, ref: { tag?: string; digest?: string }): Promise<string | undefined> {
  try {
    await reg.resolve(name, ref);
    return undefined;
  } catch (e) {
    if (e instanceof PlatformNeeded) return e.indexDigest;
    throw e;
  }
}
