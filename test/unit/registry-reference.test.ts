import { describe, expect, test } from 'vitest';
import {
  compareSemver,
  isAliasLikeTag,
  parseReference,
  parseSemverTag,
  semverAliases,
  validateDigest,
  validateName,
  validateTag,
} from '../../src/registry/reference.js';
import { validateLayoutName } from '../../src/registry/layout.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('validateName (OCI repository grammar)', () => {
  test.each(['myapp', 'team/app', 'a', 'a0', 'my.app', 'my_app', 'my__app', 'my-app', 'my---app', 'a/b/c/d', 'x'.repeat(255)])(
    'accepts %s',
    (n) => expect(validateName(n)).toBeNull(),
  );
  test.each([
    ['', /empty/],
    ['../x', /"\.\."/],
    ['/etc', /start with "\/"/],
    ['a/../../b', /"\.\."/],
    ['A', /upper-case/],
    ['MyApp', /upper-case/],
    ['a//b', /empty path component/],
    ['a/', /end with "\/"/],
    ['.', /"\."/],
    ['a/./b', /"\."/],
    ['-a', /invalid/],
    ['a-', /invalid/],
    ['a___b', /invalid/],
    ['a..b', /invalid/],
    ['a b', /invalid/],
    ['a\0b', /invalid/],
    ['a\\b', /invalid/],
    ['a:b', /invalid/],
    ['x'.repeat(256), /longer than 255/],
  ])('refuses %j', (n, re) => expect(validateName(n)).toMatch(re));

  test('a filesystem registry also reserves the layout files as components', () => {
    expect(validateLayoutName('team/app')).toBeNull();
    expect(validateLayoutName('team/blobs')).toMatch(/"blobs" is reserved/);
    expect(validateLayoutName('index.json')).toMatch(/reserved/);
    expect(validateLayoutName('a/oci-layout/b')).toMatch(/reserved/);
    expect(validateLayoutName('../x')).toMatch(/\.\./);
  });
});

describe('validateTag', () => {
  test.each(['v1', 'v1.2.3', '1.2.3-rc1', 'latest', '_x', 'A', 'a'.repeat(128), 'build_5-x.y'])('accepts %s', (t) =>
    expect(validateTag(t)).toBeNull(),
  );
  test.each([
    ['', /empty/],
    ['../v1', /invalid/],
    ['v1/..', /invalid/],
    ['.hidden', /invalid/],
    ['-x', /invalid/],
    ['v1 ', /invalid/],
    ['v1:2', /invalid/],
    ['v1\0', /invalid/],
    ['a'.repeat(129), /longer than 128/],
  ])('refuses %j', (t, re) => expect(validateTag(t)).toMatch(re));
});

describe('validateDigest', () => {
  test('accepts sha256 + 64 lower-case hex', () => expect(validateDigest(D)).toBeNull());
  test.each([
    '',
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha512:${'a'.repeat(64)}`,
    'a'.repeat(64),
    `sha256:${'a'.repeat(64)}/..`,
  ])('refuses %j', (d) => expect(validateDigest(d)).toMatch(/digest/));
});

describe('parseReference', () => {
  test.each([
    ['myapp', { name: 'myapp' }],
    ['myapp:v1', { name: 'myapp', tag: 'v1' }],
    ['team/app:v1.2.3', { name: 'team/app', tag: 'v1.2.3' }],
    [`myapp@${D}`, { name: 'myapp', digest: D }],
    [`myapp:v1@${D}`, { name: 'myapp', tag: 'v1', digest: D }],
  ])('%s', (ref, want) => expect(parseReference(ref)).toEqual(want));
  test.each(['../x:v1', 'myapp:../v1', 'myapp@sha256:zz', 'MyApp:v1', ':v1'])('refuses %s', (ref) =>
    expect(typeof parseReference(ref)).toBe('string'),
  );
});

describe('semver tags and aliases', () => {
  test('parse', () => {
    expect(parseSemverTag('v1.2.3')).toEqual({ prefix: 'v', major: 1, minor: 2, patch: 3 });
    expect(parseSemverTag('10.0.7-rc.1')).toEqual({ prefix: '', major: 10, minor: 0, patch: 7, prerelease: 'rc.1' });
    for (const t of ['v1', 'v1.2', 'latest', 'v01.2.3', 'v1.2.3.4', 'x1.2.3', 'v1.2.3-']) expect(parseSemverTag(t)).toBeNull();
  });
  test('aliases keep the prefix; pre-releases move nothing', () => {
    expect(semverAliases('v1.2.3')).toEqual(['v1.2', 'v1', 'latest']);
    expect(semverAliases('1.2.3')).toEqual(['1.2', '1', 'latest']);
    expect(semverAliases('v1.2.3-rc1')).toEqual([]);
    expect(semverAliases('build-7')).toEqual([]);
  });
  test('ordering is numeric', () => {
    const v = (t: string) => parseSemverTag(t)!;
    expect(compareSemver(v('v1.10.0'), v('v1.9.9'))).toBeGreaterThan(0);
    expect(compareSemver(v('v1.0.9'), v('v1.2.0'))).toBeLessThan(0);
    expect(compareSemver(v('v1.2.3'), v('1.2.3'))).toBe(0);
    expect(compareSemver(v('v1.2.3-rc1'), v('v1.2.3'))).toBeLessThan(0);
  });
  test('alias-like names', () => {
    for (const t of ['v1', 'v1.2', '1', '1.2', 'latest']) expect(isAliasLikeTag(t)).toBe(true);
    for (const t of ['v1.2.3', 'stable', 'v1.2.3-rc1']) expect(isAliasLikeTag(t)).toBe(false);
  });
});
