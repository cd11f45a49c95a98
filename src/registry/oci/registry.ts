/**
 * The `oci` registry: a remote OCI distribution registry (registry:2, Harbor, GHCR, ECR, …)
 * through the `oras` CLI (oras.ts). `url` is `host[:port]/prefix`; artifact `<name>` lives
 * in the repository `<url>/<name>`.
 *
 * Artifacts are byte-for-byte what the filesystem registry writes: a push first builds the
 * artifact in a private temporary OCI layout (stage.ts: same manifest, same pinned
 * `org.opencontainers.image.created`, same reproducible tar+gzip for directories; a file is
 * hashed in place, not copied), then `oras cp --from-oci-layout` copies exactly those bytes to
 * the registry, so the manifest digest is the one the filesystem registry would give for the
 * same bytes. Copies
 * keep digests both ways: OCI → OCI is one `oras cp` (no bytes through local disk), OCI →
 * filesystem streams verified blobs into the filesystem registry (its lock and rules apply),
 * filesystem → OCI stages the verified bundle in a temp layout and `oras cp`s it.
 *
 * Reads are verified: manifests are fetched with their raw bytes and checked against the
 * digest the registry reports (and the one asked for); payloads stream from `oras blob fetch`
 * through verifyStream (`open`), or — for big payloads going to a file (`fetchTo`: `hades
 * registry pull`, the run's local cache) — oras writes the file itself and Hades hashes it as it
 * grows; either way a corrupt blob errors with the expected and actual digests. oras never
 * extracts anything here (the actions extract on hosts after checking every entry).
 *
 * A push of a file hashes it while the registry is asked about the tag (the hash and the tag
 * check overlap), then uploads it in place (no copy; see stage.ts).
 *
 * Semantics match the filesystem registry: tags are immutable (same content → `unchanged`,
 * other content → refused naming the existing digest, checked BEFORE anything is uploaded),
 * and semver aliases (opt-in) move forward only.
 *
 * RACE (inherent to remote registries): the immutability check and the upload are two
 * separate requests, and the OCI distribution API has no conditional tag write. Another pusher
 * that writes the same tag between our check and our `oras cp` is not detected; the later
 * write wins. The filesystem registry closes this window with a lock; a remote registry can't
 * from the client side. Where it matters, turn on the registry's own tag immutability (Harbor,
 * ECR, Artifactory…) or serialise publishing (one CI job per name).
 *
 * MUTABLE TAGS: a remote tag can't carry annotations, so alias-ness is derived, not stored: a
 * tag is a moving alias (`mutable: true`) when its name has an alias form (vX, vX.Y, X, X.Y,
 * latest) AND it points at the same manifest as a release tag whose aliases include that name
 * (v1.2 and v1.2.3 → same digest). The version it stands for is the highest such tag. An
 * alias-shaped tag that points at nothing else (e.g. a hand-pushed `latest`) is immutable, as
 * is an alias whose version tag was deleted.
 */
import type { Readable } from 'node:stream';
import type { OciRegistrySpec } from '../../config/model.js';
import { EMPTY_JSON, type ImageManifest } from '../layout.js';
import { isImageIndex, resolveInIndex } from '../image-index.js';
import { check, describeManifest } from '../push-rules.js';
import { validateTag } from '../reference.js';
import {
  copyByImport,
  existsBy,
  type ArtifactBundle,
  type ArtifactDescriptor,
  type IndexPushResult,
  type IndexPushSource,
  type PushResult,
  type PushSource,
  type Registry,
  type TagInfo,
} from '../types.js';
import { blobUrl, hostAuthorization } from './blob-url.js';
import { addTags, removeTag } from './lifecycle.js';
import type { AddTagsResult, RemovedTag } from '../lifecycle.js';
import {
  exportArtifact,
  fetchManifest,
  fetchRaw,
  fetchTo,
  listTags,
  names,
  openBlob,
  openLayer,
  tagDigest,
  type FetchedManifest,
} from './read.js';
import { OciSettings, type OciRegistryOptions } from './settings.js';
import { tagInfos } from './tags.js';
import { importArtifact, push, pushIndex, receive } from './write.js';

export { OciRegistryError, orasVersion, MIN_ORAS_VERSION } from './oras.js';
export type { OciRegistryOptions } from './settings.js';

export class OciRegistry extends OciSettings implements Registry {
  readonly type = 'oci' as const;

  // -------------------------------------------------------------------------------------------
  // reading (read.ts)

  /** Manifest → descriptor; refuses manifests that are not a one-layer artifact. */
  describe(name: string, tag: string | undefined, manifestDigest: string, m: ImageManifest): ArtifactDescriptor {
    return describeManifest(this.name, name, tag, manifestDigest, m);
  }

  /** A manifest's raw bytes, verified against the registry's digest and the requested one. */
  fetchManifest(name: string, ref: { tag?: string; digest?: string }): Promise<FetchedManifest> {
    return fetchManifest(this, name, ref);
  }

  /** The manifest digest a tag points to, or undefined when absent. */
  tagDigest(name: string, tag: string): Promise<string | undefined> {
    return tagDigest(this, name, tag);
  }

  /** The tags of a repository, or null when the repository does not exist. */
  listTags(name: string): Promise<string[] | null> {
    return listTags(this, name);
  }

  /** A verified stream of one blob. */
  openBlob(name: string, blob: { digest: string; size: number }, what: string): Promise<Readable> {
    return openBlob(this, name, blob, what);
  }

  open(desc: ArtifactDescriptor): Promise<Readable> {
    return openLayer(this, desc);
  }

  /** The payload into a file: oras writes it, Hades hashes it as it grows. */
  fetchTo(desc: ArtifactDescriptor, path: string): Promise<void> {
    return fetchTo(this, desc, path);
  }

  names(): Promise<string[]> {
    return names(this);
  }

  private readonly hostAuth = new Map<string, { value: Promise<{ value?: string; validMs?: number }>; at: number; validMs?: number }>();

  /**
   * Where a host fetches the payload blob itself (pull `via: host`, see blob-url.ts) without
   * downloading it here: its URL, and `authorization()` — the header value the host sends
   * (undefined: anonymous), asked once per artifact name and reused while a token has more
   * than 15 s left (a failed request is not kept: the next host asks again).
   */
  hostFetch(desc: ArtifactDescriptor): { url: string; size: number; insecure: boolean; authorization(): Promise<string | undefined> } {
    this.checkName(desc.name);
    const name = desc.name;
    return {
      url: blobUrl(this, name, desc.layer.digest),
      size: desc.layer.size,
      insecure: this.insecure,
      authorization: async () => {
        const now = Date.now();
        let c = this.hostAuth.get(name);
        if (!c || (c.validMs !== undefined && now + 15_000 >= c.at + c.validMs)) {
          const entry: { value: Promise<{ value?: string; validMs?: number }>; at: number; validMs?: number } = {
            value: hostAuthorization(this, name),
            at: now,
          };
          entry.value.then(
            (a) => {
              if (a.validMs !== undefined) entry.validMs = a.validMs;
            },
            () => this.hostAuth.get(name) === entry && this.hostAuth.delete(name),
          );
          this.hostAuth.set(name, entry);
          c = entry;
        }
        return (await c.value).value;
      },
    };
  }

  exportArtifact(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle> {
    return exportArtifact(this, name, ref);
  }

  tags(name: string): Promise<TagInfo[]> {
    return tagInfos(this, name);
  }

  async resolve(name: string, ref: { tag?: string; digest?: string }, opts: { platform?: string } = {}): Promise<ArtifactDescriptor> {
    const raw = await fetchRaw(this, name, ref);
    if (!isImageIndex(raw.manifest)) return this.describe(name, ref.tag, raw.digest, raw.manifest);
    return resolveInIndex(
      { registry: this.name, name, ...(ref.tag !== undefined ? { tag: ref.tag } : {}), indexDigest: raw.digest, refText: raw.refText },
      raw.manifest,
      opts.platform,
      async (d) => (await this.fetchManifest(name, { digest: d.digest })).descriptor,
    );
  }

  exists(name: string, ref: { tag?: string; digest?: string }): Promise<boolean> {
    return existsBy(() => fetchRaw(this, name, ref));
  }

  /** The config blob, verified (the OCI empty config without a request). */
  async readConfig(desc: ArtifactDescriptor): Promise<Buffer> {
    if (!desc.config) return Buffer.from(EMPTY_JSON);
    const s = await this.openBlob(
      desc.name,
      desc.config,
      `registry "${this.name}": artifact ${desc.name}@${desc.manifestDigest} (config ${desc.config.digest})`,
    );
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  // -------------------------------------------------------------------------------------------
  // writing (write.ts)

  push(name: string, tag: string, source: PushSource, opts: { extraTags?: string[]; semverAliases?: boolean } = {}): Promise<PushResult> {
    return push(this, name, tag, source, opts);
  }

  pushIndex(
    name: string,
    tag: string,
    source: IndexPushSource,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<IndexPushResult> {
    return pushIndex(this, name, tag, source, opts);
  }

  importArtifact(
    name: string,
    tag: string,
    bundle: ArtifactBundle,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<PushResult> {
    return importArtifact(this, name, tag, bundle, opts);
  }

  async copyTo(target: Registry, name: string, tag: string, asTag?: string, opts: { semverAliases?: boolean } = {}): Promise<PushResult> {
    this.checkName(name);
    check(validateTag(tag));
    if (asTag !== undefined) check(validateTag(asTag));
    if (target instanceof OciRegistry) {
      // Registry to registry in one `oras cp` (by digest, so the source tag can't move meanwhile).
      const f = await this.fetchManifest(name, { tag });
      return receive(target, this, name, asTag ?? tag, f, opts);
    }
    return copyByImport(this, target, name, tag, asTag, opts);
  }

  // -------------------------------------------------------------------------------------------
  // lifecycle (lifecycle.ts)

  addTags(name: string, ref: { tag?: string; digest?: string }, tags: readonly string[]): Promise<AddTagsResult> {
    return addTags(this, name, ref, tags);
  }

  removeTag(name: string, tag: string, opts: { withSharedTags?: boolean } = {}): Promise<RemovedTag> {
    return removeTag(this, name, tag, opts);
  }
}

/** The registry for a `type: oci` entry of a hadesfile. Checks url and credentials; nothing is contacted until used. */
export function openOciRegistry(spec: OciRegistrySpec, opts: OciRegistryOptions = {}): OciRegistry {
  return new OciRegistry(spec, opts);
}
