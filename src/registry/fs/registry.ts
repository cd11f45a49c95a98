/**
 * The `filesystem` registry: one OCI Image Layout per artifact name under the registry's path
 * (`<path>/<name>/`, names may be nested: `team/app` → `<path>/team/app/`), byte-compatible
 * with `oras push/pull --oci-layout`.
 *
 * An artifact is an image manifest with `artifactType`, the OCI empty config, and ONE layer:
 *   - a file: its raw bytes, mediaType application/vnd.oci.image.layer.v1.tar (oras's default
 *     for files), annotation org.opencontainers.image.title = basename;
 *   - a directory: a reproducible tar+gzip (see archive.ts), mediaType …tar+gzip, with oras's
 *     io.deis.oras.content.digest (uncompressed tar) and io.deis.oras.content.unpack "true".
 * The manifest's org.opencontainers.image.created is pinned — PushSource.created, else
 * SOURCE_DATE_EPOCH, else the file's mtime (a directory: the newest file mtime inside) — so the
 * same bytes always give the same manifest digest.
 *
 * Tags are immutable: the same tag with the same manifest digest is an idempotent success
 * (`unchanged`), anything else is refused naming the existing digest. The one exception are
 * semver alias tags (opt-in `semverAliases`): pushing v1.2.3 (or 1.2.3) moves v1.2, v1 and
 * latest (1.2, 1, latest) — each only forward: an alias already on a newer version stays
 * (publishing a v1.0.9 hotfix after v1.2.0 moves v1.0 but not v1 or latest). Pre-releases
 * (v1.2.3-rc1) move nothing. Alias entries carry io.hades.tag.mutable "true" and
 * io.hades.tag.version (the version they point to). A normal push to a tag that currently is
 * an alias is refused (aliases are not frozen by accident); an alias whose name is taken by an
 * immutable tag is not moved, and the push result says so.
 *
 * Concurrency: blobs are content-addressed and written atomically without a lock; the
 * check-then-write of tags in index.json happens inside a per-layout lock (lock.ts), and the
 * index is replaced atomically, so readers (who never lock) see the old or the new index. The
 * commit itself is fenced (layout.ts commitIndex): a writer that lost its lock while paused can
 * never overwrite another's commit.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import type { FilesystemRegistrySpec } from '../../config/model.js';
import { RunError, UserError } from '../../errors.js';
import { checkPlatforms, isImageIndex, resolveInIndex, summarizeIndex } from '../image-index.js';
import { buildArtifact, buildIndex, layoutNames, sourceMtime, statSource } from './build.js';
import { verifyBytes } from '../digest.js';
import {
  ANNOTATION,
  EMPTY_JSON,
  MEDIA_TYPE,
  type Descriptor,
  type ImageManifest,
  ensureLayout,
  isLayout,
  layoutPath,
  openBlobVerified,
  readBlobVerified,
  readIndex,
  type CommitIndexHooks,
  storeBlob,
  storeBlobBytes,
  sweepTempFiles,
  validateLayoutName,
  hasVerifiedBlob,
} from '../layout.js';
import { check, checkPushSource, checkTags, describeManifest, pinnedCreated } from '../push-rules.js';
import { writeAtomically } from '../fetch.js';
import { startFlight, type Flight } from './inflight.js';
import { addTags, removeTag } from './lifecycle.js';
import type { AddTagsResult, RemovedTag } from '../lifecycle.js';
import { DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_STALE_LOCK_MS } from './lock.js';
import { commitTags, entryOf, refuseTagConflicts, type IndexEntry } from './tags.js';
import { validateDigest, validateTag } from '../reference.js';
import {
  ArtifactNotFound,
  copyByImport,
  existsBy,
  DEFAULT_ARTIFACT_TYPE,
  type ArtifactBundle,
  type ArtifactDescriptor,
  type IndexPushResult,
  type IndexPushSource,
  type PushResult,
  type PushSource,
  type Registry,
  type TagInfo,
} from '../types.js';

export interface FilesystemRegistryOptions {
  /** Longest wait for a layout's index lock (default 30 s). */
  lockTimeoutMs?: number;
  /**
   * A lock without a heartbeat for this long is stale (default 60 s); a lock whose process is
   * provably gone (same boot and PID namespace) is stale at once.
   */
  staleLockMs?: number;
  /** Test hooks around the fenced index commit (see layout.ts commitIndex). */
  indexCommitHooks?: Pick<CommitIndexHooks, 'beforeClaim' | 'beforeInstall'>;
  /** Test hook: a push or copy stored its blobs and is about to take the lock to commit its tags (gc's window). */
  beforeTagLock?: () => Promise<void>;
  /** Where SOURCE_DATE_EPOCH is read from (default process.env). */
  env?: Record<string, string | undefined>;
}

const STALE_TEMP_MS = 60 * 60 * 1000;
/** OCI distribution's limit for manifests; anything larger is not read into memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export class FilesystemRegistry implements Registry {
  readonly type = 'filesystem' as const;
  readonly name: string;
  /** The registry's root directory. */
  readonly root: string;
  /** Lock timings, also for fs/lifecycle.ts and fs/gc.ts. */
  readonly lockTimeoutMs: number;
  readonly staleLockMs: number;
  private readonly indexCommitHooks: Pick<CommitIndexHooks, 'beforeClaim' | 'beforeInstall'>;
  private readonly env: Record<string, string | undefined>;
  private readonly beforeTagLock: (() => Promise<void>) | undefined;

  constructor(spec: FilesystemRegistrySpec, opts: FilesystemRegistryOptions = {}) {
    this.name = spec.name;
    this.root = resolvePath(spec.path);
    this.defaultArtifactType = spec.artifactType ?? DEFAULT_ARTIFACT_TYPE;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.staleLockMs = opts.staleLockMs ?? DEFAULT_STALE_LOCK_MS;
    this.indexCommitHooks = opts.indexCommitHooks ?? {};
    this.env = opts.env ?? process.env;
    this.beforeTagLock = opts.beforeTagLock;
  }

  readonly defaultArtifactType: string;

  /** `<root>/<name>` for a valid name (UserError otherwise). */
  layoutOf(name: string): string {
    check(validateLayoutName(name));
    return layoutPath(this.root, name);
  }

  private what(name: string, ref: string): string {
    return `registry "${this.name}": artifact ${name}${ref}`;
  }

  // -------------------------------------------------------------------------------------------
  // push

  async push(
    name: string,
    tag: string,
    source: PushSource,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<PushResult> {
    const layout = this.layoutOf(name);
    const tags = checkTags(tag, opts);
    const artifactType = source.artifactType ?? this.defaultArtifactType;
    const extra = checkPushSource(source, artifactType);

    await statSource(source.path);
    await ensureLayout(layout);
    await sweepTempFiles(layout, STALE_TEMP_MS).catch(() => 0);
    // Until the tags are committed, gc must not take what this push stores (fs/inflight.ts).
    const flight = await startFlight(layout, `push ${name}:${tag}`);
    try {
      // Re-publishing the same bytes under an existing tag must be "unchanged" even when the
      // source was rebuilt (new mtime): reuse the tag's pinned `created`, so identical content
      // gives the identical manifest; other content still differs and is refused.
      const existingCreated = source.created === undefined ? await this.createdOfTag(layout, tag) : undefined;
      const built = await buildArtifact(layout, source, artifactType, extra, source.created ?? existingCreated, this.env, flight.register);
      const descriptor = this.describe(name, tag, built.manifestDigest, JSON.parse(built.manifest.toString('utf8')) as ImageManifest);
      const res = await this.commitTags(
        layout,
        name,
        this.entryOf(descriptor, built.manifest.length),
        tags,
        opts.semverAliases === true ? tag : undefined,
      );
      return { descriptor, ...res };
    } finally {
      await flight.end();
    }
  }

  /**
   * A multi-platform push (see image-index.ts): one manifest per platform, all with the same
   * pinned `created` (the caller's, else the tag's when it exists, else the newest source), then
   * the index, tagged like any push.
   */
  async pushIndex(
    name: string,
    tag: string,
    source: IndexPushSource,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<IndexPushResult> {
    const layout = this.layoutOf(name);
    const tags = checkTags(tag, opts);
    const artifactType = source.artifactType ?? this.defaultArtifactType;
    const extra = checkPushSource({ ...source, path: '' }, artifactType);
    const platforms = checkPlatforms(source.platforms);
    let newest = 0;
    for (const p of platforms) newest = Math.max(newest, await sourceMtime(p.path));
    await ensureLayout(layout);
    await sweepTempFiles(layout, STALE_TEMP_MS).catch(() => 0);
    const flight = await startFlight(layout, `push ${name}:${tag}`);
    try {
      const created = source.created ?? (await this.createdOfTag(layout, tag)) ?? pinnedCreated(this.env, newest);
      const { index, indexDigest, children } = await buildIndex(
        layout,
        source,
        platforms,
        artifactType,
        extra,
        created,
        this.env,
        (digest, m) => this.describe(name, undefined, digest, m),
        flight.register,
      );
      const res = await this.commitTags(
        layout,
        name,
        { digest: indexDigest, size: index.length, mediaType: MEDIA_TYPE.index, artifactType, created },
        tags,
        opts.semverAliases === true ? tag : undefined,
      );
      return { indexDigest, platforms: children, ...res };
    } finally {
      await flight.end();
    }
  }

  /** The index.json entry of a single-platform manifest. (Also used by fs/lifecycle.ts.) */
  entryOf(d: ArtifactDescriptor, size: number): IndexEntry {
    return entryOf(d, size);
  }

  /** The `created` annotation of an existing immutable tag, if there is one. */
  private async createdOfTag(layout: string, tag: string): Promise<string | undefined> {
    const index = await readIndex(layout);
    const entry = index?.manifests.find(
      (m) => m.annotations?.[ANNOTATION.refName] === tag && m.annotations?.[ANNOTATION.mutable] !== 'true',
    );
    if (!entry) return undefined;
    const manifest = JSON.parse((await readBlobVerified(layout, entry, 'manifest')).toString('utf8')) as ImageManifest;
    return manifest.annotations?.[ANNOTATION.created];
  }

  /** tags.ts commitTags with this registry's lock timings and hooks. (Also used by fs/lifecycle.ts, fs/import-index.ts.) */
  commitTags(
    layout: string,
    name: string,
    entry: IndexEntry,
    tags: string[],
    aliasesOf: string | undefined,
  ): Promise<Omit<PushResult, 'descriptor'>> {
    return commitTags(layout, name, entry, tags, aliasesOf, {
      lockTimeoutMs: this.lockTimeoutMs,
      staleLockMs: this.staleLockMs,
      indexCommitHooks: this.indexCommitHooks,
      beforeTagLock: this.beforeTagLock,
    });
  }

  // -------------------------------------------------------------------------------------------
  // reading

  /** Manifest → descriptor; refuses manifests that are not a one-layer artifact. */
  private describe(name: string, tag: string | undefined, manifestDigest: string, m: ImageManifest): ArtifactDescriptor {
    return describeManifest(this.name, name, tag, manifestDigest, m);
  }

  /** The index entry a tag points to (null when absent). */
  private async tagEntry(layout: string, name: string, tag: string): Promise<Descriptor | null> {
    const index = await readIndex(layout);
    if (!index) return null;
    const cur = index.manifests.filter((m) => m.annotations?.[ANNOTATION.refName] === tag);
    if (cur.length === 0) return null;
    const digests = new Set(cur.map((m) => m.digest));
    if (digests.size > 1)
      throw new RunError(
        `${this.what(name, `:${tag}`)}: index.json has the tag on ${digests.size} different manifests (${[...digests].join(', ')})`,
      );
    return cur[0]!;
  }

  /** name + ref → the layout and the descriptor of the manifest (or index) it names. */
  private async locate(
    name: string,
    ref: { tag?: string; digest?: string },
  ): Promise<{ layout: string; refText: string; desc: { digest: string; size?: number; mediaType?: string } }> {
    const layout = this.layoutOf(name);
    if (ref.tag === undefined && ref.digest === undefined) throw new UserError(`artifact ${name}: a tag or a digest is required`);
    if (ref.tag !== undefined) check(validateTag(ref.tag));
    if (ref.digest !== undefined) check(validateDigest(ref.digest));
    const refText = `${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
    const notFound = (): never => {
      throw new ArtifactNotFound(this.name, `${name}${refText}`);
    };
    if (ref.tag !== undefined) {
      const entry = await this.tagEntry(layout, name, ref.tag);
      if (!entry) return notFound();
      if (ref.digest !== undefined && entry.digest !== ref.digest)
        throw new UserError({
          message: `tag ${ref.tag} of ${name} in registry "${this.name}" is ${entry.digest}, not the expected ${ref.digest}`,
        });
      return { layout, refText, desc: entry };
    }
    const index = await readIndex(layout);
    const entry = index?.manifests.find((m) => m.digest === ref.digest);
    if (entry) return { layout, refText, desc: entry };
    try {
      await fsp.access(join(layout, 'blobs', 'sha256', ref.digest!.slice(7)));
    } catch {
      return notFound();
    }
    return { layout, refText, desc: { digest: ref.digest! } };
  }

  /** (Also used by fs/lifecycle.ts.) */
  async loadManifest(
    name: string,
    ref: { tag?: string; digest?: string },
  ): Promise<{ layout: string; bytes: Buffer; manifest: ImageManifest; descriptor: ArtifactDescriptor; mediaType: string }> {
    const { layout, refText, desc } = await this.locate(name, ref);
    return { layout, ...(await this.readManifest(layout, name, ref.tag, refText, desc)) };
  }

  /** Reads and verifies one manifest (or index) blob, parsed, not yet described. */
  private async readRaw(
    layout: string,
    name: string,
    refText: string,
    desc: { digest: string; size?: number },
  ): Promise<{ bytes: Buffer; json: ImageManifest }> {
    const what = `${this.what(name, refText)} (manifest)`;
    let size = desc.size;
    if (size === undefined) size = (await fsp.stat(join(layout, 'blobs', 'sha256', desc.digest.slice(7)))).size;
    if (size > MAX_MANIFEST_BYTES) throw new RunError(`${what}: ${desc.digest} is ${size} bytes, too large for a manifest`);
    const bytes = await readBlobVerified(layout, desc, what);
    try {
      return { bytes, json: JSON.parse(bytes.toString('utf8')) as ImageManifest };
    } catch {
      throw new RunError(`${what} is not valid JSON`);
    }
  }

  /** Reads, verifies and describes one manifest blob. */
  private async readManifest(
    layout: string,
    name: string,
    tag: string | undefined,
    refText: string,
    desc: { digest: string; size?: number; mediaType?: string },
  ): Promise<{ bytes: Buffer; manifest: ImageManifest; descriptor: ArtifactDescriptor; mediaType: string }> {
    const { bytes, json: manifest } = await this.readRaw(layout, name, refText, desc);
    const descriptor = this.describe(name, tag, desc.digest, manifest);
    return { bytes, manifest, descriptor, mediaType: manifest.mediaType ?? desc.mediaType ?? MEDIA_TYPE.manifest };
  }

  async resolve(name: string, ref: { tag?: string; digest?: string }, opts: { platform?: string } = {}): Promise<ArtifactDescriptor> {
    const { layout, refText, desc } = await this.locate(name, ref);
    const { json } = await this.readRaw(layout, name, refText, desc);
    if (!isImageIndex(json)) return this.describe(name, ref.tag, desc.digest, json);
    return resolveInIndex(
      { registry: this.name, name, ...(ref.tag !== undefined ? { tag: ref.tag } : {}), indexDigest: desc.digest, refText },
      json,
      opts.platform,
      async (d) => (await this.readManifest(layout, name, undefined, `${refText} (${d.digest})`, d)).descriptor,
    );
  }

  async exists(name: string, ref: { tag?: string; digest?: string }): Promise<boolean> {
    return existsBy(async () => {
      const { layout, refText, desc } = await this.locate(name, ref);
      await this.readRaw(layout, name, refText, desc);
    });
  }

  async readConfig(desc: ArtifactDescriptor): Promise<Buffer> {
    if (!desc.config) return Buffer.from(EMPTY_JSON);
    const layout = this.layoutOf(desc.name);
    return readBlobVerified(layout, desc.config, `${this.what(desc.name, `@${desc.manifestDigest}`)} (config ${desc.config.digest})`);
  }

  async open(desc: ArtifactDescriptor): Promise<Readable> {
    const layout = this.layoutOf(desc.name);
    check(validateDigest(desc.layer.digest));
    const ref = desc.tag !== undefined ? `:${desc.tag}` : `@${desc.manifestDigest}`;
    return openBlobVerified(
      layout,
      { digest: desc.layer.digest, size: desc.layer.size },
      `${this.what(desc.name, ref)} (layer ${JSON.stringify(desc.layer.title)}, blob ${desc.layer.digest})`,
    );
  }

  /** The payload into a file: the verified stream of `open()`, written atomically. */
  async fetchTo(desc: ArtifactDescriptor, path: string): Promise<void> {
    await writeAtomically(path, await this.open(desc));
  }

  names(): Promise<string[]> {
    return layoutNames(this.root);
  }

  async tags(name: string): Promise<TagInfo[]> {
    const layout = this.layoutOf(name);
    if (!(await isLayout(layout))) throw new ArtifactNotFound(this.name, name);
    const index = await readIndex(layout);
    const out: TagInfo[] = [];
    for (const m of index?.manifests ?? []) {
      const tag = m.annotations?.[ANNOTATION.refName];
      if (tag === undefined || validateTag(tag)) continue;
      const { json } = await this.readRaw(layout, name, `:${tag}`, m);
      const mutable = m.annotations?.[ANNOTATION.mutable] === 'true';
      if (isImageIndex(json)) {
        const sum = await summarizeIndex(
          this.name,
          name,
          tag,
          json,
          async (d) => (await this.readManifest(layout, name, undefined, `:${tag}`, d)).descriptor,
        );
        out.push({ tag, manifestDigest: m.digest, ...sum, mutable });
        continue;
      }
      const d = this.describe(name, tag, m.digest, json);
      out.push({ tag, manifestDigest: m.digest, size: d.layer.size, ...(d.created !== undefined ? { created: d.created } : {}), mutable });
    }
    return out.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  }

  // -------------------------------------------------------------------------------------------
  // copies

  async exportArtifact(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle> {
    const { layout, bytes, manifest, descriptor, mediaType } = await this.loadManifest(name, ref);
    const refText = ref.tag !== undefined ? `:${ref.tag}` : `@${descriptor.manifestDigest}`;
    const blobs = [manifest.config, ...manifest.layers].map((d) => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      open: async (): Promise<Readable> => {
        const what = `${this.what(name, refText)} (blob ${d.digest})`;
        check(validateDigest(d.digest));
        // A config given inline (`data`, e.g. the empty config) needs no blob on disk.
        if (typeof d.data === 'string') {
          try {
            return await openBlobVerified(layout, d, what);
          } catch (e) {
            if (!(e instanceof RunError) || !/is missing/.test(e.message)) throw e;
            const data = Buffer.from(d.data, 'base64');
            verifyBytes(data, d, `${what} (inline data)`);
            return Readable.from([data]);
          }
        }
        return openBlobVerified(layout, d, what);
      },
    }));
    return { descriptor, manifest: bytes, manifestMediaType: mediaType, blobs };
  }

  async importArtifact(
    name: string,
    tag: string,
    bundle: ArtifactBundle,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<PushResult> {
    const layout = this.layoutOf(name);
    const tags = checkTags(tag, opts);
    const manifestDigest = bundle.descriptor.manifestDigest;
    check(validateDigest(manifestDigest));
    verifyBytes(
      bundle.manifest,
      { digest: manifestDigest },
      `copy of ${bundle.descriptor.name} from registry "${bundle.descriptor.registry}" (manifest)`,
    );
    const manifest = JSON.parse(bundle.manifest.toString('utf8')) as ImageManifest;
    const descriptor = this.describe(name, tag, manifestDigest, manifest);
    const wanted = [manifest.config, ...manifest.layers];
    // Fail fast before moving any bytes (checked again inside the lock when the tag is written).
    if (await isLayout(layout)) refuseTagConflicts(await readIndex(layout), name, tags, manifestDigest);
    await ensureLayout(layout);
    const flight = await startFlight(layout, `copy into ${name}:${tag}`);
    try {
      return await this.importInFlight(
        layout,
        name,
        tags,
        bundle,
        descriptor,
        wanted,
        opts.semverAliases === true ? tag : undefined,
        flight,
      );
    } finally {
      await flight.end();
    }
  }

  private async importInFlight(
    layout: string,
    name: string,
    tags: string[],
    bundle: ArtifactBundle,
    descriptor: ArtifactDescriptor,
    wanted: Descriptor[],
    aliasesOf: string | undefined,
    flight: Flight,
  ): Promise<PushResult> {
    const manifestDigest = descriptor.manifestDigest;
    for (const d of wanted) {
      check(validateDigest(d.digest));
      await flight.register(d.digest); // before looking: see fs/inflight.ts
      if (await hasVerifiedBlob(layout, d.digest, d.size)) continue;
      const src = bundle.blobs.find((b) => b.digest === d.digest);
      if (!src) throw new RunError(`copy of ${bundle.descriptor.name}: the source did not provide blob ${d.digest}`);
      const stream = await src.open();
      await storeBlob(
        layout,
        stream,
        { digest: d.digest, size: d.size },
        `copy of ${bundle.descriptor.name} into registry "${this.name}" (blob ${d.digest})`,
        flight.register,
      );
    }
    await storeBlobBytes(layout, bundle.manifest, manifestDigest, 'manifest', flight.register);
    const res = await this.commitTags(layout, name, this.entryOf(descriptor, bundle.manifest.length), tags, aliasesOf);
    return { descriptor, ...res };
  }

  async copyTo(target: Registry, name: string, tag: string, asTag?: string, opts: { semverAliases?: boolean } = {}): Promise<PushResult> {
    this.layoutOf(name);
    check(validateTag(tag));
    if (asTag !== undefined) check(validateTag(asTag));
    return copyByImport(this, target, name, tag, asTag, opts);
  }

  // lifecycle (fs/lifecycle.ts; gc: fs/gc.ts)

  addTags(name: string, ref: { tag?: string; digest?: string }, tags: readonly string[]): Promise<AddTagsResult> {
    return addTags(this, name, ref, tags);
  }

  removeTag(name: string, tag: string): Promise<RemovedTag> {
    return removeTag(this, name, tag);
  }
}

/** The registry for a `type: filesystem` entry of a hadesfile. Nothing is touched until used. */
export function openFilesystemRegistry(spec: FilesystemRegistrySpec, opts: FilesystemRegistryOptions = {}): FilesystemRegistry {
  return new FilesystemRegistry(spec, opts);
}
