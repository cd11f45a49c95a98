/**
 * The tag rules both registry backends apply (push-rules.ts), as exact outcomes: immutable tags,
 * moving semver aliases, and the oci backend's derived alias-ness (oci/tags.ts).
 */
import { describe, expect, test } from 'vitest';
import { UserError } from '../../src/errors.js';
import { aliasUpdate, refuseConflicts, tagConflict, type TagState } from '../../src/registry/push-rules.js';
import { aliasCandidates } from '../../src/registry/oci/tags.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('tagConflict: what stops a push of app:TAG with digest A', () => {
  const ALIAS_TAIL = "; it can't be pushed as an immutable tag — push an exact version tag";
  test.each<[string, string, TagState | undefined, string | null]>([
    ['absent', 'v1.0.0', undefined, null],
    ['immutable, same content', 'v1.0.0', { kind: 'immutable', digest: A }, null],
    [
      'immutable, other content',
      'v1.0.0',
      { kind: 'immutable', digest: B },
      `tag v1.0.0 of app already exists with ${B}; registries are immutable — push a new tag`,
    ],
    [
      'alias with its version',
      'v1',
      { kind: 'alias', digest: B, version: 'v1.2.3' },
      `tag v1 of app is a moving semver alias (now v1.2.3, ${B})${ALIAS_TAIL}`,
    ],
    [
      'alias on the same content',
      'v1',
      { kind: 'alias', digest: A, version: 'v1.2.3' },
      `tag v1 of app is a moving semver alias (now v1.2.3, ${A})${ALIAS_TAIL}`,
    ],
    ['alias, version unknown', 'latest', { kind: 'alias', digest: B }, `tag latest of app is a moving semver alias${ALIAS_TAIL}`],
    [
      'alias, empty version',
      'latest',
      { kind: 'alias', digest: B, version: '' },
      `tag latest of app is a moving semver alias${ALIAS_TAIL}`,
    ],
  ])('%s', (_what, tag, cur, expected) => {
    expect(tagConflict('app', tag, A, cur)).toBe(expected);
  });
});

describe('refuseConflicts', () => {
  test('nothing to refuse: no error', () => {
    expect(() => refuseConflicts([])).not.toThrow();
    expect(() => refuseConflicts([null, null])).not.toThrow();
  });
  test('every conflict in one UserError, in order', () => {
    let err: unknown;
    try {
      refuseConflicts(['first', null, 'second']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).problems).toEqual([{ message: 'first' }, { message: 'second' }]);
  });
});

describe('aliasUpdate: what a push of VERSION with semver aliases does to ALIAS', () => {
  test.each<[string, string, string, TagState | undefined, object]>([
    ['absent: created', 'v1.2.3', 'v1', undefined, { tag: 'v1', moved: true }],
    [
      'immutable tag of that name: kept',
      'v1.2.3',
      'v1',
      { kind: 'immutable', digest: B },
      { tag: 'v1', moved: false, reason: `an immutable tag v1 exists (${B})` },
    ],
    [
      'immutable, even on the same content',
      'v1.2.3',
      'latest',
      { kind: 'immutable', digest: A },
      { tag: 'latest', moved: false, reason: `an immutable tag latest exists (${A})` },
    ],
    [
      'alias on an older version: moved',
      'v1.2.3',
      'v1',
      { kind: 'alias', digest: B, version: 'v1.2.0' },
      { tag: 'v1', moved: true, previous: 'v1.2.0' },
    ],
    [
      'alias on the same version',
      'v1.2.3',
      'v1.2',
      { kind: 'alias', digest: A, version: 'v1.2.3' },
      { tag: 'v1.2', moved: true, previous: 'v1.2.3' },
    ],
    [
      'alias on a newer version: kept',
      'v1.0.9',
      'v1',
      { kind: 'alias', digest: B, version: 'v1.2.0' },
      { tag: 'v1', moved: false, previous: 'v1.2.0', reason: 'it points to the newer v1.2.0' },
    ],
    [
      'newer across prefixes (latest)',
      '1.2.3',
      'latest',
      { kind: 'alias', digest: B, version: 'v2.0.0' },
      { tag: 'latest', moved: false, previous: 'v2.0.0', reason: 'it points to the newer v2.0.0' },
    ],
    [
      'older across prefixes (latest)',
      'v2.0.0',
      'latest',
      { kind: 'alias', digest: B, version: '1.9.0' },
      { tag: 'latest', moved: true, previous: '1.9.0' },
    ],
    ['alias, version unknown: moved', 'v1.2.3', 'v1', { kind: 'alias', digest: B }, { tag: 'v1', moved: true }],
    [
      'alias, version not semver: moved',
      'v1.2.3',
      'v1',
      { kind: 'alias', digest: B, version: 'junk' },
      { tag: 'v1', moved: true, previous: 'junk' },
    ],
  ])('%s', (_what, versionTag, alias, cur, expected) => {
    expect(aliasUpdate(versionTag, alias, cur)).toEqual(expected);
  });
});

describe('aliasCandidates (oci): the release tags an alias-shaped tag may stand for, highest first', () => {
  const tags = ['v1.2.3', 'v1.2.10', 'v1.3.0', 'v1.2.4-rc1', 'v2.0.0', '1.2.5', 'v1', 'latest', 'build-7'];
  test.each<[string, string[]]>([
    ['v1.2', ['v1.2.10', 'v1.2.3']],
    ['v1', ['v1.3.0', 'v1.2.10', 'v1.2.3']],
    ['1.2', ['1.2.5']],
    ['latest', ['v2.0.0', 'v1.3.0', 'v1.2.10', '1.2.5', 'v1.2.3']],
    ['v3', []],
    ['v1.2.3', []],
    ['build-7', []],
  ])('%s', (alias, expected) => {
    expect(aliasCandidates(alias, tags)).toEqual(expected);
  });
});
