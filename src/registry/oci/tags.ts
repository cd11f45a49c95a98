/**
 * What an `oci` registry's tags hold. A remote tag can't carry annotations, so alias-ness is
 * derived, not stored (MUTABLE TAGS in registry.ts): for one operation RemoteTags reads lazily
 * what the tags that matter point to; tagInfos lists every tag for `hades registry ls`.
 */
import type { TagState } from '../push-rules.js';
import { ArtifactNotFound, type TagInfo } from '../types.js';
import { compareSemver, isAliasLikeTag, parseSemverTag, semverAliases, validateTag } from '../reference.js';
import { fetchManifest, fetchRaw, listTags, tagDigest } from './read.js';
import { isImageIndex, summarizeIndex } from '../image-index.js';
import { describeManifest } from '../push-rules.js';
import type { OciSettings } from './settings.js';

/**
 * The release tags whose semver aliases include `tag` (v1.2.3 and v1.2.10 for v1.2; pre-releases
 * never), highest version first: the versions an alias-shaped tag may stand for. None for a tag
 * that has no alias form.
 */
export function aliasCandidates(tag: string, tags: Iterable<string>): string[] {
  if (!isAliasLikeTag(tag)) return [];
  return [...tags]
    .filter((v) => {
      const s = parseSemverTag(v);
      return s !== null && s.prerelease === undefined && semverAliases(v).includes(tag);
    })
    .sort((a, b) => compareSemver(parseSemverTag(b)!, parseSemverTag(a)!));
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * What the registry holds for one name, read lazily and cached for one operation: the digests
 * of the tags that matter (one HEAD-like `manifest fetch --descriptor` each) and, only when an
 * alias-shaped tag is involved, the tag list. Used to check tags before writing and to move
 * aliases.
 */
export class RemoteTags {
  private readonly digests = new Map<string, Promise<string | undefined>>();
  private listed?: Promise<Set<string>>;
  /** Tags written (or found) during this operation, in case the list predates them. */
  private readonly seen = new Set<string>();
  constructor(
    private readonly reg: OciSettings,
    private readonly name: string,
  ) {}

  digestOf(tag: string): Promise<string | undefined> {
    let p = this.digests.get(tag);
    if (!p) {
      p = tagDigest(this.reg, this.name, tag);
      this.digests.set(tag, p);
    }
    return p;
  }

  /** Records what a tag points to (read, or just written by us), or that it is absent. */
  known(tag: string, digest: string | undefined): void {
    if (digest !== undefined) this.seen.add(tag);
    this.digests.set(tag, Promise.resolve(digest));
  }

  private async tags(): Promise<Set<string>> {
    this.listed ??= listTags(this.reg, this.name).then((l) => new Set(l ?? []));
    return new Set([...(await this.listed), ...this.seen]);
  }

  /** The release tag an alias-shaped tag stands for (see MUTABLE TAGS in registry.ts), or undefined. */
  async aliasVersion(tag: string, digest: string): Promise<string | undefined> {
    if (!isAliasLikeTag(tag)) return undefined; // no tag list needed
    for (const v of aliasCandidates(tag, await this.tags())) if ((await this.digestOf(v)) === digest) return v;
    return undefined;
  }

  /** What `tag` holds, as the shared tag rules see it (alias-ness derived), or undefined when absent. */
  async state(tag: string): Promise<TagState | undefined> {
    const digest = await this.digestOf(tag);
    if (digest === undefined) return undefined;
    const version = await this.aliasVersion(tag, digest);
    return version !== undefined ? { kind: 'alias', digest, version } : { kind: 'immutable', digest };
  }
}

/** Every valid tag of `name` with its manifest; alias-ness derived (see MUTABLE TAGS in registry.ts). */
export async function tagInfos(reg: OciSettings, name: string): Promise<TagInfo[]> {
  const list = await listTags(reg, name);
  if (list === null) throw new ArtifactNotFound(reg.name, name);
  // `sha256-<hex>`: oras's referrers tag schema (signatures on registries without the referrers API), not an artifact.
  const valid = [...new Set(list)].filter((t) => validateTag(t) === null && !/^sha256-[a-f0-9]{64}$/.test(t));
  const fetched = await mapLimit(valid, reg.concurrency, (t) => summary(reg, name, t));
  const digestOf = new Map(valid.map((t, i) => [t, fetched[i]!.digest]));
  const isAlias = (t: string, d: string): boolean => aliasCandidates(t, valid).some((v) => digestOf.get(v) === d);
  return valid
    .map((tag, i) => {
      const f = fetched[i]!;
      return {
        tag,
        manifestDigest: f.digest,
        size: f.size,
        ...(f.created !== undefined ? { created: f.created } : {}),
        mutable: isAlias(tag, f.digest),
        ...(f.platforms ? { platforms: f.platforms } : {}),
      };
    })
    .sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}

/** A tag's digest, payload size and created; for an image index its platforms and the sum of their payloads. */
async function summary(
  reg: OciSettings,
  name: string,
  tag: string,
): Promise<{ digest: string; size: number; created?: string; platforms?: string[] }> {
  const raw = await fetchRaw(reg, name, { tag }, { originOnly: true }); // listing tags: the origin only
  if (!isImageIndex(raw.manifest)) {
    const d = describeManifest(reg.name, name, tag, raw.digest, raw.manifest);
    return { digest: raw.digest, size: d.layer.size, ...(d.created !== undefined ? { created: d.created } : {}) };
  }
  const sum = await summarizeIndex(
    reg.name,
    name,
    tag,
    raw.manifest,
    async (d) => (await fetchManifest(reg, name, { digest: d.digest })).descriptor,
  );
  return { digest: raw.digest, ...sum };
}
