/**
 * Multi-platform artifacts (OCI image index) promoted between registries and tagged — real
 * docker-registry, real oras, real ssh-keygen: `hades registry promote` staging (filesystem) →
 * prod (oci), then the hadesfile's `promote` action prod (oci) → prod2 (filesystem). The index
 * digest is the same everywhere, `oras manifest fetch` reads it, a pull of each platform from
 * the last registry gives the pushed bytes, and each platform's signature verifies there.
 * `hades registry tag` of an index, for the filesystem and the oci registry.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFilesystemRegistry } from '../../src/registry/fs/registry.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import { verifyArtifact } from '../../src/registry/trust.js';
import type { Registry } from '../../src/registry/types.js';
import { project, runCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function oras(args: string[]): string {
  const r = spawnSync('oras', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`oras ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip)('multi-platform artifacts: promote and tag (filesystem and oci)', () => {
  let reg: TestRegistry;
  let dir: string;
  let url: string;
  const cli = (...args: string[]) =>
    runCli(args, { cwd: dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', SOURCE_DATE_EPOCH: '1700000000' } });

  beforeAll(async () => {
    reg = await startRegistry();
    url = `${reg.url}/idx`;
    dir = project({ 'dist/amd64/app': 'amd64 bytes\n', 'dist/arm64/app': 'arm64 bytes, longer\n' });
    mkdirSync(join(dir, 'keys'));
    mkdirSync(join(dir, 'home'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'release', '-f', join(dir, 'keys', 'release')]);
    const pub = readFileSync(join(dir, 'keys', 'release.pub'), 'utf8')
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(' ');
    writeFileSync(join(dir, 'allowed_signers'), `release@example.com ${pub}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  staging: { type: filesystem, path: ./reg/staging, sign_with: { key: ./keys/release } }
  prod: { type: oci, url: ${url}, plain_http: true }
  prod2: { type: filesystem, path: ./reg/prod2 }
  tagfs: { type: filesystem, path: ./reg/tagfs }
  tagoci: { type: oci, url: ${reg.url}/idxtag, plain_http: true }
hosts:
  build: { local: true }
jobs:
  promote:
    actions:
      - promote: { from: prod, to: prod2, name: app, tag: v1, as_tag: release-1 }
plans:
  promote:
    steps:
      - { name: promote, job: promote, targets: build }
`,
    );
  });
  afterAll(async () => {
    await reg?.stop();
  });

  const push = async (registry: string, tag: string) => {
    const p = await cli(
      'registry',
      'push',
      registry,
      '--platform',
      'linux/amd64=dist/amd64/app',
      '--platform',
      'linux/arm64=dist/arm64/app',
      `app:${tag}`,
      '--output',
      'json',
    );
    expect(p.code, p.stderr).toBe(0);
    return JSON.parse(p.stdout) as { indexDigest: string; platforms: { platform: string; descriptor: { manifestDigest: string } }[] };
  };

  it('promotes an index fs → oci (registry promote) → fs (promote action): same index digest, bytes per platform, signatures verify', async () => {
    const pushed = await push('staging', 'v1');
    const children = pushed.platforms.map((p) => p.descriptor.manifestDigest);
    expect(children).toHaveLength(2);

    const toProd = await cli('registry', 'promote', 'staging', 'prod', 'app:v1');
    expect(toProd.code, toProd.stderr).toBe(0);
    expect(toProd.stdout).toBe(`promoted app:v1 in "prod" = ${pushed.indexDigest} (linux/amd64, linux/arm64) (+ 2 signature(s))\n`);
    // What the oci registry holds is the same index, byte for byte (oras reads it).
    const fetched = oras(['manifest', 'fetch', '--plain-http', `${url}/app:v1`]);
    expect(sha(fetched)).toBe(pushed.indexDigest);
    expect(JSON.parse(fetched).manifests.map((m: { digest: string }) => m.digest)).toEqual(children);
    const again = await cli('registry', 'promote', 'staging', 'prod', 'app:v1');
    expect(again.stdout).toBe(`unchanged app:v1 in "prod" = ${pushed.indexDigest} (linux/amd64, linux/arm64)\n`);

    const run = await cli('plan', 'promote');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`app:release-1 = ${pushed.indexDigest} (linux/amd64, linux/arm64); 2 signature(s) copied`);
    // A replay pins the index digest the run recorded: the tag still names it, so the copy goes ahead (unchanged).
    const dryReplay = await cli('plan', 'promote', '--replay', 'last', '--dry-run');
    expect(dryReplay.stdout).toContain(`only if app:v1 in "prod" is still ${pushed.indexDigest}`);
    const replay = await cli('plan', 'promote', '--replay', 'last', '-o', 'plain');
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.stdout + replay.stderr).toMatch(/unchanged/);

    const ls = await cli('registry', 'ls', 'prod2', 'app');
    expect(ls.stdout).toMatch(
      new RegExp(`^release-1\\t${pushed.indexDigest}\\t${12 + 20}\\t2023-11-14T22:13:20Z\\t\\(linux/amd64, linux/arm64\\)\\n$`),
    );
    for (const [platform, bytes] of [
      ['linux/amd64', 'amd64 bytes\n'],
      ['linux/arm64', 'arm64 bytes, longer\n'],
    ] as const) {
      const out = `out/${platform.replace('/', '-')}`;
      const p = await cli('registry', 'pull', 'prod2', 'app:release-1', '--platform', platform, '-o', out);
      expect(p.code, p.stderr).toBe(0);
      expect(readFileSync(join(dir, out), 'utf8')).toBe(bytes);
    }
    const prod2 = openFilesystemRegistry({ name: 'prod2', type: 'filesystem', path: join(dir, 'reg/prod2'), pos });
    const prod = openOciRegistry({ name: 'prod', type: 'oci', url, plainHttp: true, insecure: false, pos });
    for (const r of [prod, prod2] as Registry[])
      for (const d of children) {
        const v = await verifyArtifact(r, 'app', d, join(dir, 'allowed_signers'));
        expect(v, `${r.name} ${d}`).toMatchObject({ ok: true, principal: 'release@example.com' });
      }

    // Tags stay immutable: another index under the same tag is refused, naming the digest there.
    writeFileSync(join(dir, 'dist/amd64/app'), 'amd64 bytes v2\n');
    const other = await push('staging', 'v2');
    writeFileSync(join(dir, 'dist/amd64/app'), 'amd64 bytes\n');
    const clash = await cli('registry', 'promote', 'staging', 'prod2', 'app:v2', '--as', 'release-1');
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(`tag release-1 of app already exists with ${pushed.indexDigest}; registries are immutable`);
    expect(other.indexDigest).not.toBe(pushed.indexDigest);
  });

  for (const registry of ['tagfs', 'tagoci']) {
    it(`${registry}: registry tag of a multi-platform artifact tags its index; the new tag pulls each platform`, async () => {
      const pushed = await push(registry, 'build-7');
      const t = await cli('registry', 'tag', registry, 'app:build-7', 'v7.0.0', 'release-7');
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout).toBe(`tagged app:build-7 = ${pushed.indexDigest} (linux/amd64, linux/arm64) as v7.0.0, release-7\n`);
      const again = await cli('registry', 'tag', registry, 'app:build-7', 'v7.0.0');
      expect(again.stdout).toBe(`unchanged v7.0.0 (already ${pushed.indexDigest})\n`);
      const ls = await cli('registry', 'ls', registry, 'app');
      for (const tag of ['build-7', 'release-7', 'v7.0.0'])
        expect(ls.stdout).toMatch(new RegExp(`^${tag}\\t${pushed.indexDigest}\\t`, 'm'));
      const p = await cli('registry', 'pull', registry, 'app:release-7', '--platform', 'linux/arm64', '-o', `out/${registry}`);
      expect(p.code, p.stderr).toBe(0);
      expect(readFileSync(join(dir, `out/${registry}`), 'utf8')).toBe('arm64 bytes, longer\n');
    });
  }
});
