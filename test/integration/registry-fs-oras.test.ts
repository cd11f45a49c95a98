/**
 * Interop with the real `oras` CLI, both ways: what Hades writes, `oras pull --oci-layout` reads
 * (identical bytes, directories unpacked — oras checks io.deis.oras.content.digest while
 * unpacking); what `oras push --oci-layout` writes, Hades resolves, verifies and serves.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  chmodSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkTarEntries, listTar } from '../../src/registry/archive.js';
import { openFilesystemRegistry, type FilesystemRegistry } from '../../src/registry/fs/registry.js';

const haveOras = spawnSync('oras', ['version'], { encoding: 'utf8' }).status === 0;
if (!haveOras && process.env.CI === 'true') {
  throw new Error('the oras CLI is required for the registry interop tests (CI=true); install it with .ci/install');
}

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
let tmp: string;
let k = 0;
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const T0 = 1_700_000_000;

function registry(name = 'store'): FilesystemRegistry {
  return openFilesystemRegistry({ name, type: 'filesystem', path: join(tmp, `reg${k++}`), pos }, { env: {} });
}
function oras(args: string[], cwd = tmp): string {
  const r = spawnSync('oras', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`oras ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}
async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
function tree(name: string): string {
  const d = join(tmp, `tree${k++}`, name);
  mkdirSync(join(d, 'bin'), { recursive: true });
  mkdirSync(join(d, 'empty'));
  writeFileSync(join(d, 'bin', 'start'), '#!/bin/sh\nexec app\n');
  chmodSync(join(d, 'bin', 'start'), 0o755);
  writeFileSync(join(d, 'config.yml'), 'port: 8080\n');
  writeFileSync(join(d, 'big.dat'), Buffer.alloc(300_000, 3));
  symlinkSync('config.yml', join(d, 'current.yml'));
  for (const f of ['bin/start', 'config.yml', 'big.dat']) utimesSync(join(d, f), T0, T0);
  return d;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-oras-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!haveOras)('oras interop', () => {
  test('Hades → oras: a file artifact pulls with identical bytes; oras sees the same manifest and the tags', async () => {
    const reg = registry();
    const src = join(tmp, `f${k++}`);
    mkdirSync(src);
    writeFileSync(join(src, 'app.tar.gz'), Buffer.alloc(123_457, 0xab));
    const r = await reg.push('team/app', 'v1.0.0', { path: join(src, 'app.tar.gz') }, { semverAliases: true });
    const ref = `${join(reg.root, 'team', 'app')}:v1.0.0`;
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--oci-layout', ref, '-o', out]);
    expect(readFileSync(join(out, 'app.tar.gz')).equals(readFileSync(join(src, 'app.tar.gz')))).toBe(true);
    const manifest = oras(['manifest', 'fetch', '--oci-layout', ref]);
    expect(sha(manifest)).toBe(r.descriptor.manifestDigest);
    const desc = JSON.parse(oras(['manifest', 'fetch', '--oci-layout', '--descriptor', ref]));
    expect(desc.digest).toBe(r.descriptor.manifestDigest);
    expect(
      oras(['repo', 'tags', '--oci-layout', join(reg.root, 'team', 'app')])
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(['latest', 'v1', 'v1.0', 'v1.0.0']);
    oras(['pull', '--oci-layout', `${join(reg.root, 'team', 'app')}:latest`, '-o', join(tmp, `out${k++}`)]);
  });

  test('Hades → oras: a directory artifact unpacks with identical files, modes and symlinks (oras checks the tar digest)', async () => {
    const reg = registry();
    const src = tree('site');
    const r = await reg.push('site', 'v1', { path: src });
    expect(r.descriptor.layer.directory).toBe(true);
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--oci-layout', `${join(reg.root, 'site')}:v1`, '-o', out]);
    for (const f of ['bin/start', 'config.yml', 'big.dat'])
      expect(readFileSync(join(out, 'site', f)).equals(readFileSync(join(src, f)))).toBe(true);
    expect(statSync(join(out, 'site', 'bin', 'start')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(out, 'site', 'current.yml'))).toBe('config.yml');
    expect(lstatSync(join(out, 'site', 'empty')).isDirectory()).toBe(true);
  });

  test('oras → Hades: a file pushed by oras resolves, verifies and streams; Hades adds tags oras still reads', async () => {
    const root = join(tmp, `reg${k++}`);
    const src = join(tmp, `f${k++}`);
    mkdirSync(src);
    writeFileSync(join(src, 'tool.bin'), Buffer.alloc(50_000, 0x11));
    const pushed = JSON.parse(oras(['push', '--oci-layout', `${join(root, 'tools')}:v1`, 'tool.bin', '--format', 'json'], src));
    const reg = openFilesystemRegistry({ name: 'store', type: 'filesystem', path: root, pos }, { env: {} });
    const d = await reg.resolve('tools', { tag: 'v1' });
    expect(d.manifestDigest).toBe(pushed.digest);
    expect(d.artifactType).toBe('application/vnd.unknown.artifact.v1');
    expect(d.created).toBe(pushed.annotations['org.opencontainers.image.created']);
    expect(d.layer).toEqual({
      digest: sha(Buffer.alloc(50_000, 0x11)),
      size: 50_000,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      title: 'tool.bin',
      directory: false,
    });
    expect((await bytes(await reg.open(d))).equals(Buffer.alloc(50_000, 0x11))).toBe(true);
    expect(await reg.names()).toEqual(['tools']);
    expect((await reg.tags('tools')).map((t) => [t.tag, t.manifestDigest, t.mutable])).toEqual([['v1', pushed.digest, false]]);
    // the oras-written tag is immutable for Hades too
    writeFileSync(join(src, 'tool.bin'), 'other');
    await expect(reg.push('tools', 'v1', { path: join(src, 'tool.bin') })).rejects.toThrow(
      `tag v1 of tools already exists with ${pushed.digest}`,
    );
    // Hades writes into the oras layout; oras reads both tags
    const mine = await reg.push('tools', 'v2', { path: join(src, 'tool.bin') });
    expect(
      oras(['repo', 'tags', '--oci-layout', join(root, 'tools')])
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(['v1', 'v2']);
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--oci-layout', `${join(root, 'tools')}:v1`, '-o', out]);
    expect(readFileSync(join(out, 'tool.bin')).equals(Buffer.alloc(50_000, 0x11))).toBe(true);
    expect(sha(oras(['manifest', 'fetch', '--oci-layout', `${join(root, 'tools')}:v2`]))).toBe(mine.descriptor.manifestDigest);
  });

  test('oras → Hades: a directory pushed by oras is a safe directory layer; copies keep its digest and oras pulls the copy', async () => {
    const root = join(tmp, `reg${k++}`);
    const src = tree('web');
    const pushed = JSON.parse(
      oras(
        ['push', '--oci-layout', `${join(root, 'web')}:v1`, 'web', '--artifact-type', 'application/vnd.acme.web.v1', '--format', 'json'],
        dirname(src),
      ),
    );
    const reg = openFilesystemRegistry({ name: 'store', type: 'filesystem', path: root, pos }, { env: {} });
    const d = await reg.resolve('web', { tag: 'v1' });
    expect(d.manifestDigest).toBe(pushed.digest);
    expect(d.artifactType).toBe('application/vnd.acme.web.v1');
    expect(d.layer).toMatchObject({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', title: 'web', directory: true });
    const tar = gunzipSync(await bytes(await reg.open(d)));
    expect(await checkTarEntries(tar, { root: 'web' })).toEqual([]);
    const files = (await listTar(tar)).filter((e) => e.type === 'file').map((e) => `${e.path} ${e.size}`);
    expect(files.sort()).toEqual(['web/big.dat 300000', 'web/bin/start 19', 'web/config.yml 11']);

    const dst = registry('prod');
    const c = await reg.copyTo(dst, 'web', 'v1', 'release-1');
    expect(c.descriptor.manifestDigest).toBe(pushed.digest);
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--oci-layout', `${join(dst.root, 'web')}:release-1`, '-o', out]);
    expect(readFileSync(join(out, 'web', 'big.dat')).equals(Buffer.alloc(300_000, 3))).toBe(true);
    expect(readlinkSync(join(out, 'web', 'current.yml'))).toBe('config.yml');
  });

  test('oras artifacts Hades cannot serve are refused with a clear reason (several files)', async () => {
    const root = join(tmp, `reg${k++}`);
    const src = join(tmp, `f${k++}`);
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'a');
    writeFileSync(join(src, 'b'), 'b');
    oras(['push', '--oci-layout', `${join(root, 'multi')}:v1`, 'a', 'b'], src);
    const reg = openFilesystemRegistry({ name: 'store', type: 'filesystem', path: root, pos }, { env: {} });
    await expect(reg.resolve('multi', { tag: 'v1' })).rejects.toThrow(
      'registry "store": artifact multi:v1 has 2 layers; Hades artifacts carry exactly one file or directory',
    );
  });

  test('the same directory pushed by Hades and by oras has the same uncompressed tar when the mtimes match', async () => {
    // Hades pins every mtime to the created time; with SOURCE_DATE_EPOCH equal to the files' mtimes
    // and directory mtimes set to it too, oras's tar of the same tree is byte-identical.
    const src = tree('same');
    for (const p of ['', 'bin', 'empty']) utimesSync(join(src, p), T0, T0);
    spawnSync('touch', ['-h', '-d', `@${T0}`, join(src, 'current.yml')]);
    const reg = openFilesystemRegistry(
      { name: 'store', type: 'filesystem', path: join(tmp, `reg${k++}`), pos },
      { env: { SOURCE_DATE_EPOCH: String(T0) } },
    );
    const mine = await reg.push('same', 'v1', { path: src });
    const root = join(tmp, `reg${k++}`);
    const theirs = JSON.parse(oras(['push', '--oci-layout', `${join(root, 'same')}:v1`, 'same', '--format', 'json'], dirname(src)));
    const m1 = JSON.parse(readFileSync(join(reg.root, 'same', 'blobs', 'sha256', mine.descriptor.manifestDigest.slice(7)), 'utf8'));
    const m2 = JSON.parse(readFileSync(join(root, 'same', 'blobs', 'sha256', theirs.digest.slice(7)), 'utf8'));
    expect(m1.layers[0].annotations['io.deis.oras.content.digest']).toBe(m2.layers[0].annotations['io.deis.oras.content.digest']);
    expect(Object.keys(m1)).toEqual(Object.keys(m2));
    expect(m1.config).toEqual(m2.config);
  });
});
