/**
 * Grammar of artifact references: names (OCI repository grammar), tags, digests, and the
 * semver tags that can carry moving alias tags (v1, v1.2, latest).
 *
 * Every validator returns an error string (for a positioned UserError built by the caller)
 * or null. Because names, tags and digests are checked against these grammars before any
 * filesystem path is built from them, no `..`, absolute path or stray separator can reach
 * the disk.
 */

/** One path component of an OCI repository name. */
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
export const MAX_NAME_LENGTH = 255;

function show(v: string): string {
  return JSON.stringify(v);
}

/** `null` when `name` is a valid OCI repository name (e.g. `myapp`, `team/app`); else the reason. */
export function validateName(name: string): string | null {
  if (typeof name !== 'string' || name === '') return 'artifact name is empty';
  if (name.length > MAX_NAME_LENGTH) return `artifact name ${show(`${name.slice(0, 40)}…`)} is longer than ${MAX_NAME_LENGTH} characters`;
  if (/[A-Z]/.test(name) && /^[A-Za-z0-9._/-]+$/.test(name))
    return `artifact name ${show(name)} has upper-case letters; names are lower-case (OCI repository grammar)`;
  if (name.startsWith('/')) return `artifact name ${show(name)} must not start with "/"`;
  if (name.endsWith('/')) return `artifact name ${show(name)} must not end with "/"`;
  for (const part of name.split('/')) {
    if (part === '') return `artifact name ${show(name)} has an empty path component ("//")`;
    if (part === '.' || part === '..') return `artifact name ${show(name)} must not contain "${part}" components`;
    if (!NAME_COMPONENT.test(part))
      return `artifact name ${show(name)} is invalid: each "/"-separated component must be lower-case letters and digits, separated by ".", "_", "__" or "-" (OCI repository grammar)`;
  }
  return null;
}

/** `null` when `tag` is a valid OCI tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`); else the reason. */
export function validateTag(tag: string): string | null {
  if (typeof tag !== 'string' || tag === '') return 'tag is empty';
  if (tag.length > 128) return `tag ${show(`${tag.slice(0, 40)}…`)} is longer than 128 characters`;
  if (!TAG.test(tag))
    return `tag ${show(tag)} is invalid: tags are letters, digits, "_", "." and "-" (at most 128), and must not start with "." or "-"`;
  return null;
}

/** `null` when `digest` is `sha256:` + 64 lower-case hex digits; else the reason. */
export function validateDigest(digest: string): string | null {
  if (typeof digest !== 'string' || digest === '') return 'digest is empty';
  if (!DIGEST.test(digest)) return `digest ${show(digest)} is invalid: expected "sha256:" followed by 64 lower-case hex digits`;
  return null;
}

export interface Reference {
  name: string;
  tag?: string;
  digest?: string;
}

/**
 * Parses `name`, `name:tag`, `name@sha256:…` or `name:tag@sha256:…`.
 * Returns the reference or an error string. No default tag is assumed: a bare name has neither.
 */
export function parseReference(ref: string): Reference | string {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const e = validateDigest(digest);
    if (e) return e;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    const e = validateTag(tag);
    if (e) return e;
  }
  const e = validateName(rest);
  if (e) return e;
  return { name: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatReference(r: Reference): string {
  return `${r.name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Semver tags and their aliases

export interface SemverTag {
  /** "v" when the tag was written `v1.2.3`, "" for `1.2.3`. Aliases keep the same prefix. */
  prefix: 'v' | '';
  major: number;
  minor: number;
  patch: number;
  /** Pre-release part after "-" (e.g. "rc1"); pre-releases never move aliases. */
  prerelease?: string;
}

const SEMVER_TAG = /^(v?)(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:-([0-9A-Za-z][0-9A-Za-z.-]*))?$/;

/** `v1.2.3`, `1.2.3`, `v1.2.3-rc1` → parts; anything else (incl. `v1`, `v1.2`, `latest`) → null. */
export function parseSemverTag(tag: string): SemverTag | null {
  const m = SEMVER_TAG.exec(tag);
  if (!m) return null;
  return {
    prefix: m[1] === 'v' ? 'v' : '',
    major: Number(m[2]),
    minor: Number(m[3]),
    patch: Number(m[4]),
    ...(m[5] !== undefined ? { prerelease: m[5] } : {}),
  };
}

/** Orders release versions by major, minor, patch (pre-release versions sort before their release). */
export function compareSemver(a: SemverTag, b: SemverTag): number {
  const d = a.major - b.major || a.minor - b.minor || a.patch - b.patch;
  if (d !== 0) return d;
  if (a.prerelease === b.prerelease) return 0;
  if (a.prerelease === undefined) return 1;
  if (b.prerelease === undefined) return -1;
  return a.prerelease < b.prerelease ? -1 : 1;
}

/**
 * The alias tags a release tag moves: `v1.2.3` → [`v1.2`, `v1`, `latest`]; `1.2.3` → [`1.2`, `1`, `latest`].
 * Pre-releases and non-semver tags move nothing (→ []).
 */
export function semverAliases(tag: string): string[] {
  const v = parseSemverTag(tag);
  if (!v || v.prerelease !== undefined) return [];
  return [`${v.prefix}${v.major}.${v.minor}`, `${v.prefix}${v.major}`, 'latest'];
}

/** True for tag names that look like alias tags (`v1`, `v1.2`, `1`, `1.2`, `latest`). */
export function isAliasLikeTag(tag: string): boolean {
  return tag === 'latest' || /^v?(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8}))?$/.test(tag);
}
