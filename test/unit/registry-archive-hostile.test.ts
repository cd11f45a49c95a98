/**
 * Hostile archives (security issue 11): the checker sees the tree as GNU tar will leave it
 * after --strip-components, reads names as tar reads them, and refuses special modes.
 * Each attack is written byte by byte (rawtar) or produced with the real GNU tar.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkTarEntries, listTar, stripComponentsFor } from '../../src/registry/archive.js';
import { paxData, rawTar, type RawEntry } from '../fixtures/registry/rawtar.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-hostile-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const dir = (name: string, mode = 0o755): RawEntry => ({ name, typeflag: '5', mode });
const file = (name: string | Buffer, extra: Partial<RawEntry> = {}): RawEntry => ({ name, typeflag: '0', data: 'x', ...extra });
const sym = (name: string, linkname: string): RawEntry => ({ name, typeflag: '2', linkname });
const hard = (name: string, linkname: string): RawEntry => ({ name, typeflag: '1', linkname });
const pax = (records: Record<string, string>): RawEntry => ({ name: 'PaxHeaders/x', typeflag: 'x', data: paxData(records) });

async function messages(entries: RawEntry[], root: string | null = 'app'): Promise<string> {
  return (await checkTarEntries(rawTar(entries), root === null ? {} : { root })).map((p) => p.message).join('\n');
}

const DEEP = 'a/b/c/d/e/f';

describe('links are resolved in the tree as it is after --strip-components', () => {
  const cases: Array<[string, RawEntry[], string | null, RegExp]> = [
    // the first shown attack: the marker write followed this link to a sibling of the tree
    [
      'the marker as a link to a sibling',
      [dir('app'), sym('app/.hades-artifact', '../passwd')],
      'app',
      /"app\/\.hades-artifact": \.hades-artifact at the root of the tree is the marker Hades writes/,
    ],
    [
      'the marker as a plain file',
      [dir('app'), file('app/.hades-artifact')],
      'app',
      /"app\/\.hades-artifact": \.hades-artifact at the root/,
    ],
    ['the marker in a plain tar (no stripping)', [file('./.hades-artifact')], null, /"\.\/\.hades-artifact": \.hades-artifact at the root/],
    [
      '"esc -> .." (inside before stripping, outside after)',
      [dir('app'), sym('app/esc', '..')],
      'app',
      /"app\/esc": symlink to "\.\." points outside the extracted tree/,
    ],
    [
      '"etc-passwd -> ../etc/passwd"',
      [dir('app'), sym('app/etc-passwd', '../etc/passwd')],
      'app',
      /"app\/etc-passwd": symlink to "\.\.\/etc\/passwd" points outside/,
    ],
    // the second shown attack (extract: true): a chain through a link that lexically stays inside
    [
      'a chain: ".." after passing through another link',
      [sym('x', `${DEEP}/l/../../../../../../../tmp/victim`), file(`${DEEP}/f`), sym(`${DEEP}/l`, '../../../../../..')],
      null,
      /"x": symlink to "a\/b\/c\/d\/e\/f\/l\/\.\.\/.*" goes up \(".."\) after passing through the symlink "a\/b\/c\/d\/e\/f\/l"/,
    ],
    [
      'a later entry through a link',
      [dir('app'), sym('app/l', 'd'), dir('app/d'), file('app/l/x')],
      'app',
      /"app\/l\/x": path goes through the symlink "app\/l"/,
    ],
    [
      'a later link redirecting an earlier file',
      [dir('app'), file('app/x'), sym('app/x', 'y')],
      'app',
      /"app\/x": duplicate entry: the archive already has "app\/x" \(a file\)/,
    ],
    ['the same file twice', [file('a'), file('a')], null, /"a": duplicate entry/],
    [
      'a later link replacing an explicit directory',
      [dir('app'), dir('app/d'), sym('app/d', '.')],
      'app',
      /"app\/d": duplicate entry: .* \(a directory\)/,
    ],
    [
      'a later link replacing an implicit directory',
      [dir('app'), file('app/d/f'), sym('app/d', '.')],
      'app',
      /"app\/d": would replace the directory "d" that earlier entries are in/,
    ],
    ['an entry below a file', [file('f'), file('f/x')], null, /"f\/x": path goes through "f", which is not a directory/],
    ['an absolute symlink', [dir('app'), sym('app/l', '/etc')], 'app', /"app\/l": symlink to the absolute path "\/etc"/],
    ['a symlink with a control character', [sym('l', 'a\nb')], null, /"l": symlink target "a\\nb" contains a control character/],
    ['the root itself as a symlink', [sym('app', '/')], 'app', /"app": names the root of the extracted tree itself/],
  ];
  test.each(cases)('%s', async (_what, entries, root, re) => {
    expect(await messages(entries, root)).toMatch(re);
  });

  test('hard links: target inside the tree, a regular file seen earlier, not through a symlink; targets are stripped like names', async () => {
    expect(await messages([dir('app'), file('app/a'), hard('app/h', 'app/a')])).toBe('');
    expect(await messages([dir('app'), hard('app/h', 'app/../etc/shadow')])).toMatch(
      /"app\/h": hard link to "app\/\.\.\/etc\/shadow" points outside the extracted tree \(target: path contains a "\.\."/,
    );
    expect(await messages([dir('app'), hard('app/h', 'app//etc/shadow')])).toMatch(
      /"app\/h": hard link to "app\/\/etc\/shadow" points outside .*empty component/,
    );
    expect(await messages([dir('app'), file('a'), hard('app/h', 'a')])).toMatch(/outside the artifact directory "app"/);
    expect(await messages([dir('app'), hard('app/h', 'app')])).toMatch(/"app\/h": hard link to "app", which is not a file earlier/);
    expect(await messages([dir('app'), sym('app/s', 'a'), file('app/a'), hard('app/h', 'app/s')])).toMatch(
      /"app\/h": hard link to "app\/s", which is not a file/,
    );
    expect(await messages([dir('app'), sym('app/l', 'd'), dir('app/d'), file('app/d/a'), hard('app/h', 'app/l/a')])).toMatch(
      /"app\/h": hard link to "app\/l\/a", which is not a file/,
    );
    expect(await messages([dir('app'), hard('app/h', 'app/a'), file('app/a')])).toMatch(
      /"app\/h": hard link to "app\/a", which is not a file earlier/,
    );
  });

  test('names tar would read differently: "//" (tar strips "app//x" to "/x"), "./" before the root, a trailing "/" on a file', async () => {
    expect(await messages([dir('app'), file('app//x')])).toMatch(/"app\/\/x": path contains an empty component/);
    expect(await messages([dir('app'), file('./app/x')])).toMatch(/"\.\/app\/x": is outside the artifact directory "app"/);
    expect(await messages([file('a/')], null)).toMatch(/"a\/": ends with "\/" but is not a directory/);
    expect(await messages([file('a\nb')], null)).toMatch(/"a\\nb": path contains a control character/);
    expect(await messages([file(Buffer.from([0x61, 0xff, 0x2f, 0x62]))], null)).toMatch(/not valid UTF-8/);
    expect(await messages([{ name: 'l', typeflag: '2', linkname: 'a', data: 'hidden' }], null)).toMatch(
      /"l": a symlink with a recorded size of 6 bytes/,
    );
    // canonical names that differ only harmlessly are fine: "./a" without stripping, "app/./x" with it
    expect(await messages([dir('./'), file('./a'), dir('./d/'), sym('./d/l', '../a')], null)).toBe('');
    expect(await messages([dir('app/'), file('app/./x')])).toBe('');
  });

  test('good archives still pass: current -> v1, lib/x -> ../share/x, links to links, hard links, a sticky directory', async () => {
    const good = [
      dir('app'),
      dir('app/v1'),
      file('app/v1/bin'),
      sym('app/current', 'v1'),
      sym('app/run', 'current/bin'),
      dir('app/share'),
      file('app/share/x'),
      dir('app/lib'),
      sym('app/lib/x', '../share/x'),
      sym('app/lib/self', '.'),
      hard('app/v1/bin2', 'app/v1/bin'),
      dir('app/tmp', 0o1777),
    ];
    expect(await messages(good)).toBe('');
    expect(stripComponentsFor({ root: 'app' })).toBe(1);
    expect(stripComponentsFor({})).toBe(0);
  });
});

describe('the checker reads names as GNU tar does: unknown PAX keys and entry types are refused', () => {
  const cases: Array<[string, RawEntry[], RegExp]> = [
    [
      'GNU.sparse.name renames the entry for tar',
      [dir('app'), pax({ 'GNU.sparse.name': 'other/evil' }), file('app/ok')],
      /"app\/ok": PAX key "GNU\.sparse\.name" is not supported/,
    ],
    [
      'GNU.sparse.major (sparse 1.0)',
      [pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' }), file('app/s')],
      /PAX key "GNU\.sparse\.major" is not supported/,
    ],
    [
      'SCHILY.xattr (file capabilities)',
      [pax({ 'SCHILY.xattr.security.capability': 'x' }), file('app/f')],
      /PAX key "SCHILY\.xattr\.security\.capability"/,
    ],
    ['hdrcharset', [pax({ hdrcharset: 'BINARY', path: 'app/x' }), file('app/y')], /PAX key "hdrcharset"/],
    ['two extended headers before one entry', [pax({ path: 'app/a' }), pax({ path: 'app/b' }), file('app/c')], /several extended headers/],
    [
      'a GNU long name and a PAX path',
      [{ name: '././@LongLink', typeflag: 'L', data: 'app/long\0' }, pax({ path: 'app/p' }), file('app/c')],
      /several extended headers/,
    ],
    [
      'a global header setting path',
      [{ name: 'g', typeflag: 'g', data: paxData({ path: 'app/l' }) }, file('app/ok')],
      /a global PAX header before it sets "path"/,
    ],
    ['an invalid PAX size', [pax({ size: '0x10' }), file('app/f')], /invalid PAX size "0x10"/],
    ['a sparse entry', [{ name: 'app/s', typeflag: 'S', data: 'x' }], /"app\/s": unsupported entry type "S"/],
    ['a contiguous file', [{ name: 'app/c', typeflag: '7', data: 'x' }], /unsupported entry type "7"/],
    ['a GNU multivolume continuation', [{ name: 'app/m', typeflag: 'M' }], /unsupported entry type "M"/],
    [
      'a Solaris extended header',
      [{ name: 'app/X', typeflag: 'X', data: paxData({ path: 'x' }) }, file('app/f')],
      /unsupported entry type "X"/,
    ],
    ['a FIFO', [{ name: 'app/p', typeflag: '6' }], /"app\/p": FIFO/],
    ['a block device', [{ name: 'app/b', typeflag: '4' }], /block device file/],
  ];
  test.each(cases)('%s', async (_what, entries, re) => {
    expect(await messages([dir('app'), ...entries.filter((e) => e.name !== 'app')])).toMatch(re);
  });

  test('allowed: a global comment (git archive), PAX path/linkpath/times/ids, GNU long names', async () => {
    const long = `app/${'n'.repeat(150)}`;
    expect(
      await messages([
        { name: 'pax_global_header', typeflag: 'g', data: paxData({ comment: 'f00dfeed' }) },
        dir('app'),
        pax({
          path: 'app/p',
          mtime: '1700000000.5',
          atime: '1',
          ctime: '2',
          uid: '1000',
          gid: '1000',
          uname: 'u',
          gname: 'g',
          comment: 'c',
        }),
        file('ignored'),
        pax({ linkpath: 'p' }),
        sym('app/l', 'ignored'),
        { name: '././@LongLink', typeflag: 'L', data: `${long}\0` },
        file('short'),
      ]),
    ).toBe('');
  });

  test('real GNU tar extracts a GNU.sparse.name record as the name (the issue: checker saw app/ok, tar wrote other/evil); refused', async () => {
    const w = join(tmp, 'sparse-name');
    const out = join(w, 'out');
    mkdirSync(out, { recursive: true });
    const t = join(w, 'a.tar');
    writeFileSync(t, rawTar([dir('app'), pax({ 'GNU.sparse.name': 'other/evil' }), file('app/ok')]));
    execFileSync('tar', ['-xf', t, '-C', out]);
    expect(existsSync(join(out, 'other', 'evil'))).toBe(true); // what tar really did
    expect(existsSync(join(out, 'app', 'ok'))).toBe(false);
    expect((await listTar(t)).map((e) => e.path)).toEqual(['app', 'app/ok']); // the name the JS reader sees
    expect((await checkTarEntries(t, { root: 'app' })).map((p) => p.message).join('\n')).toMatch(
      /"app\/ok": PAX key "GNU\.sparse\.name" is not supported/,
    );
  });

  test('real GNU tar: sparse files (gnu and pax formats) are refused', async () => {
    const w = join(tmp, 'sparse');
    mkdirSync(w);
    execFileSync('truncate', ['-s', '4M', join(w, 'hole')]);
    for (const format of ['gnu', 'pax']) {
      const t = join(w, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '--sparse', '-cf', t, '-C', w, 'hole']);
      expect((await checkTarEntries(t)).map((p) => p.message).join('\n')).toMatch(
        format === 'gnu' ? /unsupported entry type "S"/ : /PAX key "GNU\.sparse\./,
      );
    }
  });

  test('real GNU tar: its default (gnu, long names) and pax formats of a good tree pass', async () => {
    const w = join(tmp, 'good');
    const app = join(w, 'app');
    const long = 'L'.repeat(120);
    mkdirSync(join(app, 'v1', long), { recursive: true });
    mkdirSync(join(app, 'share'));
    mkdirSync(join(app, 'lib'));
    writeFileSync(join(app, 'v1', long, 'f'), 'f');
    writeFileSync(join(app, 'share', 'x'), 'x');
    linkSync(join(app, 'share', 'x'), join(app, 'share', 'x2'));
    symlinkSync('v1', join(app, 'current'));
    symlinkSync('../share/x', join(app, 'lib', 'x'));
    symlinkSync(`../v1/${long}/f`, join(app, 'lib', long));
    for (const format of ['gnu', 'pax']) {
      const t = join(w, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', t, '-C', w, 'app']);
      expect(await checkTarEntries(t, { root: 'app' })).toEqual([]);
      const gnu = execFileSync('tar', ['-tf', t], { encoding: 'utf8' }).trim().split('\n');
      expect((await listTar(t)).map((e) => e.path)).toEqual(gnu);
    }
    expect(readFileSync(join(app, 'lib', 'x'), 'utf8')).toBe('x');
  });
});

describe('special mode bits are refused (tar running as root keeps them)', () => {
  test.each([
    ['setuid file', file('app/su', { mode: 0o4755 }), /"app\/su": mode 4755 has setuid\/setgid\/sticky bits/],
    ['setgid file', file('app/sg', { mode: 0o2755 }), /"app\/sg": mode 2755/],
    ['sticky file', file('app/st', { mode: 0o1644 }), /"app\/st": mode 1644/],
    ['setgid directory', dir('app/d', 0o2775), /"app\/d": mode 2775/],
  ])('%s', async (_what, entry, re) => {
    expect(await messages([dir('app'), entry])).toMatch(re);
  });

  test('real GNU tar of a setuid binary is refused', async () => {
    const w = join(tmp, 'suid');
    mkdirSync(join(w, 'app'), { recursive: true });
    writeFileSync(join(w, 'app', 'sh'), '#!/bin/sh\n');
    chmodSync(join(w, 'app', 'sh'), 0o4755);
    const t = join(w, 'a.tar.gz');
    execFileSync('tar', ['-czf', t, '-C', w, 'app']);
    expect((await checkTarEntries(t, { root: 'app' })).map((p) => p.message)).toEqual([
      'tar entry "app/sh": mode 4755 has setuid/setgid/sticky bits',
    ]);
  });
});

test('a flood of bad entries is reported as the first 20 and a count', async () => {
  const entries = [dir('app'), ...Array.from({ length: 30 }, (_, i) => sym(`app/l${i}`, '/etc'))];
  const problems = await checkTarEntries(rawTar(entries), { root: 'app' });
  expect(problems).toHaveLength(21);
  expect(problems[20]!.message).toBe('… and 10 more refused entries');
});
