/**
 * The rules every registry applies to a push, in one place (same checks, same messages
 * for the filesystem and the OCI backends): tag lists, push sources, the pinned
 * `org.opencontainers.image.created`, payload titles, tag immutability and semver alias moves.
 * All pure: each backend reads what its tags hold (TagState) and writes what the rules decide.
 */
import { RunError, UserError } from '../errors.js';
import { ANNOTATION, EMPTY_DIGEST, MEDIA_TYPE, type ImageManifest } from './layout.js';
import { compareSemver, parseSemverTag, semverAliases, validateDigest, validateTag, type SemverTag } from './reference.js';
import type { AliasUpdate, ArtifactDescriptor, PushSource } from './types.js';

/** Media type grammar (RFC 6838 type/subtype). */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** Annotations Hades sets itself; a PushSource can't override them. */
const RESERVED_ANNOTATIONS = new Set<string>([
  ANNOTATION.created,
  ANNOTATION.refName,
  ANNOTATION.title,
  ANNOTATION.contentDigest,
  ANNOTATION.unpack,
  ANNOTATION.mutable,
  ANNOTATION.aliasOf,
]);

/** OCI annotation keys: reverse-domain style (letters, digits, '.', '-', '_', '/'). */
const ANNOTATION_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;

/** Why `key` can't be a user's annotation (bad syntax, or one Hades sets itself), or null. */
export function annotationKeyProblem(key: string): string | null {
  if (!ANNOTATION_KEY_RE.test(key))
    return `annotation key ${JSON.stringify(key)} is not valid (letters, digits, '.', '-', '_', '/'; e.g. org.opencontainers.image.source)`;
  if (RESERVED_ANNOTATIONS.has(key)) return `annotation ${key} is set by Hades itself`;
  return null;
}

export function check(problem: string | null, hint?: string): void {
  if (problem) throw new UserError({ message: problem, ...(hint ? { hint } : {}) });
}

export function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The tag plus extra tags, validated; with semver aliases, none of them may be an alias of the tag. */
export function checkTags(tag: string, opts: { extraTags?: string[]; semverAliases?: boolean }): string[] {
  check(validateTag(tag));
  const all = [tag];
  for (const t of opts.extraTags ?? []) {
    check(validateTag(t));
    if (!all.includes(t)) all.push(t);
  }
  if (opts.semverAliases) {
    const v = parseSemverTag(tag);
    check(
      v ? null : `semver aliases need a version tag like v1.2.3 or 1.2.3, not ${JSON.stringify(tag)}`,
      'drop semver_aliases for this push, or tag it with a version',
    );
    for (const a of semverAliases(tag))
      if (all.includes(a)) check(`tag ${a} can't be both pushed explicitly and moved as a semver alias of ${tag}`);
  }
  return all;
}

/** Checks the artifact type, the caller's annotations and `created`; returns the annotations. */
export function checkPushSource(source: PushSource, artifactType: string): Record<string, string> {
  check(MEDIA_TYPE_RE.test(artifactType) ? null : `artifact type ${JSON.stringify(artifactType)} is not a media type (type/subtype)`);
  const extra = source.annotations ?? {};
  for (const [k, v] of Object.entries(extra)) {
    if (k === '' || typeof v !== 'string') check(`annotation ${JSON.stringify(k)} must have a non-empty key and a string value`);
    check(annotationKeyProblem(k), RESERVED_ANNOTATIONS.has(k) && k === ANNOTATION.created ? 'set `created` instead' : undefined);
  }
  if (source.config !== undefined)
    check(
      MEDIA_TYPE_RE.test(source.config.mediaType)
        ? null
        : `config media type ${JSON.stringify(source.config.mediaType)} is not a media type (type/subtype)`,
    );
  if (source.created !== undefined && !(RFC3339.test(source.created) && Number.isFinite(Date.parse(source.created))))
    check(`created ${JSON.stringify(source.created)} is not an RFC 3339 time such as 2024-05-01T12:00:00Z`);
  return extra;
}

/** `created` for new content: SOURCE_DATE_EPOCH when set, else the source's modification time. */
export function pinnedCreated(env: Record<string, string | undefined>, mtimeSeconds: number): string {
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d{1,12}$/.test(sde))
      throw new UserError({ message: `SOURCE_DATE_EPOCH=${JSON.stringify(sde)} is not a whole number of seconds since 1970` });
    return iso(Number(sde));
  }
  return iso(Math.max(0, mtimeSeconds));
}

/** A safe file name for the payload on hosts: one path component. */
export function titleProblem(title: unknown): string | null {
  if (typeof title !== 'string' || title === '') return 'has no org.opencontainers.image.title annotation (file name)';
  if (title === '.' || title === '..' || title.includes('/') || title.includes('\0') || Buffer.byteLength(title) > 255)
    return `has an unsafe title ${JSON.stringify(title)} (it must be a plain file name)`;
  return null;
}

/**
 * Manifest → descriptor, the same for every registry: refuses what is not a Hades/oras
 * artifact (an index, several layers, a bad layer descriptor, an unsafe title).
 */
export function describeManifest(
  registry: string,
  name: string,
  tag: string | undefined,
  manifestDigest: string,
  m: ImageManifest,
): ArtifactDescriptor {
  const ref = tag !== undefined ? `:${tag}` : `@${manifestDigest}`;
  const bad = (why: string): never => {
    throw new RunError(`registry "${registry}": artifact ${name}${ref} ${why}`);
  };
  if (typeof m !== 'object' || m === null) bad('has a manifest that is not a JSON object');
  if (m.mediaType === MEDIA_TYPE.index || Array.isArray((m as { manifests?: unknown }).manifests))
    bad('is a multi-platform image index: name a platform');
  if (m.schemaVersion !== 2 || (m.mediaType !== undefined && m.mediaType !== MEDIA_TYPE.manifest))
    bad(`has an unsupported manifest (mediaType ${JSON.stringify(m.mediaType)})`);
  if (!Array.isArray(m.layers) || m.layers.length !== 1)
    bad(`has ${Array.isArray(m.layers) ? m.layers.length : 'no'} layers; Hades artifacts carry exactly one file or directory`);
  const l = m.layers[0]!;
  if (typeof l.digest !== 'string' || validateDigest(l.digest) || typeof l.size !== 'number' || l.size < 0)
    bad('has an invalid layer descriptor');
  const title = l.annotations?.[ANNOTATION.title];
  const tp = titleProblem(title);
  if (tp) bad(`layer ${tp}`);
  const annotations = { ...(m.annotations ?? {}) };
  const c = m.config;
  if (
    c !== undefined &&
    (typeof c !== 'object' || c === null || typeof c.digest !== 'string' || validateDigest(c.digest) || typeof c.size !== 'number')
  )
    bad('has an invalid config descriptor');
  const config = c && c.digest !== EMPTY_DIGEST ? { config: { mediaType: c.mediaType, digest: c.digest, size: c.size } } : {};
  return {
    ...config,
    registry,
    name,
    ...(tag !== undefined ? { tag } : {}),
    manifestDigest,
    artifactType: m.artifactType ?? m.config?.mediaType ?? '',
    ...(annotations[ANNOTATION.created] !== undefined ? { created: annotations[ANNOTATION.created] } : {}),
    annotations,
    layer: {
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      title: title as string,
      directory: l.annotations?.[ANNOTATION.unpack] === 'true',
    },
  };
}

/**
 * What a tag holds when a push wants it, as the tag rules see it: an immutable tag, or a
 * moving semver alias (with the version tag it stands for, when known). Absent is `undefined`.
 * The filesystem registry reads this from its index (io.hades.tag.mutable / io.hades.tag.version);
 * the oci registry derives it (see MUTABLE TAGS in oci/registry.ts).
 */
export type TagState = { kind: 'immutable'; digest: string } | { kind: 'alias'; digest: string; version?: string };

/**
 * Why `tag` of `name` can't be written with `digest`, or null when it can (absent, or already
 * this content): tags are immutable, and a moving alias is never frozen by a normal push.
 */
export function tagConflict(name: string, tag: string, digest: string, cur: TagState | undefined): string | null {
  if (cur === undefined) return null;
  if (cur.kind === 'alias')
    return (
      `tag ${tag} of ${name} is a moving semver alias${cur.version ? ` (now ${cur.version}, ${cur.digest})` : ''}; ` +
      `it can't be pushed as an immutable tag — push an exact version tag`
    );
  if (cur.digest === digest) return null;
  return `tag ${tag} of ${name} already exists with ${cur.digest}; registries are immutable — push a new tag`;
}

/** Throws one UserError listing every conflict (the non-null entries of `conflicts`), if any. */
export function refuseConflicts(conflicts: readonly (string | null)[]): void {
  const messages = conflicts.filter((m): m is string => m !== null);
  if (messages.length) throw new UserError(messages.map((message) => ({ message })));
}

/**
 * What a push of the release `versionTag` with semver aliases does to its alias tag `alias`,
 * which holds `cur`: aliases move forward only, and never over an immutable tag. `moved` says
 * the alias (now) points at the pushed version; whether storage must change is the backend's.
 */
export function aliasUpdate(versionTag: string, alias: string, cur: TagState | undefined): AliasUpdate {
  if (cur === undefined) return { tag: alias, moved: true };
  if (cur.kind === 'immutable') return { tag: alias, moved: false, reason: `an immutable tag ${alias} exists (${cur.digest})` };
  const prev: SemverTag | null = cur.version ? parseSemverTag(cur.version) : null;
  if (prev && compareSemver(parseSemverTag(versionTag)!, prev) < 0)
    return { tag: alias, moved: false, previous: cur.version, reason: `it points to the newer ${cur.version}` };
  return { tag: alias, moved: true, ...(cur.version ? { previous: cur.version } : {}) };
}
