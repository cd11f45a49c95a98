/**
 * One interface for every artifact registry: `filesystem` (an OCI Image Layout per
 * artifact name on disk) and `oci` (a remote registry through the oras CLI).
 * Registries are immutable: a tag once written never changes (semver alias tags are the
 * one documented exception). Every read is digest-verified.
 *
 * Two backends implement it: `fs/` (registry.ts, lock.ts) and `oci/` (registry.ts over
 * settings.ts, read.ts, tags.ts, write.ts; oras.ts, auth.ts, stage.ts). What both share lives
 * here: the rules of a push (push-rules.ts: tags, immutability, semver aliases, manifests), the
 * OCI image layout format (layout.ts), archive.ts, digest.ts, reference.ts, fetch.ts, errno.ts;
 * open.ts picks the backend for a hadesfile entry.
 */
import { RunError } from '../errors.js';
import type { Readable } from 'node:stream';
import type { AddTagsResult, RemovedTag } from './lifecycle.js';

export const DEFAULT_ARTIFACT_TYPE = 'application/vnd.hades.artifact.v1';
/** The media type of a `config:` blob unless `config_media_type` says otherwise. */
export const DEFAULT_CONFIG_MEDIA_TYPE = 'application/vnd.hades.config.v1+json';

/** What a name:tag resolves to: the artifact's manifest and its single payload layer. */
export interface ArtifactDescriptor {
  registry: string; // registry name from the hadesfile
  name: string;
  tag?: string;
  /** Digest of the image manifest ("sha256:…"): the artifact's identity. */
  manifestDigest: string;
  artifactType: string;
  created?: string; // org.opencontainers.image.created
  annotations: Record<string, string>;
  /** A config blob other than the OCI empty config (`config:` on an artifact). */
  config?: { mediaType: string; digest: string; size: number };
  /** Resolved through a multi-platform image index: the index, and the platform chosen from it. */
  index?: { digest: string; platforms: string[]; annotations: Record<string, string> };
  platform?: string;
  /** The payload: one file (or a tar+gzip of a directory). */
  layer: {
    digest: string; // "sha256:…" of the bytes delivered to hosts
    size: number;
    mediaType: string;
    title: string; // org.opencontainers.image.title
    /** True when the layer is a tar+gzip of a directory (oras's io.deis.oras.content.unpack). */
    directory: boolean;
  };
}

export interface PushSource {
  /** A file or a directory on the orchestrator. */
  path: string;
  /** Overrides the default artifact type. */
  artifactType?: string;
  /** Fixed creation time (ISO 8601) so identical bytes give identical manifests. */
  created?: string;
  annotations?: Record<string, string>;
  /** Stored as the manifest's config blob instead of the OCI empty config. */
  config?: { data: Buffer; mediaType: string };
}

/** A multi-platform push: one payload per platform (os/arch[/variant]), stored as an OCI image index. */
export interface IndexPushSource extends Omit<PushSource, 'path'> {
  platforms: { platform: string; path: string }[];
}

/** What a multi-platform push stored: the index (tagged) and its per-platform manifests. */
export interface IndexPushResult {
  indexDigest: string;
  unchanged: boolean;
  aliases?: AliasUpdate[];
  platforms: { platform: string; descriptor: ArtifactDescriptor }[];
}

/** A pull of an image index without a platform: the caller must choose one (e.g. the host's). */
export class PlatformNeeded extends RunError {
  constructor(
    message: string,
    readonly indexDigest: string,
    readonly platforms: string[],
  ) {
    super(message);
    this.name = 'PlatformNeeded';
  }
}

/** What a push with `semverAliases` did to one alias tag (v1.2, v1, latest). */
export interface AliasUpdate {
  tag: string;
  /** True when the alias now points at the pushed artifact (also when it already did). */
  moved: boolean;
  /** The version the alias pointed to before (e.g. "v1.2.0"), when it existed. */
  previous?: string;
  /** Why it was not moved: it points to a newer version, or an immutable tag has that name. */
  reason?: string;
}

export interface PushResult {
  descriptor: ArtifactDescriptor;
  /** True when the tag already held exactly this content (idempotent success). */
  unchanged: boolean;
  /** With `semverAliases`: one entry per alias tag of the pushed version (empty for pre-releases). */
  aliases?: AliasUpdate[];
}

/** One blob of an artifact being copied between registries; `open()` streams it, verified by the source. */
export interface BlobSource {
  mediaType: string;
  digest: string;
  size: number;
  open(): Promise<Readable>;
}

/**
 * An artifact by value, for copies between registries of any type: the exact manifest bytes
 * (so the manifest digest is preserved) and its blobs (config + layers).
 */
export interface ArtifactBundle {
  descriptor: ArtifactDescriptor;
  manifest: Buffer;
  manifestMediaType: string;
  blobs: BlobSource[];
}

export interface TagInfo {
  tag: string;
  manifestDigest: string;
  size: number;
  created?: string;
  /** Semver alias tags (v1, v1.2, latest) move; every other tag is immutable. */
  mutable: boolean;
  /** The tag names a multi-platform index: its platforms (size is then the sum of their payloads). */
  platforms?: string[];
}

export interface Registry {
  readonly name: string;
  readonly type: 'filesystem' | 'oci';
  push(name: string, tag: string, source: PushSource, opts?: { extraTags?: string[]; semverAliases?: boolean }): Promise<PushResult>;
  /** One OCI image index of per-platform artifacts under name:tag (see registry/image-index.ts). */
  pushIndex(
    name: string,
    tag: string,
    source: IndexPushSource,
    opts?: { extraTags?: string[]; semverAliases?: boolean },
  ): Promise<IndexPushResult>;
  /**
   * name + (tag | digest) → descriptor. Throws ArtifactNotFound when absent. An image index
   * resolves to its entry for `opts.platform`; without one it throws PlatformNeeded (naming the
   * platforms), with one it has no entry for, a RunError naming the platforms available.
   */
  resolve(name: string, ref: { tag?: string; digest?: string }, opts?: { platform?: string }): Promise<ArtifactDescriptor>;
  /** The config blob of `desc` (its bytes verified against the digest); the OCI empty config is `{}`. */
  readConfig(desc: ArtifactDescriptor): Promise<Buffer>;
  exists(name: string, ref: { tag?: string; digest?: string }): Promise<boolean>;
  /** A stream of the payload layer; errors if the bytes don't match the digest. */
  open(desc: ArtifactDescriptor): Promise<Readable>;
  /**
   * Writes the payload layer to the file `path`, the fast way for big payloads (the oci
   * registry lets oras write the file and hashes it as it grows). Verified like `open()` (sha256
   * and size, by Hades) and atomic: the bytes go to a temp file beside `path` that is renamed
   * over it (mode 0600) only once complete and verified; on any failure `path` is untouched
   * and no temp file stays. Optional: `fetchArtifact` (fetch.ts) streams `open()` without it.
   */
  fetchTo?(desc: ArtifactDescriptor, path: string): Promise<void>;
  names(): Promise<string[]>;
  tags(name: string): Promise<TagInfo[]>;
  /** Copy name:tag into `target` as name:(asTag ?? tag), by digest, verified on arrival. */
  copyTo(target: Registry, name: string, tag: string, asTag?: string, opts?: { semverAliases?: boolean }): Promise<PushResult>;
  /** The artifact by value (manifest bytes + blobs), the source side of a copy. */
  exportArtifact?(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle>;
  /**
   * Stores an artifact given by value under name:tag, keeping its manifest digest: blobs are
   * verified on arrival, then the tag is written with the usual immutability rules.
   */
  importArtifact?(
    name: string,
    tag: string,
    bundle: ArtifactBundle,
    opts?: { extraTags?: string[]; semverAliases?: boolean },
  ): Promise<PushResult>;
  /** `hades registry tag` (lifecycle.ts): adds immutable tags to what `ref` resolves to; never moves a tag. */
  addTags?(name: string, ref: { tag?: string; digest?: string }, tags: readonly string[]): Promise<AddTagsResult>;
  /** `hades registry rm` (lifecycle.ts): deletes one tag (oci: its manifest, refused while other tags share it unless withSharedTags). */
  removeTag?(name: string, tag: string, opts?: { withSharedTags?: boolean }): Promise<RemovedTag>;
}

export class ArtifactNotFound extends Error {
  constructor(
    readonly registry: string,
    readonly ref: string,
  ) {
    super(`artifact ${ref} not found in registry "${registry}"`);
    this.name = 'ArtifactNotFound';
  }
}

/** `exists` for a backend: true when `find` resolves, false when it says ArtifactNotFound, else its error. */
export async function existsBy(find: () => Promise<unknown>): Promise<boolean> {
  try {
    await find();
    return true;
  } catch (e) {
    if (e instanceof ArtifactNotFound) return false;
    throw e;
  }
}

/**
 * `copyTo` between registries with no faster path: the source's bundle through the target's
 * importArtifact (the digest stays the same; the target verifies what it receives).
 */
export async function copyByImport(
  source: Registry & { exportArtifact(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle> },
  target: Registry,
  name: string,
  tag: string,
  asTag: string | undefined,
  opts: { semverAliases?: boolean },
): Promise<PushResult> {
  if (!target.importArtifact)
    throw new RunError(`registry "${target.name}" (${target.type}) can't receive copies from registry "${source.name}"`);
  const bundle = await source.exportArtifact(name, { tag });
  return target.importArtifact(name, asTag ?? tag, bundle, opts);
}
