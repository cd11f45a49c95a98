/**
 * `hades registry push --platform/--annotation/--config`, `pull --platform/--all-platforms/
 * --config-only`, `ls` and `inspect` of multi-platform artifacts — the same table for a
 * filesystem and an oci registry (real docker-registry, real oras) — and the usage errors.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function machine(): string {
  const m = execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim();
  return { x86_64: 'linux/amd64', aarch64: 'linux/arm64' }[m] ?? m;
}

describe.skipIf(skip)('registry CLI: platforms, annotations, config', () => {
  let reg: TestRegistry;
  let n = 0;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  for (const kind of ['filesystem', 'oci'] as const) {
    it(`${kind}: push --platform, ls, inspect, pull --platform / --all-platforms / default, --config-only`, async () => {
      const regLine = kind === 'oci' ? `{ type: oci, url: ${reg.url}/clip${n++}, plain_http: true }` : '{ type: filesystem, path: ./reg }';
      const dir = project({
        'hadesfile.yaml': `registries:\n  store: ${regLine}\n`,
        'dist/amd64/app': 'amd64 bytes\n',
        'dist/arm64/app': 'arm64 bytes, longer\n',
        'cfg.json': '{"replicas":3}',
      });
      const run = (...args: string[]) => runCli(['registry', ...args], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000' } });
      const p = await run(
        'push',
        'store',
        '--platform',
        'linux/amd64=dist/amd64/app',
        '--platform',
        'linux/arm64=dist/arm64/app',
        '--annotation',
        'org.opencontainers.image.source=https://example.com/app',
        '--config',
        'cfg.json',
        'app:v1',
        '--output',
        'json',
      );
      expect(p.code, p.stderr).toBe(0);
      const pushed = JSON.parse(p.stdout);
      expect(pushed.platforms.map((x: { platform: string }) => x.platform)).toEqual(['linux/amd64', 'linux/arm64']);
      const again = await run(
        'push',
        'store',
        '--platform',
        'linux/amd64=dist/amd64/app',
        '--platform',
        'linux/arm64=dist/arm64/app',
        '--annotation',
        'org.opencontainers.image.source=https://example.com/app',
        '--config',
        'cfg.json',
        'app:v1',
      );
      expect(again.stdout).toMatch(new RegExp(`^unchanged app:v1 = ${pushed.indexDigest} \\(linux/amd64, linux/arm64; `));

      const ls = await run('ls', 'store', 'app');
      expect(ls.stdout).toMatch(
        new RegExp(`^v1\\t${pushed.indexDigest}\\t${12 + 20}\\t2023-11-14T22:13:20Z\\t\\(linux/amd64, linux/arm64\\)\\n$`),
      );

      const inspect = await run('inspect', 'store', 'app:v1');
      expect(inspect.code, inspect.stderr).toBe(0);
      expect(inspect.stdout).toContain(
        `app:v1 in registry "store": multi-platform (OCI image index)\n  index:         ${pushed.indexDigest}\n`,
      );
      expect(inspect.stdout).toContain('  org.opencontainers.image.source: https://example.com/app');
      expect(inspect.stdout).toContain('  platform:      linux/arm64');
      expect(inspect.stdout).toContain(`  config:        application/vnd.hades.config.v1+json, 14 bytes, ${sha('{"replicas":3}')}`);

      const one = await run('pull', 'store', 'app:v1', '--platform', 'linux/arm64', '-o', 'out/one');
      expect(one.code, one.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out/one'), 'utf8')).toBe('arm64 bytes, longer\n');
      const both = await run('pull', 'store', 'app:v1', '--platform', 'linux/arm64', '--platform', 'linux/amd64', '-o', 'out/both');
      expect(both.code, both.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out/both/linux/arm64/app'), 'utf8')).toBe('arm64 bytes, longer\n');
      expect(readFileSync(join(dir, 'out/both/linux/amd64/app'), 'utf8')).toBe('amd64 bytes\n');
      const all = await run('pull', 'store', 'app:v1', '--all-platforms', '-o', 'out/all');
      expect(all.code, all.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out/all/linux/amd64/app'), 'utf8')).toBe('amd64 bytes\n');
      expect(readFileSync(join(dir, 'out/all/linux/arm64/app'), 'utf8')).toBe('arm64 bytes, longer\n');
      // No --platform: this machine's (detected with uname, as on hosts).
      const mine = await run('pull', 'store', 'app:v1', '-o', 'out/mine');
      expect(mine.code, mine.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out/mine'), 'utf8')).toBe(machine() === 'linux/arm64' ? 'arm64 bytes, longer\n' : 'amd64 bytes\n');
      const cfg = await run('pull', 'store', 'app:v1', '--platform', 'linux/amd64', '--config-only', '-o', 'out/cfg.json');
      expect(cfg.code, cfg.stderr).toBe(0);
      expect(readFileSync(join(dir, 'out/cfg.json'), 'utf8')).toBe('{"replicas":3}');

      const missing = await run('pull', 'store', 'app:v1', '--platform', 'linux/s390x', '-o', 'out/x');
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('has no platform linux/s390x; platforms available: linux/amd64, linux/arm64');
    });
  }

  it('usage errors exit 2: path and --platform together, bad platform, a platform twice, reserved annotation, config not JSON', async () => {
    const dir = project({ 'hadesfile.yaml': 'registries:\n  store: { type: filesystem, path: ./reg }\n', a: 'a\n', 'bad.json': 'nope' });
    const run = (...args: string[]) => runCli(['registry', ...args], { cwd: dir });
    const mixed = await run('push', 'store', 'a', 'app:v1', '--platform', 'linux/amd64=a');
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('registry push takes a path or --platform, not both');
    const bad = await run('push', 'store', '--platform', 'amd64=a', 'app:v1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"amd64" is not a platform');
    const twice = await run('push', 'store', '--platform', 'linux/amd64=a', '--platform', 'linux/amd64=a', 'app:v1');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('platform linux/amd64 is listed twice');
    const reserved = await run('push', 'store', 'a', 'app:v1', '--annotation', 'org.opencontainers.image.created=2020-01-01T00:00:00Z');
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain('annotation org.opencontainers.image.created is set by Hades itself');
    const notJson = await run('push', 'store', 'a', 'app:v1', '--config', 'bad.json');
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('is not JSON');
    expect(`${mixed.stderr}${bad.stderr}${twice.stderr}${reserved.stderr}${notJson.stderr}`).not.toMatch(/\n\s+at /); // no stack trace
  });
});
