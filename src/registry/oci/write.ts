/**
 * Writing an `oci` registry: push (stage the exact artifact the filesystem registry would
 * store, then `oras cp` it), imports and registry-to-registry copies. Tags are checked against
 * the shared rules (push-rules.ts) before any byte is uploaded; see RACE and MUTABLE TAGS in
 * registry.ts for what a remote registry can and can't guarantee.
 */
import { promises as fsp } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { RunError, UserError } from '../../errors.js';
import { verifyBytes } from '../digest.js';
import { FilesystemRegistry } from '../fs/registry.js';
import { ANNOTATION, type ImageManifest } from '../layout.js';
import { checkPlatforms, indexPlatforms, isImageIndex, type IndexBundle } from '../image-index.js';
import { importIndex as importFsIndex } from '../fs/import-index.js';
import { statSource } from '../fs/build.js';
import { aliasUpdate, check, checkTags, describeManifest, refuseConflicts, RFC3339, tagConflict } from '../push-rules.js';
import { semverAliases, validateDigest } from '../reference.js';
import {
  ArtifactNotFound,
  type AliasUpdate,
  type ArtifactBundle,
  type IndexPushResult,
  type IndexPushSource,
  type PushResult,
  type PushSource,
} from '../types.js';
import { authFileForCopy } from './auth.js';
import { fetchRaw, type FetchedManifest } from './read.js';
import type { OciSettings } from './settings.js';
import { fileChanged, prehashFile, stageArtifact, STAGE, type PrehashedFile } from './stage.js';
import { RemoteTags } from './tags.js';

/** Where a copy into this registry comes from. */
type CopySource = { kind: 'layout'; dir: string; tag: string } | { kind: 'remote'; from: OciSettings; ref: string };

/** Refuses (UserError) when a tag exists with other content or is a moving alias (push-rules.ts). */
async function throwConflicts(state: RemoteTags, name: string, tags: string[], digest: string): Promise<void> {
  const conflicts: (string | null)[] = [];
  for (const t of tags) conflicts.push(tagConflict(name, t, digest, await state.state(t)));
  refuseConflicts(conflicts);
}

export async function push(
  reg: OciSettings,
  name: string,
  tag: string,
  source: PushSource,
  opts: { extraTags?: string[]; semverAliases?: boolean } = {},
): Promise<PushResult> {
  reg.checkName(name);
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
    return await pushStaged(reg, name, tag, tags, source, opts, prehashed);
  } finally {
    prehashed?.abort(); // a no-op once the hash is done
  }
}

async function pushStaged(
  reg: OciSettings,
  name: string,
  tag: string,
  tags: string[],
  source: PushSource,
  opts: { semverAliases?: boolean },
  prehashed: PrehashedFile | undefined,
): Promise<PushResult> {
  const state = new RemoteTags(reg, name);
  // Identical bytes re-pushed under an existing immutable tag must give the identical manifest
  // (→ unchanged), even when the source was rebuilt: reuse the tag's pinned `created`.
  let created = source.created;
  if (created === undefined) {
    created = await createdOfTag(reg, name, tag, state);
  }
  return reg.withTemp(async (dir) => {
    // Build exactly what the filesystem registry would store, in a private layout.
    const staged = await stageArtifact(
      dir,
      tag,
      { ...source, artifactType: source.artifactType ?? reg.defaultArtifactType, ...(created !== undefined ? { created } : {}) },
      { registry: reg.name, pos: reg.spec.pos, env: reg.env },
      prehashed,
    );
    const descriptor = describeManifest(reg.name, name, tag, staged.manifestDigest, staged.manifest);
    try {
      const res = await commit(
        reg,
        name,
        tags,
        { digest: descriptor.manifestDigest, bytes: descriptor.layer.size },
        state,
        { kind: 'layout', dir: staged.layout, tag },
        opts.semverAliases === true ? tag : undefined,
      );
      return { descriptor, ...res };
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
async function commit(
  reg: OciSettings,
  name: string,
  tags: string[],
  target: { digest: string; bytes: number },
  state: RemoteTags,
  src: CopySource,
  aliasesOf: string | undefined,
): Promise<Omit<PushResult, 'descriptor'>> {
  const digest = target.digest;
  await throwConflicts(state, name, tags, digest);
  const missing: string[] = [];
  for (const t of tags) if ((await state.digestOf(t)) === undefined) missing.push(t);
  if (missing.length) {
    await copyIn(reg, src, name, missing, digest, target.bytes);
    for (const t of missing) state.known(t, digest);
  }
  const aliases = aliasesOf !== undefined ? await moveAliases(reg, name, aliasesOf, digest, state) : undefined;
  return { unchanged: missing.length === 0, ...(aliases ? { aliases } : {}) };
}

/**
 * The pinned `created` of an existing immutable tag (a manifest or an index), so identical
 * bytes re-pushed give the identical digest (→ unchanged) even when the source was rebuilt.
 */
async function createdOfTag(reg: OciSettings, name: string, tag: string, state: RemoteTags): Promise<string | undefined> {
  let cur: Awaited<ReturnType<typeof fetchRaw>> | undefined;
  try {
    cur = await fetchRaw(reg, name, { tag }, { originOnly: true }); // the immutability check: the origin only
  } catch (e) {
    if (!(e instanceof ArtifactNotFound)) throw e;
  }
  state.known(tag, cur?.digest);
  if (!cur || (await state.aliasVersion(tag, cur.digest)) !== undefined) return undefined;
  const created = (cur.manifest.annotations as Record<string, string> | undefined)?.[ANNOTATION.created];
  return created !== undefined && RFC3339.test(created) ? created : undefined;
}

/** A multi-platform push: the index and its manifests built in a private layout (as the filesystem registry stores them), then one `oras cp`. */
export async function pushIndex(
  reg: OciSettings,
  name: string,
  tag: string,
  source: IndexPushSource,
  opts: { extraTags?: string[]; semverAliases?: boolean } = {},
): Promise<IndexPushResult> {
  reg.checkName(name);
  const tags = checkTags(tag, opts);
  checkPlatforms(source.platforms);
  for (const p of source.platforms) await statSource(p.path);
  const state = new RemoteTags(reg, name);
  const created = source.created ?? (await createdOfTag(reg, name, tag, state));
  return reg.withTemp(async (dir) => {
    const stage = new FilesystemRegistry({ name: reg.name, type: 'filesystem', path: dir, pos: reg.spec.pos }, { env: reg.env });
    const built = await stage.pushIndex(STAGE, tag, {
      ...source,
      artifactType: source.artifactType ?? reg.defaultArtifactType,
      ...(created !== undefined ? { created } : {}),
    });
    const bytes = built.platforms.reduce((n, p) => n + p.descriptor.layer.size, 0);
    const res = await commit(
      reg,
      name,
      tags,
      { digest: built.indexDigest, bytes },
      state,
      { kind: 'layout', dir: stage.layoutOf(STAGE), tag },
      opts.semverAliases === true ? tag : undefined,
    );
    const platforms = built.platforms.map((p) => ({ platform: p.platform, descriptor: { ...p.descriptor, registry: reg.name, name } }));
    return { indexDigest: built.indexDigest, platforms, ...res };
  });
}

/** `oras cp SRC <repo>:t1,t2` — from a staging layout or another oci registry. */
async function copyIn(reg: OciSettings, src: CopySource, name: string, tags: string[], digest: string, bytes: number): Promise<void> {
  const timeoutMs = reg.transferTimeout(bytes);
  const toAuth = await authFileForCopy(reg.auth, reg.oras, reg.host, reg.connArgs(), reg.timeoutMs, reg.tmpRoot);
  try {
    let fromArgs: string[];
    let fromAuth: { path?: string; release(): Promise<void> } = { release: async () => undefined };
    if (src.kind === 'layout') fromArgs = ['--from-oci-layout', `${src.dir}:${src.tag}`];
    else {
      fromAuth = await authFileForCopy(src.from.auth, src.from.oras, src.from.host, src.from.connArgs(), src.from.timeoutMs, reg.tmpRoot);
      fromArgs = [...src.from.connArgs('from-'), ...(fromAuth.path ? ['--from-registry-config', fromAuth.path] : []), src.ref];
    }
    try {
      const what = `copy ${name}@${digest} to ${tags.join(', ')}`;
      const out = await reg.oras.run({
        args: [
          'cp',
          '--no-tty',
          ...fromArgs,
          ...reg.connArgs('to-'),
          ...(toAuth.path ? ['--to-registry-config', toAuth.path] : []),
          `${reg.repo(name)}:${tags.join(',')}`,
        ],
        timeoutMs,
        what,
      });
      const m = /Digest:\s*(sha256:[a-f0-9]{64})/.exec(out);
      if (m && m[1] !== digest) throw new RunError(`registry "${reg.name}": ${what}: the registry stored ${m[1]} instead of ${digest}`);
    } finally {
      await fromAuth.release();
    }
  } finally {
    await toAuth.release();
  }
}

/** The alias rules of push-rules.ts (forward only, never over an immutable tag); one `oras tag` moves them. */
async function moveAliases(reg: OciSettings, name: string, versionTag: string, digest: string, state: RemoteTags): Promise<AliasUpdate[]> {
  const out: AliasUpdate[] = [];
  const toMove: string[] = [];
  for (const a of semverAliases(versionTag)) {
    let cur = await state.state(a);
    // Already on this digest but no release tag found for it (the tag list may lag behind):
    // taken as the alias, so there is nothing to refuse and nothing to move.
    if (cur?.kind === 'immutable' && cur.digest === digest) cur = { kind: 'alias', digest };
    const update = aliasUpdate(versionTag, a, cur);
    out.push(update);
    if (update.moved && cur?.digest !== digest) toMove.push(a);
  }
  if (toMove.length) {
    await reg.oras.run(
      reg.call(['tag'], [`${reg.repo(name)}@${digest}`, ...toMove], { what: `move ${toMove.join(', ')} of ${name} to ${versionTag}` }),
    );
    for (const a of toMove) state.known(a, digest);
  }
  return out;
}

export async function importArtifact(
  reg: OciSettings,
  name: string,
  tag: string,
  bundle: ArtifactBundle,
  opts: { extraTags?: string[]; semverAliases?: boolean } = {},
): Promise<PushResult> {
  reg.checkName(name);
  const tags = checkTags(tag, opts);
  const digest = bundle.descriptor.manifestDigest;
  check(validateDigest(digest));
  verifyBytes(bundle.manifest, { digest }, `copy of ${bundle.descriptor.name} from registry "${bundle.descriptor.registry}" (manifest)`);
  const manifest = JSON.parse(bundle.manifest.toString('utf8')) as ImageManifest;
  const descriptor = describeManifest(reg.name, name, tag, digest, manifest);
  const state = new RemoteTags(reg, name);
  // Fail fast before moving any bytes.
  await throwConflicts(state, name, tags, digest);
  const missing: string[] = [];
  for (const t of tags) if ((await state.digestOf(t)) === undefined) missing.push(t);
  const target = { digest, bytes: descriptor.layer.size };
  if (missing.length === 0)
    return {
      descriptor,
      ...(await commit(reg, name, tags, target, state, { kind: 'layout', dir: '', tag }, opts.semverAliases === true ? tag : undefined)),
    };
  return reg.withTemp(async (dir) => {
    // Stage the bundle (blobs verified on arrival), then copy those exact bytes.
    const stage = new FilesystemRegistry({ name: reg.name, type: 'filesystem', path: dir, pos: reg.spec.pos }, { env: reg.env });
    await stage.importArtifact(STAGE, tag, bundle);
    const res = await commit(
      reg,
      name,
      tags,
      target,
      state,
      { kind: 'layout', dir: stage.layoutOf(STAGE), tag },
      opts.semverAliases === true ? tag : undefined,
    );
    return { descriptor, ...res };
  });
}

/** The destination side of an oci → oci copy. */
export async function receive(
  reg: OciSettings,
  from: OciSettings,
  name: string,
  tag: string,
  f: FetchedManifest,
  opts: { semverAliases?: boolean },
): Promise<PushResult> {
  const tags = checkTags(tag, opts);
  const descriptor = describeManifest(reg.name, name, tag, f.digest, f.manifest);
  const state = new RemoteTags(reg, name);
  const res = await commit(
    reg,
    name,
    tags,
    { digest: f.digest, bytes: descriptor.layer.size },
    state,
    { kind: 'remote', from, ref: `${from.repo(name)}@${f.digest}` },
    opts.semverAliases === true ? tag : undefined,
  );
  return { descriptor, ...res };
}

/** Sum of the payload sizes of an index's manifests (for the transfer timeout). */
const payloadBytes = (platforms: IndexPushResult['platforms']): number => platforms.reduce((n, p) => n + p.descriptor.layer.size, 0);

/**
 * A multi-platform artifact given by value into this registry, keeping the index digest: staged
 * (every blob and manifest verified on arrival, fs/import-index.ts) in a private layout, then
 * one `oras cp` of those exact bytes, after the tag rules.
 */
export async function importIndex(
  reg: OciSettings,
  name: string,
  tag: string,
  bundle: IndexBundle,
  opts: { extraTags?: string[]; semverAliases?: boolean } = {},
): Promise<IndexPushResult> {
  reg.checkName(name);
  const tags = checkTags(tag, opts);
  check(validateDigest(bundle.digest));
  verifyBytes(bundle.bytes, { digest: bundle.digest }, `copy of ${bundle.name} from registry "${bundle.registry}" (index)`);
  const state = new RemoteTags(reg, name);
  await throwConflicts(state, name, tags, bundle.digest); // before moving any bytes
  return reg.withTemp(async (dir) => {
    const stage = new FilesystemRegistry({ name: reg.name, type: 'filesystem', path: dir, pos: reg.spec.pos }, { env: reg.env });
    const staged = await importFsIndex(stage, STAGE, tag, bundle);
    const platforms = staged.platforms.map((p) => ({ platform: p.platform, descriptor: { ...p.descriptor, name } }));
    const res = await commit(
      reg,
      name,
      tags,
      { digest: bundle.digest, bytes: payloadBytes(platforms) },
      state,
      { kind: 'layout', dir: stage.layoutOf(STAGE), tag },
      opts.semverAliases === true ? tag : undefined,
    );
    return { indexDigest: bundle.digest, platforms, ...res };
  });
}

/** The destination side of an oci → oci copy of an index: one `oras cp` by digest (it copies the index with its manifests and blobs). */
export async function receiveIndex(
  reg: OciSettings,
  from: OciSettings,
  name: string,
  tag: string,
  digest: string,
  opts: { semverAliases?: boolean },
): Promise<IndexPushResult> {
  const tags = checkTags(tag, opts);
  const raw = await fetchRaw(from, name, { digest });
  if (!isImageIndex(raw.manifest)) throw new RunError(`registry "${from.name}": ${name}@${digest} is not an image index`);
  const platforms: IndexPushResult['platforms'] = [];
  for (const e of indexPlatforms(from.name, name, `@${digest}`, raw.manifest)) {
    const child = await fetchRaw(from, name, { digest: e.descriptor.digest });
    platforms.push({ platform: e.platform, descriptor: describeManifest(reg.name, name, undefined, child.digest, child.manifest) });
  }
  const res = await commit(
    reg,
    name,
    tags,
    { digest, bytes: payloadBytes(platforms) },
    new RemoteTags(reg, name),
    { kind: 'remote', from, ref: `${from.repo(name)}@${digest}` },
    opts.semverAliases === true ? tag : undefined,
  );
  return { indexDigest: digest, platforms, ...res };
}
