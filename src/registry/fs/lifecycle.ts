/**
 * `hades registry tag` and `hades registry rm` for the filesystem registry (the shared meaning is
 * registry/lifecycle.ts). Both write index.json only, inside the layout's lock, through the fenced
 * commit (layout.ts commitIndex). `rm` takes one tag out of the index; the manifest and blobs
 * stay until `hades registry gc` (fs/gc.ts) finds nothing reaching them.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../../errors.js';
import {
  ANNOTATION,
  blobPath,
  commitIndex,
  isLayout,
  MEDIA_TYPE,
  readBlobVerified,
  readIndex,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from '../layout.js';
import { indexCreated, indexDigestOf, indexPlatforms } from '../image-index.js';
import { checkNewTags, type AddTagsResult, type RemovedTag } from '../lifecycle.js';
import { check } from '../push-rules.js';
import { validateTag } from '../reference.js';
import { ArtifactNotFound } from '../types.js';
import { startFlight } from './inflight.js';
import { acquireLock } from './lock.js';
import type { FilesystemRegistry } from './registry.js';
import type { IndexEntry } from './tags.js';

const refName = (m: Descriptor): string | undefined => m.annotations?.[ANNOTATION.refName];

export async function addTags(
  reg: FilesystemRegistry,
  name: string,
  ref: { tag?: string; digest?: string },
  newTags: readonly string[],
): Promise<AddTagsResult> {
  const tags = checkNewTags(newTags);
  const layout = reg.layoutOf(name);
  if (!(await isLayout(layout))) throw new ArtifactNotFound(reg.name, `${name}${ref.tag !== undefined ? `:${ref.tag}` : `@${ref.digest}`}`);
  // The manifest and its blobs are registered before they are looked at (fs/inflight.ts), so a
  // concurrent gc can't take them between this read and the commit of the new tags.
  const flight = await startFlight(layout, `tag ${name}`);
  try {
    const index = await indexOf(reg, layout, name, ref);
    const single = index ? undefined : await reg.loadManifest(name, ref);
    const digest = index ? index.digest : single!.descriptor.manifestDigest;
    // The index (if any), each manifest it names, and every blob of each: all registered, all checked present.
    const manifests = index ? index.children : [{ digest, manifest: single!.manifest }];
    const present = [...new Set([digest, ...manifests.flatMap((m) => [m.digest, ...m.manifest.layers.map((l) => l.digest)])])];
    for (const d of [...present, ...manifests.map((m) => m.manifest.config.digest)]) await flight.register(d);
    for (const d of present) {
      try {
        await fsp.stat(blobPath(layout, d));
      } catch {
        throw new RunError(
          `registry "${reg.name}": ${name}: blob ${d} disappeared while tagging (was the tag removed and gc run meanwhile?)`,
        );
      }
    }
    // For the report only (the commit decides, under the lock): which tags already held it.
    const had = new Set(((await readIndex(layout))?.manifests ?? []).filter((m) => m.digest === digest).map((m) => refName(m)));
    const entry = index ? index.entry : reg.entryOf(single!.descriptor, single!.bytes.length);
    const res = await reg.commitTags(layout, name, entry, tags, undefined);
    const added = res.unchanged ? [] : tags.filter((t) => !had.has(t));
    return {
      digest,
      ...(index ? { platforms: index.children.map((c) => c.platform) } : { descriptor: { ...single!.descriptor, tag: tags[0]! } }),
      added,
      unchanged: tags.filter((t) => !added.includes(t)),
    };
  } finally {
    await flight.end();
  }
}

export async function removeTag(reg: FilesystemRegistry, name: string, tag: string): Promise<RemovedTag> {
  const layout = reg.layoutOf(name);
  check(validateTag(tag));
  if (!(await isLayout(layout))) throw new ArtifactNotFound(reg.name, `${name}:${tag}`);
  const lock = await acquireLock(join(layout, '.lock'), {
    timeoutMs: reg.lockTimeoutMs,
    staleMs: reg.staleLockMs,
    purpose: `rm ${name}:${tag}`,
  });
  try {
    let removed: Descriptor[] = [];
    let kept: Descriptor[] = [];
    await commitIndex(
      layout,
      (current) => {
        const entries = current?.manifests ?? [];
        removed = entries.filter((m) => refName(m) === tag);
        kept = entries.filter((m) => refName(m) !== tag);
        if (!current || removed.length === 0) return null;
        return { ...current, manifests: kept };
      },
      { beforeClaim: () => lock.assertHeld(), onConflict: () => lock.assertHeld() },
    );
    if (removed.length === 0) throw new ArtifactNotFound(reg.name, `${name}:${tag}`);
    const digest = removed[0]!.digest;
    const sharedWith = kept
      .filter((m) => m.digest === digest && refName(m) !== undefined)
      .map((m) => refName(m)!)
      .sort();
    return { name, tag, digest, removed: [tag], sharedWith };
  } finally {
    await lock.release();
  }
}

/**
 * When `ref` names a multi-platform artifact: its index (digest, index.json entry) and each
 * platform's manifest, read and verified; undefined for a single artifact.
 */
async function indexOf(
  reg: FilesystemRegistry,
  layout: string,
  name: string,
  ref: { tag?: string; digest?: string },
): Promise<{ digest: string; entry: IndexEntry; children: { platform: string; digest: string; manifest: ImageManifest }[] } | undefined> {
  const digest = await indexDigestOf(reg, name, ref);
  if (digest === undefined) return undefined;
  const what = `registry "${reg.name}": artifact ${name}@${digest}`;
  const bytes = await readBlobVerified(layout, { digest }, `${what} (index)`);
  const index = JSON.parse(bytes.toString('utf8')) as ImageIndex;
  const children = [];
  for (const e of indexPlatforms(reg.name, name, `@${digest}`, index)) {
    const m = await readBlobVerified(layout, e.descriptor, `${what} (${e.platform} manifest)`);
    children.push({ platform: e.platform, digest: e.descriptor.digest, manifest: JSON.parse(m.toString('utf8')) as ImageManifest });
  }
  const created = indexCreated(index);
  const artifactType = typeof index.artifactType === 'string' ? index.artifactType : '';
  return {
    digest,
    entry: { digest, size: bytes.length, mediaType: MEDIA_TYPE.index, artifactType, ...(created !== undefined ? { created } : {}) },
    children,
  };
}
