import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  chmodSync,
  statSync,
  readlinkSync,
  cpSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkTarEntries, listTar, newestMtime, packDirectory, scanDirectory, tarStream } from '../../src/registry/archive.js';
import { UserError } from '../../src/errors.js';
import { paxData, rawTar } from '../fixtures/registry/rawtar.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-archive-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const LONG = 'l'.repeat(120); // > 100 bytes: ustar prefix split
const VERY_LONG = Array.from({ length: 6 }, () => 'x'.repeat(60)).join('/'); // > 255: PAX path

function makeTree(root: string, t = 1_700_000_000): void {
  mkdirSync(join(root, 'sub', 'empty'), { recursive: true });
  mkdirSync(join(root, LONG), { recursive: true });
  mkdirSync(join(root, VERY_LONG.split('/').slice(0, -1).join('/')), { recursive: true });
  writeFileSync(join(root, 'a.txt'), 'hello\n');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  writeFileSync(join(root, 'sub', 'b.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(root, LONG, 'f'), 'long\n');
  writeFileSync(join(root, VERY_LONG), 'very long\n');
  writeFileSync(join(root, 'sub', 'ünïcödé.txt'), 'u\n');
  symlinkSync('a.txt', join(root, 'link'));
  symlinkSync('../a.txt', join(root, 'sub', 'up'));
  for (const f of ['a.txt', 'run.sh', 'sub/b.bin', `${LONG}/f`, VERY_LONG, 'sub/ünïcödé.txt']) utimesSync(join(root, f), t, t);
}

describe('directory archives', () => {
  test('the tar is a valid archive GNU tar reads and extracts exactly (long, non-ASCII names, modes, symlinks, empty dirs)', async () => {
    const src = join(tmp, 'tree1', 'app');
    makeTree(src);
    const entries = await scanDirectory(src, 'app');
    const tarBytes = await collect(tarStream(entries, 1_600_000_000));
    const tarFile = join(tmp, 'app.tar');
    writeFileSync(tarFile, tarBytes);

    // our own reader
    const listed = await listTar(tarFile);
    expect(listed.map((e) => e.path)).toEqual(entries.map((e) => e.path));
    expect(listed[0]).toMatchObject({ path: 'app', type: 'directory', uid: 0, gid: 0 });
    expect(listed.every((e) => e.mtime === 1_600_000_000)).toBe(true);
    expect(listed.find((e) => e.path === 'app/link')).toMatchObject({ type: 'symlink', linkname: 'a.txt' });
    expect(listed.find((e) => e.path === `app/${VERY_LONG}`)).toMatchObject({ type: 'file', size: 10 });
    // sorted: every directory precedes its children; siblings in byte order
    expect(listed.findIndex((e) => e.path === 'app/sub')).toBeLessThan(listed.findIndex((e) => e.path === 'app/sub/b.bin'));

    // the real GNU tar
    const out = join(tmp, 'x1');
    mkdirSync(out);
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    const gnuList = execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).trim().split('\n');
    expect(gnuList.map((p) => p.replace(/\/$/, ''))).toEqual(entries.map((e) => e.path));
    for (const f of ['a.txt', 'sub/b.bin', `${LONG}/f`, VERY_LONG, 'sub/ünïcödé.txt'])
      expect(readFileSync(join(out, 'app', f))).toEqual(readFileSync(join(src, f)));
    expect(statSync(join(out, 'app', 'run.sh')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(out, 'app', 'sub', 'up'))).toBe('../a.txt');
    expect(statSync(join(out, 'app', 'sub', 'empty')).isDirectory()).toBe(true);
    expect(statSync(join(out, 'app', 'a.txt')).mtimeMs).toBe(1_600_000_000_000);
    expect(await checkTarEntries(tarFile, { root: 'app' })).toEqual([]);
  });

  test('reproducible: same content elsewhere (different dir mtimes, same file mtimes) → identical tar and tar.gz', async () => {
    const a = join(tmp, 'r1', 'site');
    const b = join(tmp, 'r2', 'site');
    makeTree(a);
    await new Promise((r) => setTimeout(r, 20));
    cpSync(a, b, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    utimesSync(join(b, 'sub'), 1, 1); // directory mtimes don't matter
    const ea = await scanDirectory(a, 'site');
    const eb = await scanDirectory(b, 'site');
    expect(newestMtime(ea)).toBe(1_700_000_000);
    expect(newestMtime(eb)).toBe(1_700_000_000);
    const pa = packDirectory(ea, 1_700_000_000);
    const pb = packDirectory(eb, 1_700_000_000);
    const [ga, gb] = [await collect(pa.stream), await collect(pb.stream)];
    expect(createHash('sha256').update(ga).digest('hex')).toBe(createHash('sha256').update(gb).digest('hex'));
    expect(pa.tar()).toEqual(pb.tar());
    expect(pa.tar().digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    // the gzip really is the tar
    expect(await listTar(ga)).toHaveLength(ea.length);
  });

  test('refuses symlinks leaving the directory and special files, naming each', async () => {
    const src = join(tmp, 'bad', 'app');
    mkdirSync(join(src, 'd'), { recursive: true });
    symlinkSync('/etc/passwd', join(src, 'abs'));
    symlinkSync('../../outside', join(src, 'd', 'up'));
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const err = await scanDirectory(src, 'app').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const msgs = (err as UserError).problems.map((p) => p.message);
    expect(msgs).toHaveLength(3);
    expect(msgs.join('\n')).toMatch(/abs is a symlink to "\/etc\/passwd", which points outside/);
    expect(msgs.join('\n')).toMatch(/d\/up is a symlink to "\.\.\/\.\.\/outside"/);
    expect(msgs.join('\n')).toMatch(/pipe is a FIFO/);
  });
});

describe('names the pull-side check would refuse are refused at push', () => {
  test('a control character in a name or a symlink target', async () => {
    const src = join(tmp, 'ctl', 'app');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a\nb'), 'x');
    symlinkSync('x\ty', join(src, 'tab-link'));
    const err = await scanDirectory(src, 'app').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const msgs = (err as UserError).problems.map((p) => p.message).join('\n');
    expect(msgs).toContain(`${JSON.stringify(join(src, 'a\nb'))} has a control character in its name`);
    expect(msgs).toContain(`${JSON.stringify(join(src, 'tab-link'))} is a symlink to "x\\ty", which has a control character`);
  });
});

describe('checkTarEntries', () => {
  const file = (name: string | Buffer, extra: Partial<Parameters<typeof rawTar>[0][number]> = {}) => ({
    name,
    typeflag: '0',
    data: 'x',
    ...extra,
  });

  test('a clean hand-written archive has no problems', async () => {
    const tar = rawTar([
      { name: 'app', typeflag: '5' },
      file('app/a'),
      { name: 'app/l', typeflag: '2', linkname: 'a' },
      { name: 'app/h', typeflag: '1', linkname: 'app/a' },
      { name: 'app/d/', typeflag: '5' },
      { name: 'app/d/l2', typeflag: '2', linkname: '../a' },
    ]);
    expect(await checkTarEntries(tar, { root: 'app' })).toEqual([]);
    expect((await listTar(tar)).map((e) => e.type)).toEqual(['directory', 'file', 'symlink', 'hardlink', 'directory', 'symlink']);
  });

  const cases: Array<[string, Buffer, RegExp]> = [
    ['absolute path', rawTar([file('/etc/passwd')]), /"\/etc\/passwd": absolute path/],
    ['absolute path through the ustar prefix field', rawTar([file('passwd', { prefix: '/etc' })]), /"\/etc\/passwd": absolute path/],
    ['.. at the start', rawTar([file('../evil')]), /"\.\.\/evil": path contains a "\.\." component/],
    ['.. in the middle', rawTar([file('a/../../b')]), /"a\/\.\.\/\.\.\/b": path contains a "\.\."/],
    ['symlink to an absolute path', rawTar([{ name: 'l', typeflag: '2', linkname: '/etc' }]), /"l": symlink to the absolute path "\/etc"/],
    [
      'symlink escaping by ..',
      rawTar([{ name: 'd/l', typeflag: '2', linkname: '../../x' }]),
      /"d\/l": symlink to "\.\.\/\.\.\/x" points outside/,
    ],
    [
      'entry written through a symlink of the archive',
      rawTar([
        { name: 'p', typeflag: '2', linkname: '.' },
        { name: 'p/q', typeflag: '2', linkname: '..' },
      ]),
      /"p\/q": path goes through the symlink "p"/,
    ],
    [
      'hard link out of the root',
      rawTar([{ name: 'h', typeflag: '1', linkname: '../etc/shadow' }]),
      /"h": hard link to "\.\.\/etc\/shadow" points outside/,
    ],
    [
      'hard link to an absolute path',
      rawTar([{ name: 'h', typeflag: '1', linkname: '/etc/shadow' }]),
      /"h": hard link to "\/etc\/shadow" points outside/,
    ],
    [
      'hard link to something not in the archive',
      rawTar([{ name: 'h', typeflag: '1', linkname: 'etc/shadow' }]),
      /not a file earlier in the archive/,
    ],
    ['character device', rawTar([{ name: 'null', typeflag: '3' }]), /"null": character device file/],
    ['block device', rawTar([{ name: 'sda', typeflag: '4' }]), /"sda": block device file/],
    ['fifo', rawTar([{ name: 'pipe', typeflag: '6' }]), /"pipe": FIFO/],
    ['NUL inside a ustar name', rawTar([file(Buffer.from('ok\0../../etc/passwd'))]), /"ok": name or link target contains a NUL byte/],
    [
      'NUL inside a PAX path',
      rawTar([{ name: 'PaxHeaders/a', typeflag: 'x', data: paxData({ path: 'a\0b' }) }, file('a')]),
      /name or link target contains a NUL byte/,
    ],
    [
      'PAX path overriding an innocent ustar name',
      rawTar([{ name: 'PaxHeaders/ok', typeflag: 'x', data: paxData({ path: '../../root/.ssh/authorized_keys' }) }, file('ok')]),
      /"\.\.\/\.\.\/root\/\.ssh\/authorized_keys": path contains a "\.\."/,
    ],
    [
      'PAX linkpath escaping',
      rawTar([
        { name: 'PaxHeaders/l', typeflag: 'x', data: paxData({ linkpath: '/'.repeat(1) + 'x'.repeat(150) }) },
        { name: 'l', typeflag: '2', linkname: 'ok' },
      ]),
      /"l": symlink to the absolute path/,
    ],
    ['GNU long name', rawTar([{ name: '././@LongLink', typeflag: 'L', data: `/${'y'.repeat(200)}\0` }, file('short')]), /absolute path/],
    ['unknown entry type', rawTar([{ name: 'v', typeflag: 'V' }]), /unsupported entry type "V"/],
    [
      'entry outside the artifact directory',
      rawTar([{ name: 'app', typeflag: '5' }, file('other/x')]),
      /outside the artifact directory "app"/,
    ],
  ];
  test.each(cases)('%s', async (_what, tar, re) => {
    const problems = await checkTarEntries(tar, { root: _what.includes('artifact directory') ? 'app' : undefined });
    expect(problems.map((p) => p.message).join('\n')).toMatch(re);
  });

  test('gzip is detected; streams, paths and buffers all work', async () => {
    const evil = rawTar([file('ok'), file('/abs'), { name: 'dev', typeflag: '3' }]);
    const gz = gzipSync(evil);
    const p = join(tmp, 'evil.tar.gz');
    writeFileSync(p, gz);
    for (const input of [gz, p, Readable.from([gz.subarray(0, 7), gz.subarray(7)])]) {
      const problems = await checkTarEntries(input);
      expect(problems.map((x) => x.message)).toEqual(['tar entry "/abs": absolute path', 'tar entry "dev": character device file']);
    }
  });

  test('malformed and truncated archives are problems, not crashes', async () => {
    const good = rawTar([file('a', { data: Buffer.alloc(2000, 1) })]);
    const badSum = Buffer.from(good);
    badSum[0] = 0x41;
    expect((await checkTarEntries(badSum))[0]!.message).toMatch(/not a valid tar archive: bad header checksum/);
    expect((await checkTarEntries(good.subarray(0, 1000)))[0]!.message).toMatch(/truncated/);
    expect((await checkTarEntries(gzipSync(good).subarray(0, 30)))[0]!.message).toMatch(/not a valid tar archive/);
    await expect(listTar(badSum)).rejects.toThrow(/checksum/);
  });
});
