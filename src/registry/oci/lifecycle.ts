/**
 * `hades registry tag` and `hades registry rm` for an oci registry (the shared meaning is
 * registry/lifecycle.ts), through oras: `oras tag REPO@DIGEST NEWTAG…` and `oras manifest
 * delete --force REPO@DIGEST`.
 *
 * The distribution API deletes MANIFESTS, not tags: deleting a tag's manifest removes every
 * tag pointing at it. So `rm` first looks for other tags on the same digest and refuses (naming
 * them) unless `withSharedTags` says to delete them all. Registries may refuse deletes
 * altogether (distribution: unless `storage.delete.enabled: true`): that is said plainly.
 *
 * RACE (as for pushes, see registry.ts): the checks and the write are separate requests; a tag
 * written by someone else in between is not seen (a new tag on the same digest would go with
 * the manifest).
 */
import { RunError, UserError } from '../../errors.js';
import { checkNewTags, type AddTagsResult, type RemovedTag } from '../lifecycle.js';
import { check, describeManifest, refuseConflicts, tagConflict } from '../push-rules.js';
import { validateTag } from '../reference.js';
import { ArtifactNotFound } from '../types.js';
import { OciRegistryError } from './oras.js';
import { fetchRaw, listTags, tagDigest } from './read.js';
import { indexPlatforms, isImageIndex } from '../image-index.js';
import type { OciSettings } from './settings.js';
import { RemoteTags } from './tags.js';

export async function addTags(
  reg: OciSettings,
  name: string,
  ref: { tag?: string; digest?: string },
  newTags: readonly string[],
): Promise<AddTagsResult> {
  reg.checkName(name);
  const tags = checkNewTags(newTags);
  // A multi-platform artifact: its index is tagged (`oras tag` of the index digest; its manifests stay with it).
  const f = await fetchRaw(reg, name, ref);
  const platforms = isImageIndex(f.manifest) ? indexPlatforms(reg.name, name, f.refText, f.manifest).map((e) => e.platform) : undefined;
  const descriptor = platforms ? undefined : describeManifest(reg.name, name, ref.tag, f.digest, f.manifest);
  const state = new RemoteTags(reg, name);
  const conflicts: (string | null)[] = [];
  for (const t of tags) conflicts.push(tagConflict(name, t, f.digest, await state.state(t)));
  refuseConflicts(conflicts);
  const added: string[] = [];
  for (const t of tags) if ((await state.digestOf(t)) === undefined) added.push(t);
  if (added.length)
    await reg.oras.run(
      reg.call(['tag'], [`${reg.repo(name)}@${f.digest}`, ...added], { what: `tag ${name}@${f.digest} as ${added.join(', ')}` }),
    );
  return {
    digest: f.digest,
    ...(descriptor ? { descriptor } : {}),
    ...(platforms ? { platforms } : {}),
    added,
    unchanged: tags.filter((t) => !added.includes(t)),
  };
}

/** The tags among `tags` that point at `digest` (a few lookups at a time). */
async function tagsOn(reg: OciSettings, name: string, tags: string[], digest: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < tags.length; i += reg.concurrency) {
    const chunk = tags.slice(i, i + reg.concurrency);
    const digests = await Promise.all(chunk.map((t) => tagDigest(reg, name, t)));
    chunk.forEach((t, j) => {
      if (digests[j] === digest) out.push(t);
    });
  }
  return out.sort();
}

export async function removeTag(reg: OciSettings, name: string, tag: string, opts: { withSharedTags?: boolean } = {}): Promise<RemovedTag> {
  reg.checkName(name);
  check(validateTag(tag));
  const digest = await tagDigest(reg, name, tag);
  if (digest === undefined) throw new ArtifactNotFound(reg.name, `${name}:${tag}`);
  const others = await tagsOn(
    reg,
    name,
    ((await listTags(reg, name)) ?? []).filter((t) => t !== tag && validateTag(t) === null),
    digest,
  );
  if (others.length && !opts.withSharedTags)
    throw new UserError({
      message:
        `tag ${tag} of ${name} in registry "${reg.name}" shares its manifest ${digest} with ${others.join(', ')}; ` +
        'an oci registry deletes manifests, not tags, so removing it would remove those tags too',
      hint: `add --with-shared-tags to delete ${[tag, ...others].join(', ')} together`,
    });
  try {
    await reg.oras.run(reg.call(['manifest', 'delete'], ['--force', `${reg.repo(name)}@${digest}`], { what: `delete ${name}@${digest}` }));
  } catch (e) {
    if (e instanceof OciRegistryError && /\bunsupported\b|status code 405\b|method not allowed/i.test(e.message))
      throw new RunError(
        `registry "${reg.name}" (${reg.url}) refuses to delete ${name}:${tag} (${digest}): it does not allow deletes — ` +
          'enable them on the registry (distribution / docker-registry: storage.delete.enabled: true); nothing was removed',
        { cause: e },
      );
    throw e;
  }
  return { name, tag, digest, removed: [tag, ...others].sort(), sharedWith: [] };
}
