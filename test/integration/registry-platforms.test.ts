/**
 * Multi-platform artifacts (OCI image index), annotations and config blobs through the Registry
 * API, the same table for the `filesystem` and the `oci` registry (real docker-registry, real
 * oras), plus interop both ways with the real oras CLI: an index Hades wrote is read by `oras
 * manifest fetch` / `oras pull --platform`; an index oras wrote (`oras push` per platform, then
 * `oras manifest push` of the index) is pulled by Hades per platform, byte-identically.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { openFilesystemRegistry } from '../../src/registry/fs/registry.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import { promoteArtifact } from '../../src/registry/index-copy.js';
import { PlatformNeeded, type Registry } from '../../src/registry/types.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function oras(args: string[], cwd?: string): string {
  const r = spawnSync('oras', args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  if (r.status !== 0) throw new Error(`oras ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip)('multi-platform artifacts, annotations and config (filesystem and oci)', () => {
  let reg: TestRegistry;
  let tmp: string;
  let amd: string;
  let arm: string;
  let k = 0;

  beforeAll(async () => {
    reg = await startRegistry();
    tmp = mkdtempSync(join(tmpdir(), 'hades-plat-'));
    mkdirSync(join(tmp, 'amd64'));
    mkdirSync(join(tmp, 'arm64'));
    amd = join(tmp, 'amd64', 'app');
    arm = join(tmp, 'arm64', 'app');
    writeFileSync(amd, 'binary for amd64\n');
    writeFileSync(arm, 'binary for arm64, longer\n');
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  type Kind = { kind: 'filesystem' | 'oci'; open(): Registry };
  const kinds: Kind[] = [
    {
      kind: 'filesystem',
      open: () => {
        const dir = join(tmp, `fs${++k}`);
        const r = openFilesystemRegistry({ name: 'store', type: 'filesystem', path: dir, pos }, { env: EPOCH });
        return r;
      },
    },
    {
      kind: 'oci',
      open: () =>
        openOciRegistry({ name: 'store', type: 'oci', url: `${reg.url}/p${++k}`, plainHttp: true, insecure: false, pos }, { env: EPOCH }),
    },
  ];

  /** oras's arguments to address name:tag in `r` (an OCI layout path, or the remote repository). */
  function orasTarget(r: Registry, name: string, tag: string): string[] {
    if (r.type === 'filesystem') return ['--oci-layout', `${(r as unknown as { layoutOf(n: string): string }).layoutOf(name)}:${tag}`];
    return ['--plain-http', `${(r as unknown as { url: string }).url}/${name}:${tag}`];
  }

  for (const K of kinds) {
    describe(K.kind, () => {
      it('pushes an image index whose entries are the per-platform manifests; the same bytes give the same index digest', async () => {
        const r = K.open();
        const source = {
          platforms: [
            { platform: 'linux/amd64', path: amd },
            { platform: 'linux/arm/v7', path: arm },
          ],
          annotations: { 'org.opencontainers.image.source': 'https://example.com/app.git', 'com.acme.build': '42' },
        };
        const res = await r.pushIndex('app', 'v1', source);
        expect(res.unchanged).toBe(false);
        expect(res.platforms.map((p) => p.platform)).toEqual(['linux/amd64', 'linux/arm/v7']);
        const index = JSON.parse(oras(['manifest', 'fetch', ...orasTarget(r, 'app', 'v1')]));
        expect(sha(oras(['manifest', 'fetch', ...orasTarget(r, 'app', 'v1')]))).toBe(res.indexDigest);
        expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
        expect(index.manifests.map((m: { platform: unknown }) => m.platform)).toEqual([
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm', os: 'linux', variant: 'v7' },
        ]);
        expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual(res.platforms.map((p) => p.descriptor.manifestDigest));
        expect(index.annotations).toEqual({
          'com.acme.build': '42',
          'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
          'org.opencontainers.image.source': 'https://example.com/app.git',
        });
        // Rebuilt (new mtime), same bytes: unchanged, same digest.
        utimesSync(amd, new Date(), new Date(Date.now() + 5000));
        const again = await r.pushIndex('app', 'v1', source);
        expect(again).toMatchObject({ unchanged: true, indexDigest: res.indexDigest });
        // Other bytes under the same tag: refused (immutable).
        writeFileSync(join(tmp, 'other'), 'other\n');
        const e = await rejection(r.pushIndex('app', 'v1', { platforms: [{ platform: 'linux/amd64', path: join(tmp, 'other') }] }));
        expect(e).toBeInstanceOf(UserError);
        expect(e.message).toContain(`already exists with ${res.indexDigest}`);
        const tags = await r.tags('app');
        expect(tags).toEqual([
          expect.objectContaining({
            tag: 'v1',
            manifestDigest: res.indexDigest,
            platforms: ['linux/amd64', 'linux/arm/v7'],
            size: 17 + 25,
          }),
        ]);
      });

      it('resolves an index to the entry of the platform asked for; without one it names the platforms; a missing one fails', async () => {
        const r = K.open();
        const res = await r.pushIndex('app', 'v2', {
          platforms: [
            { platform: 'linux/amd64', path: amd },
            { platform: 'linux/arm64', path: arm },
          ],
        });
        const need = await rejection(r.resolve('app', { tag: 'v2' }));
        expect(need).toBeInstanceOf(PlatformNeeded);
        expect((need as PlatformNeeded).platforms).toEqual(['linux/amd64', 'linux/arm64']);
        const d = await r.resolve('app', { tag: 'v2' }, { platform: 'linux/arm64' });
        expect(d.platform).toBe('linux/arm64');
        expect(d.index).toMatchObject({ digest: res.indexDigest, platforms: ['linux/amd64', 'linux/arm64'] });
        expect(d.manifestDigest).toBe(res.platforms[1]!.descriptor.manifestDigest);
        expect(await bytes(await r.open(d))).toEqual(readFileSync(arm));
        const byDigest = await r.resolve('app', { digest: res.indexDigest }, { platform: 'linux/amd64' });
        expect(await bytes(await r.open(byDigest))).toEqual(readFileSync(amd));
        const missing = await rejection(r.resolve('app', { tag: 'v2' }, { platform: 'linux/s390x' }));
        expect(missing.message).toContain('has no platform linux/s390x; platforms available: linux/amd64, linux/arm64');
        expect(await r.exists('app', { tag: 'v2' })).toBe(true);
      });

      it('stores a config blob with its media type and annotations on the manifest; readConfig verifies it', async () => {
        const r = K.open();
        const config = Buffer.from('{"port":8080}');
        const res = await r.push(
          'svc',
          'v1',
          { path: amd, config: { data: config, mediaType: 'application/vnd.acme.config.v1+json' }, annotations: { 'com.acme.build': '7' } },
          {},
        );
        const m = JSON.parse(oras(['manifest', 'fetch', ...orasTarget(r, 'svc', 'v1')]));
        expect(m.config).toEqual({ mediaType: 'application/vnd.acme.config.v1+json', digest: sha(config), size: config.length });
        expect(m.annotations['com.acme.build']).toBe('7');
        const d = await r.resolve('svc', { tag: 'v1' });
        expect(d.config).toEqual(m.config);
        expect(d.manifestDigest).toBe(res.descriptor.manifestDigest);
        expect(await r.readConfig(d)).toEqual(config);
        // Without config: the OCI empty config.
        const plain = await r.resolve('svc', { tag: 'v1' }).then(async () => (await r.push('svc', 'v0', { path: amd })).descriptor);
        expect(plain.config).toBeUndefined();
        expect((await r.readConfig(plain)).toString()).toBe('{}');
        // Reserved annotation keys are refused.
        const bad = await rejection(r.push('svc', 'v9', { path: amd, annotations: { 'org.opencontainers.image.title': 'x' } }));
        expect(bad).toBeInstanceOf(UserError);
        expect(bad.message).toContain('annotation org.opencontainers.image.title is set by Hades itself');
      });

      it('oras pull --platform reads the index Hades wrote, byte-identically', async () => {
        const r = K.open();
        await r.pushIndex('app', 'v3', {
          platforms: [
            { platform: 'linux/amd64', path: amd },
            { platform: 'linux/arm64', path: arm },
          ],
        });
        for (const [p, src] of [
          ['linux/amd64', amd],
          ['linux/arm64', arm],
        ] as const) {
          const out = join(tmp, `oras-out-${++k}`);
          oras(['pull', '--platform', p, ...orasTarget(r, 'app', 'v3'), '-o', out]);
          expect(readFileSync(join(out, 'app'))).toEqual(readFileSync(src));
        }
      });

      it('pulls an index oras wrote (oras push per platform, oras manifest push of the index) per platform', async () => {
        const r = K.open();
        const work = join(tmp, `oras-src-${++k}`);
        mkdirSync(work);
        writeFileSync(join(work, 'tool'), 'amd64 tool\n');
        const amdDesc = JSON.parse(oras(['push', '--format', 'json', ...orasTarget(r, 'tool', 'amd64'), 'tool'], work));
        writeFileSync(join(work, 'tool'), 'arm64 tool, other bytes\n');
        const armDesc = JSON.parse(oras(['push', '--format', 'json', ...orasTarget(r, 'tool', 'arm64'), 'tool'], work));
        const index = {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            { mediaType: amdDesc.mediaType, digest: amdDesc.digest, size: amdDesc.size, platform: { os: 'linux', architecture: 'amd64' } },
            { mediaType: armDesc.mediaType, digest: armDesc.digest, size: armDesc.size, platform: { os: 'linux', architecture: 'arm64' } },
          ],
        };
        writeFileSync(join(work, 'index.json'), JSON.stringify(index));
        oras(
          ['manifest', 'push', '--media-type', 'application/vnd.oci.image.index.v1+json', ...orasTarget(r, 'tool', 'v1'), 'index.json'],
          work,
        );
        const a = await r.resolve('tool', { tag: 'v1' }, { platform: 'linux/amd64' });
        expect(a.manifestDigest).toBe(amdDesc.digest);
        expect((await bytes(await r.open(a))).toString()).toBe('amd64 tool\n');
        const b = await r.resolve('tool', { tag: 'v1' }, { platform: 'linux/arm64' });
        expect(b.manifestDigest).toBe(armDesc.digest);
        expect((await bytes(await r.open(b))).toString()).toBe('arm64 tool, other bytes\n');
        expect(b.index?.digest).toBe(sha(JSON.stringify(index)));
      });
    });
  }

  it('the oci registry stores exactly the index the filesystem registry stores (same digest)', async () => {
    const fs = kinds[0]!.open();
    const oci = kinds[1]!.open();
    const src = {
      platforms: [
        { platform: 'linux/amd64', path: amd },
        { platform: 'linux/arm64', path: arm },
      ],
      config: { data: Buffer.from('{"a":1}'), mediaType: 'application/vnd.hades.config.v1+json' },
    };
    const a = await fs.pushIndex('app', 'v1', src);
    const b = await oci.pushIndex('app', 'v1', src);
    expect(b.indexDigest).toBe(a.indexDigest);
  });

  for (const [f, t] of [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ] as const)
    it(`promotes an index ${kinds[f]!.kind} → ${kinds[t]!.kind}: same index digest, every platform's bytes; again → unchanged`, async () => {
      const from = kinds[f]!.open();
      const to = kinds[t]!.open();
      const pushed = await from.pushIndex('app', 'v1', {
        platforms: [
          { platform: 'linux/amd64', path: amd },
          { platform: 'linux/arm64', path: arm },
        ],
      });
      const res = await promoteArtifact(from, to, 'app', 'v1', 'prod-1');
      expect(res).toMatchObject({ digest: pushed.indexDigest, unchanged: false });
      expect(res.manifests).toEqual(pushed.platforms.map((p) => p.descriptor.manifestDigest));
      expect(sha(oras(['manifest', 'fetch', ...orasTarget(to, 'app', 'prod-1')]))).toBe(pushed.indexDigest);
      for (const [platform, path] of [
        ['linux/amd64', amd],
        ['linux/arm64', arm],
      ] as const) {
        const d = await to.resolve('app', { tag: 'prod-1' }, { platform });
        expect(d.index?.digest).toBe(pushed.indexDigest);
        expect(await bytes(await to.open(d))).toEqual(readFileSync(path));
      }
      expect((await promoteArtifact(from, to, 'app', 'v1', 'prod-1')).unchanged).toBe(true);
    });

  it('refuses a platform listed twice and a bad platform before anything is written', async () => {
    const r = kinds[0]!.open();
    const twice = await rejection(
      r.pushIndex('app', 'v1', {
        platforms: [
          { platform: 'linux/amd64', path: amd },
          { platform: 'linux/amd64', path: arm },
        ],
      }),
    );
    expect(twice).toBeInstanceOf(UserError);
    expect(twice.message).toContain('platform linux/amd64 is listed twice');
    const bad = await rejection(r.pushIndex('app', 'v1', { platforms: [{ platform: 'amd64', path: amd }] }));
    expect(bad.message).toContain('"amd64" is not a platform');
  });
});
