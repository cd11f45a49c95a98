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
import { promises as fsp } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import type { OciRegistrySpec } from '../../config/model.js';
import { RunError, UserError } from '../../errors.js';
import { verifyBytes } from '../digest.js';
import { FilesystemRegistry } from '../fs/registry.js';
import { fileChanged, prehashFile, stageArtifact, STAGE, type PrehashedFile } from './stage.js';
import type { ImageManifest } from '../layout.js';
import { authFileForCopy } from './auth.js';
import { compareSemver, parseSemverTag, semverAliases, validateDigest, validateTag } from '../reference.js';
import { check, checkTags, describeManifest, RFC3339 } from '../push-rules.js';
import { exportArtifact, fetchManifest, fetchTo, listTags, names, openBlob, openLayer, tagDigest, type FetchedManifest } from './read.js';
import { OciSettings, type OciRegistryOptions } from './settings.js';
import { RemoteTags, tagInfos } from './tags.js';
import {
  ArtifactNotFound,
  type AliasUpdate,
  type ArtifactBundle,
  type ArtifactDescriptor,
  type PushResult,
  type PushSource,
  type Registry,
  type TagInfo,
} from '../types.js';

export { OciRegistryError, orasVersion, MIN_ORAS_VERSION } from './oras.js';
export type { OciRegistryOptions } from './settings.js';

/** Where a copy into this registry comes from. */
type CopySource = { kind: 'layout'; dir: string; tag: string } | { kind: 'remote'; from: OciRegistry; ref: string };

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

  exportArtifact(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle> {
    return exportArtifact(this, name, ref);
  }

  tags(name: string): Promise<TagInfo[]> {
    return tagInfos(this, name);
  }

  private remoteTags(name: string): RemoteTags {
    return new RemoteTags(this, name);
  }

  async resolve(name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactDescriptor> {
    return (await this.fetchManifest(name, ref)).descriptor;
  }

  async exists(name: string, ref: { tag?: string; digest?: string }): Promise<boolean> {
    try {
      await this.fetchManifest(name, ref);
      return true;
    } catch (e) {
      if (e instanceof ArtifactNotFound) return false;
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // writing

  /** Refuses (UserError) when a tag exists with other content or is a moving alias. */
  private async throwConflicts(state: RemoteTags, name: string, tags: string[], digest: string): Promise<void> {
    const conflicts: string[] = [];
    for (const t of tags) {
      const cur = await state.digestOf(t);
      if (cur === undefined) continue;
      const version = await state.aliasVersion(t, cur);
      if (version !== undefined) {
        conflicts.push(
          `tag ${t} of ${name} is a moving semver alias (now ${version}, ${cur}); it can't be pushed as an immutable tag — push an exact version tag`,
        );
        continue;
      }
      if (cur !== digest) conflicts.push(`tag ${t} of ${name} already exists with ${cur}; registries are immutable — push a new tag`);
    }
    if (conflicts.length) throw new UserError(conflicts.map((message) => ({ message })));
  }

  async push(
    name: string,
    tag: string,
    source: PushSource,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<PushResult> {
    this.checkName(name);
    const tags = checkTags(tag, opts);
    // The source's problems first (as the filesystem registry reports them), before any network.
    const path = resolvePath(source.path);
    try {
      await fsp.stat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError({ message: `cannot push ${path}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}` });
    }
    // A file is hashed from now on, while the registry is asked about the tag.
    const prehashed = await prehashFile(source);
    try {
      return await this.pushStaged(name, tag, tags, source, opts, prehashed);
    } finally {
      prehashed?.abort(); // a no-op once the hash is done
    }
  }

  private async pushStaged(
    name: string,
    tag: string,
    tags: string[],
    source: PushSource,
    opts: { semverAliases?: boolean },
    prehashed: PrehashedFile | undefined,
  ): Promise<PushResult> {
    const state = this.remoteTags(name);
    // Identical bytes re-pushed under an existing immutable tag must give the identical manifest
    // (→ unchanged), even when the source was rebuilt: reuse the tag's pinned `created`.
    let created = source.created;
    if (created === undefined) {
      let cur: FetchedManifest | undefined;
      try {
        cur = await this.fetchManifest(name, { tag });
      } catch (e) {
        if (!(e instanceof ArtifactNotFound)) throw e;
      }
      state.known(tag, cur?.digest);
      if (cur && (await state.aliasVersion(tag, cur.digest)) === undefined && cur.descriptor.created !== undefined && RFC3339.test(cur.descriptor.created))
        created = cur.descriptor.created;
    }
    return this.withTemp(async (dir) => {
      // Build exactly what the filesystem registry would store, in a private layout.
      const staged = await stageArtifact(
        dir,
        tag,
        { ...source, artifactType: source.artifactType ?? this.defaultArtifactType, ...(created !== undefined ? { created } : {}) },
        { registry: this.name, pos: this.spec.pos, env: this.env },
        prehashed,
      );
      const descriptor = this.describe(name, tag, staged.manifestDigest, staged.manifest);
      try {
        return await this.commit(name, tags, descriptor, state, { kind: 'layout', dir: staged.layout, tag }, opts.semverAliases === true ? tag : undefined);
      } catch (e) {
        // The file fast path uploads the source in place: if it changed, the registry refused it.
        if (staged.file && !(e instanceof UserError) && (await fileChanged(staged.file)))
          throw new RunError(`${staged.file.path} changed while it was being pushed; push again`, { cause: e });
        throw e;
      }
    });
  }

  /**
   * After the conflict check: copies the artifact to every missing tag (one `oras cp`), then
   * moves the semver aliases of `aliasesOf`. Tags already holding the digest stay as they are.
   */
  private async commit(
    name: string,
    tags: string[],
    descriptor: ArtifactDescriptor,
    state: RemoteTags,
    src: CopySource,
    aliasesOf: string | undefined,
  ): Promise<PushResult> {
    const digest = descriptor.manifestDigest;
    await this.throwConflicts(state, name, tags, digest);
    const missing: string[] = [];
    for (const t of tags) if ((await state.digestOf(t)) === undefined) missing.push(t);
    if (missing.length) {
      await this.copyIn(src, name, missing, digest, descriptor.layer.size);
      for (const t of missing) state.known(t, digest);
    }
    const aliases = aliasesOf !== undefined ? await this.moveAliases(name, aliasesOf, digest, state) : undefined;
    return { descriptor, unchanged: missing.length === 0, ...(aliases ? { aliases } : {}) };
  }

  /** `oras cp SRC <repo>:t1,t2` — from a staging layout or another oci registry. */
  private async copyIn(src: CopySource, name: string, tags: string[], digest: string, bytes: number): Promise<void> {
    const timeoutMs = this.transferTimeout(bytes);
    const toAuth = await authFileForCopy(this.auth, this.oras, this.host, this.connArgs(), this.timeoutMs, this.tmpRoot);
    try {
      let fromArgs: string[];
      let fromAuth: { path?: string; release(): Promise<void> } = { release: async () => undefined };
      if (src.kind === 'layout') fromArgs = ['--from-oci-layout', `${src.dir}:${src.tag}`];
      else {
        fromAuth = await authFileForCopy(src.from.auth, src.from.oras, src.from.host, src.from.connArgs(), src.from.timeoutMs, this.tmpRoot);
        fromArgs = [...src.from.connArgs('from-'), ...(fromAuth.path ? ['--from-registry-config', fromAuth.path] : []), src.ref];
      }
      try {
        const what = `copy ${name}@${digest} to ${tags.join(', ')}`;
        const out = await this.oras.run({
          args: ['cp', '--no-tty', ...fromArgs, ...this.connArgs('to-'), ...(toAuth.path ? ['--to-registry-config', toAuth.path] : []), `${this.repo(name)}:${tags.join(',')}`],
          timeoutMs,
          what,
        });
        const m = /Digest:\s*(sha256:[a-f0-9]{64})/.exec(out);
        if (m && m[1] !== digest)
          throw new RunError(`registry "${this.name}": ${what}: the registry stored ${m[1]} instead of ${digest}`);
      } finally {
        await fromAuth.release();
      }
    } finally {
      await toAuth.release();
    }
  }

  /** Same alias rules as the filesystem registry: forward only, never over an immutable tag. */
  private async moveAliases(name: string, versionTag: string, digest: string, state: RemoteTags): Promise<AliasUpdate[]> {
    const version = parseSemverTag(versionTag)!;
    const out: AliasUpdate[] = [];
    const toMove: string[] = [];
    for (const a of semverAliases(versionTag)) {
      const cur = await state.digestOf(a);
      if (cur === undefined) {
        out.push({ tag: a, moved: true });
        toMove.push(a);
        continue;
      }
      const prevName = await state.aliasVersion(a, cur);
      if (prevName === undefined && cur !== digest) {
        out.push({ tag: a, moved: false, reason: `an immutable tag ${a} exists (${cur})` });
        continue;
      }
      const prev = prevName ? parseSemverTag(prevName) : null;
      if (prev && compareSemver(version, prev) < 0) {
        out.push({ tag: a, moved: false, previous: prevName, reason: `it points to the newer ${prevName}` });
        continue;
      }
      out.push({ tag: a, moved: true, ...(prevName ? { previous: prevName } : {}) });
      if (cur !== digest) toMove.push(a);
    }
    if (toMove.length) {
      await this.oras.run(this.call(['tag'], [`${this.repo(name)}@${digest}`, ...toMove], { what: `move ${toMove.join(', ')} of ${name} to ${versionTag}` }));
      for (const a of toMove) state.known(a, digest);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // copies

  async importArtifact(
    name: string,
    tag: string,
    bundle: ArtifactBundle,
    opts: { extraTags?: string[]; semverAliases?: boolean } = {},
  ): Promise<PushResult> {
    this.checkName(name);
    const tags = checkTags(tag, opts);
    const digest = bundle.descriptor.manifestDigest;
    check(validateDigest(digest));
    verifyBytes(bundle.manifest, { digest }, `copy of ${bundle.descriptor.name} from registry "${bundle.descriptor.registry}" (manifest)`);
    const manifest = JSON.parse(bundle.manifest.toString('utf8')) as ImageManifest;
    const descriptor = this.describe(name, tag, digest, manifest);
    const state = this.remoteTags(name);
    // Fail fast before moving any bytes.
    await this.throwConflicts(state, name, tags, digest);
    const missing: string[] = [];
    for (const t of tags) if ((await state.digestOf(t)) === undefined) missing.push(t);
    if (missing.length === 0)
      return this.commit(name, tags, descriptor, state, { kind: 'layout', dir: '', tag }, opts.semverAliases === true ? tag : undefined);
    return this.withTemp(async (dir) => {
      // Stage the bundle (blobs verified on arrival), then copy those exact bytes.
      const stage = new FilesystemRegistry({ name: this.name, type: 'filesystem', path: dir, pos: this.spec.pos }, { env: this.env });
      await stage.importArtifact(STAGE, tag, bundle);
      return this.commit(name, tags, descriptor, state, { kind: 'layout', dir: stage.layoutOf(STAGE), tag }, opts.semverAliases === true ? tag : undefined);
    });
  }

  async copyTo(target: Registry, name: string, tag: string, asTag?: string, opts: { semverAliases?: boolean } = {}): Promise<PushResult> {
    this.checkName(name);
    check(validateTag(tag));
    if (asTag !== undefined) check(validateTag(asTag));
    if (target instanceof OciRegistry) {
      // Registry to registry in one `oras cp` (by digest, so the source tag can't move meanwhile).
      const f = await this.fetchManifest(name, { tag });
      return target.receive(this, name, asTag ?? tag, f, opts);
    }
    if (!target.importArtifact)
      throw new RunError(`registry "${target.name}" (${target.type}) can't receive copies from registry "${this.name}"`);
    const bundle = await this.exportArtifact(name, { tag });
    return target.importArtifact(name, asTag ?? tag, bundle, opts);
  }

  /** The destination side of an oci → oci copy. */
  private async receive(from: OciRegistry, name: string, tag: string, f: FetchedManifest, opts: { semverAliases?: boolean }): Promise<PushResult> {
    const tags = checkTags(tag, opts);
    const descriptor = this.describe(name, tag, f.digest, f.manifest);
    const state = this.remoteTags(name);
    return this.commit(name, tags, descriptor, state, { kind: 'remote', from, ref: `${from.repo(name)}@${f.digest}` }, opts.semverAliases === true ? tag : undefined);
  }
}

/** The registry for a `type: oci` entry of a hadesfile. Checks url and credentials; nothing is contacted until used. */
export function openOciRegistry(spec: OciRegistrySpec, opts: OciRegistryOptions = {}): OciRegistry {
  return new OciRegistry(spec, opts);
}
