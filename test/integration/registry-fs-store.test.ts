/**
 * The filesystem registry end to end on a real disk: layout, immutability, aliases, pinned
 * creation times, reproducibility, digest verification on every read, refusal of anything that
 * could reach outside the registry, copies between registries.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../../src/errors.js';
import { listTar } from '../../src/registry/archive.js';
import { IntegrityError } from '../../src/registry/digest.js';
import { openFilesystemRegistry, type FilesystemRegistry } from '../../src/registry/fs/registry.js';
import { ArtifactNotFound } from '../../src/registry/types.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
let tmp: string;
let k = 0;
const T0 = 1_700_000_000; // 2023-11-14T22:13:20Z

function registry(env: Record<string, string | undefined> = {}, name = 'store'): FilesystemRegistry {
  return openFilesystemRegistry({ name, type: 'filesystem', path: join(tmp, `reg${k++}`), pos }, { env });
}
function file(content: string | Buffer, name = 'app.bin', mtime = T0): string {
  const d = join(tmp, `src${k++}`);
  mkdirSync(d);
  const p = join(d, name);
  writeFileSync(p, content);
  utimesSync(p, mtime, mtime);
  return p;
}
function dirTree(name = 'site', mtime = T0): string {
  const d = join(tmp, `src${k++}`, name);
  mkdirSync(join(d, 'css'), { recursive: true });
  writeFileSync(join(d, 'index.html'), '<h1>hi</h1>\n');
  writeFileSync(join(d, 'css', 'a.css'), 'body{}\n');
  for (const f of ['index.html', 'css/a.css']) utimesSync(join(d, f), mtime, mtime);
  return d;
}
async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hades-fsreg-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('push, resolve, open', () => {
  test('a file artifact: OCI layout on disk as oras writes it, resolvable by tag and digest, readable', async () => {
    const reg = registry();
    const src = file('payload\n');
    const r = await reg.push('team/app', 'v1', { path: src });
    expect(r.unchanged).toBe(false);
    const d = r.descriptor;
    expect(d).toMatchObject({
      registry: 'store',
      name: 'team/app',
      tag: 'v1',
      artifactType: 'application/vnd.hades.artifact.v1',
      created: '2023-11-14T22:13:20Z',
      layer: { digest: sha('payload\n'), size: 8, mediaType: 'application/vnd.oci.image.layer.v1.tar', title: 'app.bin', directory: false },
    });
    const layout = join(reg.root, 'team', 'app');
    expect(readFileSync(join(layout, 'oci-layout'), 'utf8')).toBe('{"imageLayoutVersion":"1.0.0"}');
    const manifestFile = join(layout, 'blobs', 'sha256', d.manifestDigest.slice(7));
    const manifestText = readFileSync(manifestFile, 'utf8');
    expect(sha(manifestText)).toBe(d.manifestDigest);
    expect(manifestText).toBe(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.hades.artifact.v1',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2, data: 'e30=' },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: sha('payload\n'),
            size: 8,
            annotations: { 'org.opencontainers.image.title': 'app.bin' },
          },
        ],
        annotations: { 'org.opencontainers.image.created': '2023-11-14T22:13:20Z' },
      }),
    );
    expect(readFileSync(join(layout, 'blobs', 'sha256', sha('{}').slice(7)), 'utf8')).toBe('{}');
    expect(statSync(manifestFile).mode & 0o777).toBe(0o444);
    expect(json(join(layout, 'index.json')).manifests).toEqual([
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: d.manifestDigest,
        size: manifestText.length,
        annotations: { 'org.opencontainers.image.created': '2023-11-14T22:13:20Z', 'org.opencontainers.image.ref.name': 'v1' },
        artifactType: 'application/vnd.hades.artifact.v1',
      },
    ]);
    // no temp files left
    expect(readdirSync(join(layout, 'blobs', 'sha256')).filter((n) => n.startsWith('.'))).toEqual([]);

    expect(await reg.resolve('team/app', { tag: 'v1' })).toEqual(d);
    const byDigest = await reg.resolve('team/app', { digest: d.manifestDigest });
    expect(byDigest.layer).toEqual(d.layer);
    expect(byDigest.tag).toBeUndefined();
    expect(await reg.resolve('team/app', { tag: 'v1', digest: d.manifestDigest })).toEqual(d);
    await expect(reg.resolve('team/app', { tag: 'v1', digest: sha('other') })).rejects.toThrow(/is sha256:[0-9a-f]{64}, not the expected/);
    expect(await bytes(await reg.open(d))).toEqual(Buffer.from('payload\n'));
    expect(await reg.exists('team/app', { tag: 'v1' })).toBe(true);
    expect(await reg.exists('team/app', { tag: 'v2' })).toBe(false);
    expect(await reg.exists('nope', { tag: 'v1' })).toBe(false);
    await expect(reg.resolve('team/app', { tag: 'v2' })).rejects.toBeInstanceOf(ArtifactNotFound);
    await expect(reg.resolve('team/app', { digest: sha('x') })).rejects.toThrow(/team\/app@sha256:.* not found in registry "store"/);
    expect(await reg.names()).toEqual(['team/app']);
    expect(await reg.tags('team/app')).toEqual([
      { tag: 'v1', manifestDigest: d.manifestDigest, size: 8, created: '2023-11-14T22:13:20Z', mutable: false },
    ]);
    await expect(reg.tags('team/other')).rejects.toBeInstanceOf(ArtifactNotFound);
  });

  test('a directory artifact: reproducible tar+gzip with oras annotations; the stream is the verified layer', async () => {
    const reg = registry();
    const r = await reg.push('site', 'v1', { path: dirTree() });
    const d = r.descriptor;
    expect(d.layer).toMatchObject({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', title: 'site', directory: true });
    const gz = await bytes(await reg.open(d));
    expect(sha(gz)).toBe(d.layer.digest);
    const tar = gunzipSync(gz);
    const manifest = json(join(reg.root, 'site', 'blobs', 'sha256', d.manifestDigest.slice(7)));
    expect(manifest.layers[0].annotations).toEqual({
      'io.deis.oras.content.digest': sha(tar),
      'io.deis.oras.content.unpack': 'true',
      'org.opencontainers.image.title': 'site',
    });
    expect((await listTar(tar)).map((e) => `${e.type} ${e.path} ${e.mtime}`)).toEqual([
      `directory site ${T0}`,
      `directory site/css ${T0}`,
      `file site/css/a.css ${T0}`,
      `file site/index.html ${T0}`,
    ]);
  });

  test('pinned creation time: PushSource.created > SOURCE_DATE_EPOCH > mtime; bad values are user errors', async () => {
    const src = file('x');
    expect((await registry().push('a', 'v1', { path: src })).descriptor.created).toBe('2023-11-14T22:13:20Z');
    expect((await registry({ SOURCE_DATE_EPOCH: '86400' }).push('a', 'v1', { path: src })).descriptor.created).toBe('1970-01-02T00:00:00Z');
    expect(
      (await registry({ SOURCE_DATE_EPOCH: '86400' }).push('a', 'v1', { path: src, created: '2024-05-01T12:00:00Z' })).descriptor.created,
    ).toBe('2024-05-01T12:00:00Z');
    await expect(registry({ SOURCE_DATE_EPOCH: 'yesterday' }).push('a', 'v1', { path: src })).rejects.toThrow(
      /SOURCE_DATE_EPOCH="yesterday"/,
    );
    await expect(registry().push('a', 'v1', { path: src, created: 'May 1st' })).rejects.toThrow(/not an RFC 3339 time/);
    await expect(registry().push('a', 'v1', { path: src, annotations: { 'org.opencontainers.image.created': 'x' } })).rejects.toThrow(
      /set by Hades itself[\s\S]*set `created` instead/,
    );
    await expect(registry().push('a', 'v1', { path: join(tmp, 'missing') })).rejects.toThrow(/no such file or directory/);
    const custom = await registry().push('a', 'v1', {
      path: src,
      artifactType: 'application/vnd.acme.app.v1',
      annotations: { 'com.acme.commit': 'abc' },
    });
    expect(custom.descriptor.artifactType).toBe('application/vnd.acme.app.v1');
    expect(custom.descriptor.annotations).toEqual({ 'com.acme.commit': 'abc', 'org.opencontainers.image.created': '2023-11-14T22:13:20Z' });
    await expect(registry().push('a', 'v1', { path: src, artifactType: 'not a type' })).rejects.toThrow(/not a media type/);
  });

  test('reproducible: the same bytes in two registries (and a copied directory) give the same manifest digest', async () => {
    const f1 = file('same bytes\n', 'app.tgz');
    const f2 = file('same bytes\n', 'app.tgz'); // another path, same name, bytes and mtime
    const a = await registry().push('app', 'v1', { path: f1 });
    const b = await registry().push('app', 'v7', { path: f2 });
    expect(b.descriptor.manifestDigest).toBe(a.descriptor.manifestDigest);
    const d1 = dirTree('web');
    const d2 = join(tmp, `copy${k++}`, 'web');
    cpSync(d1, d2, { recursive: true, preserveTimestamps: true });
    utimesSync(join(d2, 'css'), 5, 5);
    const x = await registry().push('web', 'v1', { path: d1 });
    const y = await registry().push('web', 'v1', { path: d2 });
    expect(y.descriptor.manifestDigest).toBe(x.descriptor.manifestDigest);
    expect(y.descriptor.layer.digest).toBe(x.descriptor.layer.digest);
    // content matters: one changed byte → another digest
    writeFileSync(join(d2, 'index.html'), '<h1>ho</h1>\n');
    utimesSync(join(d2, 'index.html'), T0, T0);
    expect((await registry().push('web', 'v1', { path: d2 })).descriptor.manifestDigest).not.toBe(x.descriptor.manifestDigest);
  });
});

describe('immutability', () => {
  test('same tag + same content → unchanged; different content → refused naming the existing digest', async () => {
    const reg = registry();
    const first = await reg.push('myapp', 'v1', { path: file('one') });
    const indexFile = join(reg.root, 'myapp', 'index.json');
    const before = readFileSync(indexFile);
    const again = await reg.push('myapp', 'v1', { path: file('one') });
    expect(again.unchanged).toBe(true);
    expect(again.descriptor.manifestDigest).toBe(first.descriptor.manifestDigest);
    expect(readFileSync(indexFile)).toEqual(before);
    const err = await reg.push('myapp', 'v1', { path: file('two') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      `error: tag v1 of myapp already exists with ${first.descriptor.manifestDigest}; registries are immutable — push a new tag`,
    );
    expect((await reg.resolve('myapp', { tag: 'v1' })).manifestDigest).toBe(first.descriptor.manifestDigest);
  });

  test('extra tags are immutable too, and a conflict on any tag writes none', async () => {
    const reg = registry();
    const a = await reg.push('myapp', 'v1', { path: file('a') }, { extraTags: ['stable', 'build-1'] });
    expect((await reg.tags('myapp')).map((t) => t.tag)).toEqual(['build-1', 'stable', 'v1']);
    await expect(reg.push('myapp', 'v2', { path: file('b') }, { extraTags: ['stable'] })).rejects.toThrow(
      `tag stable of myapp already exists with ${a.descriptor.manifestDigest}`,
    );
    expect(await reg.exists('myapp', { tag: 'v2' })).toBe(false);
    const same = await reg.push('myapp', 'v1', { path: file('a') }, { extraTags: ['build-1'] });
    expect(same.unchanged).toBe(true);
    const more = await reg.push('myapp', 'v1', { path: file('a') }, { extraTags: ['build-1', 'prod'] });
    expect(more.unchanged).toBe(false);
  });
});

describe('semver aliases', () => {
  test('aliases move forward only, pre-releases move nothing, aliases are mutable and reported so', async () => {
    const reg = registry();
    const push = (tag: string, content: string) => reg.push('svc', tag, { path: file(content) }, { semverAliases: true });
    const at = async (tag: string) => (await reg.resolve('svc', { tag })).manifestDigest;

    const v120 = await push('v1.2.0', '1.2.0');
    expect(v120.aliases).toEqual([
      { tag: 'v1.2', moved: true },
      { tag: 'v1', moved: true },
      { tag: 'latest', moved: true },
    ]);
    const v130 = await push('v1.3.0', '1.3.0');
    expect(v130.aliases!.map((a) => [a.tag, a.moved, a.previous])).toEqual([
      ['v1.3', true, undefined],
      ['v1', true, 'v1.2.0'],
      ['latest', true, 'v1.2.0'],
    ]);
    // a hotfix on an older line moves its own aliases but not v1/latest
    const v109 = await push('v1.0.9', '1.0.9');
    expect(v109.aliases).toEqual([
      { tag: 'v1.0', moved: true },
      { tag: 'v1', moved: false, previous: 'v1.3.0', reason: 'it points to the newer v1.3.0' },
      { tag: 'latest', moved: false, previous: 'v1.3.0', reason: 'it points to the newer v1.3.0' },
    ]);
    expect(await at('v1')).toBe(v130.descriptor.manifestDigest);
    expect(await at('v1.0')).toBe(v109.descriptor.manifestDigest);
    const rc = await push('v1.4.0-rc1', 'rc');
    expect(rc.aliases).toEqual([]);
    expect(await at('latest')).toBe(v130.descriptor.manifestDigest);
    const v200 = await push('v2.0.0', '2.0.0');
    expect(await at('latest')).toBe(v200.descriptor.manifestDigest);
    expect(await at('v1')).toBe(v130.descriptor.manifestDigest);
    // idempotent re-push: unchanged, aliases stay
    const again = await push('v2.0.0', '2.0.0');
    expect(again.unchanged).toBe(true);
    expect(again.aliases!.every((a) => a.moved)).toBe(true);

    const tags = Object.fromEntries((await reg.tags('svc')).map((t) => [t.tag, t.mutable]));
    expect(tags).toEqual({
      latest: true,
      v1: true,
      'v1.0': true,
      'v1.0.9': false,
      'v1.2': true,
      'v1.2.0': false,
      'v1.3': true,
      'v1.3.0': false,
      'v1.4.0-rc1': false,
      v2: true,
      'v2.0': true,
      'v2.0.0': false,
    });
    const idx = json(join(reg.root, 'svc', 'index.json'));
    const v1 = idx.manifests.find(
      (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'] === 'v1',
    );
    expect(v1.annotations).toMatchObject({ 'io.hades.tag.mutable': 'true', 'io.hades.tag.version': 'v1.3.0' });
  });

  test('an alias is never frozen by a normal push, and an immutable tag is never moved as an alias', async () => {
    const reg = registry();
    await reg.push('svc', 'v1.0.0', { path: file('a') }, { semverAliases: true });
    await expect(reg.push('svc', 'v1', { path: file('b') })).rejects.toThrow(
      /tag v1 of svc is a moving semver alias \(now v1\.0\.0, sha256:[0-9a-f]+\)/,
    );
    const reg2 = registry();
    const pinned = await reg2.push('svc', 'latest', { path: file('pinned') });
    const r = await reg2.push('svc', '2.0.0', { path: file('b') }, { semverAliases: true });
    expect(r.aliases).toEqual([
      { tag: '2.0', moved: true },
      { tag: '2', moved: true },
      { tag: 'latest', moved: false, reason: `an immutable tag latest exists (${pinned.descriptor.manifestDigest})` },
    ]);
    await expect(reg.push('svc', 'build-7', { path: file('c') }, { semverAliases: true })).rejects.toThrow(
      /semver aliases need a version tag/,
    );
  });
});

describe('integrity', () => {
  test('a corrupted blob makes the open() stream fail, naming registry, artifact, expected and actual digest', async () => {
    const reg = registry();
    const { descriptor: d } = await reg.push('myapp', 'v1', { path: file(Buffer.alloc(600_000, 1)) });
    const blob = join(reg.root, 'myapp', 'blobs', 'sha256', d.layer.digest.slice(7));
    chmodSync(blob, 0o644);
    const data = readFileSync(blob);
    data[500_000] = 2;
    writeFileSync(blob, data);
    const err = await bytes(await reg.open(d)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toBe(
      `registry "store": artifact myapp:v1 (layer "app.bin", blob ${d.layer.digest}): digest mismatch: expected ${d.layer.digest}, actual ${sha(data)} — the content at ${blob} is corrupt`,
    );
    // a truncated blob: size mismatch too
    truncateSync(blob, 1000);
    await expect(bytes(await reg.open(d))).rejects.toThrow(/expected 600000 bytes, got 1000/);
    // a grown blob fails as soon as it passes the expected size
    writeFileSync(blob, Buffer.alloc(700_000, 1));
    await expect(bytes(await reg.open(d))).rejects.toThrow(/digest mismatch: expected sha256:[0-9a-f]+, actual more than 600000 bytes/);
    // a missing blob fails at open()
    rmSync(blob);
    await expect(reg.open(d)).rejects.toThrow(/blob sha256:[0-9a-f]+ is missing/);
    // re-pushing the same content heals the store
    await reg.push('myapp', 'v1', { path: file(Buffer.alloc(600_000, 1)) });
    expect((await bytes(await reg.open(d))).equals(Buffer.alloc(600_000, 1))).toBe(true);
  });

  test('fetchTo writes the verified payload atomically (0600); a corrupt, truncated or missing blob leaves the destination untouched and no temp file', async () => {
    const reg = registry();
    const payload = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { descriptor: d } = await reg.push('myapp', 'v1', { path: file(payload) });
    const out = join(tmp, `out${k++}`);
    mkdirSync(out);
    const dest = join(out, 'app.bin');
    await reg.fetchTo(d, dest);
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(statSync(dest).mode & 0o777).toBe(0o600);
    expect(readdirSync(out)).toEqual(['app.bin']);

    const blob = join(reg.root, 'myapp', 'blobs', 'sha256', d.layer.digest.slice(7));
    chmodSync(blob, 0o644);
    const bad = Buffer.from(payload);
    bad[2_000_000] = 8;
    writeFileSync(blob, bad);
    const err = await reg.fetchTo(d, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(`digest mismatch: expected ${d.layer.digest}, actual ${sha(bad)}`);
    expect(readFileSync(dest).equals(payload)).toBe(true); // the file already there is untouched
    await expect(reg.fetchTo(d, join(out, 'new.bin'))).rejects.toThrow(/digest mismatch/);
    truncateSync(blob, 1000);
    await expect(reg.fetchTo(d, join(out, 'new.bin'))).rejects.toThrow(/expected 3145733 bytes, got 1000/);
    rmSync(blob);
    await expect(reg.fetchTo(d, join(out, 'new.bin'))).rejects.toThrow(/is missing/);
    expect(readdirSync(out)).toEqual(['app.bin']);
  });

  test('a corrupted manifest is detected on resolve', async () => {
    const reg = registry();
    const { descriptor: d } = await reg.push('myapp', 'v1', { path: file('x') });
    const m = join(reg.root, 'myapp', 'blobs', 'sha256', d.manifestDigest.slice(7));
    chmodSync(m, 0o644);
    writeFileSync(m, readFileSync(m, 'utf8').replace('app.bin', 'evil.sh'));
    await expect(reg.resolve('myapp', { tag: 'v1' })).rejects.toThrow(
      new RegExp(`registry "store": artifact myapp:v1 \\(manifest\\): digest mismatch: expected ${d.manifestDigest}`),
    );
  });

  test('a digest that names a layer, not a manifest, is refused without reading big blobs into memory', async () => {
    const reg = registry();
    const small = await reg.push('myapp', 'v1', { path: file('not json') });
    await expect(reg.resolve('myapp', { digest: small.descriptor.layer.digest })).rejects.toThrow(/\(manifest\) is not valid JSON/);
    const big = await reg.push('myapp', 'v2', { path: file(Buffer.alloc(5 * 1024 * 1024)) });
    await expect(reg.resolve('myapp', { digest: big.descriptor.layer.digest })).rejects.toThrow(/5242880 bytes, too large for a manifest/);
  });

  test('a corrupt index.json is reported and never overwritten', async () => {
    const reg = registry();
    await reg.push('myapp', 'v1', { path: file('x') });
    const idx = join(reg.root, 'myapp', 'index.json');
    writeFileSync(idx, '{"schemaVersion":2,"manif');
    await expect(reg.resolve('myapp', { tag: 'v1' })).rejects.toThrow(/index\.json is not valid JSON/);
    await expect(reg.push('myapp', 'v2', { path: file('y') })).rejects.toThrow(/refusing to use or rewrite it/);
    expect(readFileSync(idx, 'utf8')).toBe('{"schemaVersion":2,"manif');
  });
});

describe('names and tags can never reach outside the registry', () => {
  const badNames = ['../x', '/etc', 'a/../../b', 'A', '..', 'a//b', 'a/./b', 'team/blobs', 'x/index.json', ''];
  const badTags = ['../v1', 'v1/..', '', '.', '-x', 'a/b', 'v1\0'];
  test.each(badNames)('name %j is refused by every method', async (name) => {
    const reg = registry();
    const src = file('x');
    const before = readdirSync(tmp).sort();
    await expect(reg.push(name, 'v1', { path: src })).rejects.toBeInstanceOf(UserError);
    await expect(reg.resolve(name, { tag: 'v1' })).rejects.toBeInstanceOf(UserError);
    await expect(reg.exists(name, { tag: 'v1' })).rejects.toBeInstanceOf(UserError);
    await expect(reg.tags(name)).rejects.toBeInstanceOf(UserError);
    await expect(reg.copyTo(registry(), name, 'v1')).rejects.toBeInstanceOf(UserError);
    expect(existsSync(reg.root)).toBe(false);
    expect(readdirSync(tmp).sort()).toEqual(before);
  });
  test.each(badTags)('tag %j is refused by every method', async (tag) => {
    const reg = registry();
    await expect(reg.push('myapp', tag, { path: file('x') })).rejects.toBeInstanceOf(UserError);
    await expect(reg.push('myapp', 'v1', { path: file('x') }, { extraTags: [tag] })).rejects.toBeInstanceOf(UserError);
    await expect(reg.resolve('myapp', { tag })).rejects.toBeInstanceOf(UserError);
    await expect(reg.copyTo(registry(), 'myapp', 'v1', tag)).rejects.toBeInstanceOf(UserError);
    expect(existsSync(reg.root)).toBe(false);
  });
  test('forged descriptors and digests are refused before any path is built', async () => {
    const reg = registry();
    const { descriptor: d } = await reg.push('myapp', 'v1', { path: file('x') });
    await expect(reg.open({ ...d, name: '../myapp' })).rejects.toBeInstanceOf(UserError);
    await expect(reg.open({ ...d, layer: { ...d.layer, digest: 'sha256:../../../etc/passwd' } })).rejects.toBeInstanceOf(UserError);
    await expect(reg.resolve('myapp', { digest: 'sha256:../../index.json' })).rejects.toBeInstanceOf(UserError);
  });
});

describe('copyTo', () => {
  test('filesystem → filesystem: same manifest digest, verified blobs, idempotent, immutable at the destination', async () => {
    const src = registry();
    const dst = registry({}, 'prod');
    const file1 = await src.push('myapp', 'v1', { path: file(Buffer.alloc(300_000, 9)) });
    const dir1 = await src.push('site', 'v1', { path: dirTree() });

    const c = await src.copyTo(dst, 'myapp', 'v1');
    expect(c.unchanged).toBe(false);
    expect(c.descriptor.manifestDigest).toBe(file1.descriptor.manifestDigest);
    expect(c.descriptor.registry).toBe('prod');
    expect((await bytes(await dst.open(await dst.resolve('myapp', { tag: 'v1' })))).equals(Buffer.alloc(300_000, 9))).toBe(true);
    for (const n of readdirSync(join(dst.root, 'myapp', 'blobs', 'sha256')))
      expect(sha(readFileSync(join(dst.root, 'myapp', 'blobs', 'sha256', n)))).toBe(`sha256:${n}`);

    expect((await src.copyTo(dst, 'myapp', 'v1')).unchanged).toBe(true);
    const asProd = await src.copyTo(dst, 'myapp', 'v1', 'prod-2024');
    expect(asProd.descriptor.manifestDigest).toBe(file1.descriptor.manifestDigest);
    expect((await src.copyTo(dst, 'site', 'v1')).descriptor.manifestDigest).toBe(dir1.descriptor.manifestDigest);

    // the destination already has v2 with other content → refused, naming that digest
    const other = await dst.push('myapp', 'v2', { path: file('other') });
    await src.push('myapp', 'v2', { path: file('mine') });
    await expect(src.copyTo(dst, 'myapp', 'v2')).rejects.toThrow(
      `tag v2 of myapp already exists with ${other.descriptor.manifestDigest}; registries are immutable`,
    );
    await expect(src.copyTo(dst, 'myapp', 'v9')).rejects.toBeInstanceOf(ArtifactNotFound);

    // a corrupt source blob never lands in the destination
    const bad = await src.push('myapp', 'v3', { path: file(Buffer.alloc(1000, 3)) });
    const blob = join(src.root, 'myapp', 'blobs', 'sha256', bad.descriptor.layer.digest.slice(7));
    chmodSync(blob, 0o644);
    writeFileSync(blob, Buffer.alloc(1000, 4));
    await expect(src.copyTo(dst, 'myapp', 'v3')).rejects.toThrow(/digest mismatch/);
    expect(existsSync(join(dst.root, 'myapp', 'blobs', 'sha256', bad.descriptor.layer.digest.slice(7)))).toBe(false);
    expect(await dst.exists('myapp', { tag: 'v3' })).toBe(false);
  });

  test('a corrupt small blob opened but not read at once: the error reaches the reader, never as an uncaught event', async () => {
    // The bytes flow as soon as open() returns: a 1000-byte blob is read to its end — and its
    // digest mismatch detected — before this reader starts. That error must wait for the reader.
    const reg = registry();
    const bad = await reg.push('myapp', 'v1', { path: file(Buffer.alloc(1000, 5)) });
    const blob = join(reg.root, 'myapp', 'blobs', 'sha256', bad.descriptor.layer.digest.slice(7));
    chmodSync(blob, 0o644);
    writeFileSync(blob, Buffer.alloc(1000, 6));
    const stream = await reg.open(bad.descriptor);
    await new Promise((r) => setTimeout(r, 100));
    const read = (async () => {
      for await (const _ of stream) void _;
    })();
    await expect(read).rejects.toBeInstanceOf(IntegrityError);
  });

  test('copy with semver aliases, and within one registry (retag)', async () => {
    const reg = registry();
    const a = await reg.push('myapp', 'build-42', { path: file('a') });
    const r = await reg.copyTo(reg, 'myapp', 'build-42', 'v3.1.0', { semverAliases: true });
    expect(r.descriptor.manifestDigest).toBe(a.descriptor.manifestDigest);
    expect((await reg.resolve('myapp', { tag: 'latest' })).manifestDigest).toBe(a.descriptor.manifestDigest);
  });
});

describe('housekeeping', () => {
  test('temp files of killed writers are swept once an hour old; names() lists nested layouts only', async () => {
    const reg = registry();
    await reg.push('team/app', 'v1', { path: file('a') });
    await reg.push('team', 'v1', { path: file('b') });
    const blobs = join(reg.root, 'team', 'app', 'blobs', 'sha256');
    writeFileSync(join(blobs, '.tmp-1-old'), 'partial');
    writeFileSync(join(blobs, '.tmp-1-new'), 'partial');
    const hourAgo = new Date(Date.now() - 3_700_000);
    utimesSync(join(blobs, '.tmp-1-old'), hourAgo, hourAgo);
    await reg.push('team/app', 'v2', { path: file('c') });
    expect(readdirSync(blobs).filter((n) => n.startsWith('.'))).toEqual(['.tmp-1-new']);
    mkdirSync(join(reg.root, 'Not-A-Name'), { recursive: true });
    writeFileSync(join(reg.root, 'Not-A-Name', 'oci-layout'), '{}');
    mkdirSync(join(reg.root, 'empty', 'dir'), { recursive: true });
    expect(await reg.names()).toEqual(['team', 'team/app']);
  });
});
