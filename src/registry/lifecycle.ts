/**
 * What `hades registry tag` and `hades registry rm` mean for every registry type (the backends
 * implement them: fs/lifecycle.ts, oci/lifecycle.ts; `gc` is the filesystem registry's alone,
 * fs/gc.ts).
 *
 * `tag` adds IMMUTABLE tags to the digest an existing tag (or digest) resolves to, with the
 * rules of a push (push-rules.ts tagConflict): a tag that already holds that digest is left as
 * it is, a tag holding anything else — or a moving semver alias — is refused; no tag ever
 * moves. Alias-shaped names (vX, vX.Y, X, X.Y, latest) are refused as new tags: aliases are made
 * and moved only by a push or promote with semver aliases (an oci registry derives alias-ness
 * from the digest, so a hand-made `v1` on a release's digest would silently become a moving
 * alias there and an immutable tag in a filesystem registry).
 */
import { check } from './push-rules.js';
import { isAliasLikeTag, validateTag } from './reference.js';
import type { ArtifactDescriptor } from './types.js';

export interface AddTagsResult {
  /** The digest the tags name: a manifest, or the image index of a multi-platform artifact. */
  digest: string;
  /** A single artifact: its descriptor. */
  descriptor?: ArtifactDescriptor;
  /** A multi-platform artifact: its platforms (the index, its manifests and blobs are tagged as one). */
  platforms?: string[];
  /** Tags written now. */
  added: string[];
  /** Tags that already held this digest (nothing written). */
  unchanged: string[];
}

export interface RemovedTag {
  name: string;
  tag: string;
  /** The manifest digest the tag pointed to. */
  digest: string;
  /** Every tag the removal took away (more than `tag` only for an oci registry with --with-shared-tags). */
  removed: string[];
  /** Other tags still pointing at `digest` (filesystem registry; its blobs stay until gc). */
  sharedWith: string[];
}

/** The new tags of `hades registry tag`, validated and deduplicated (UserError otherwise). */
export function checkNewTags(tags: readonly string[]): string[] {
  if (tags.length === 0) check('registry tag needs at least one new tag', 'hades registry tag REGISTRY NAME:TAG NEWTAG…');
  const out: string[] = [];
  for (const t of tags) {
    check(validateTag(t));
    if (isAliasLikeTag(t))
      check(
        `tag ${t} has the form of a semver alias (vX, vX.Y, latest); aliases are moved only by push or promote --semver-aliases`,
        'add an exact tag (e.g. v1.2.3 or release-2024-06), or push the version with --semver-aliases',
      );
    if (!out.includes(t)) out.push(t);
  }
  return out;
}
