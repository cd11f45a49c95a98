/**
 * `hades registry pull --offline` from a registry with `verify:` must check signatures like a
 * plan's offline pull does (the ones an online run kept in the cache). The cache is keyed by
 * digest, not by registry: an artifact a hostile publisher pushed to an open (unverified)
 * registry lands in it when any run pulls it from there; reading it offline "from prod" must
 * not skip prod's signature check. Real filesystem registries, real ssh-keygen, the built CLI.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';

describe('registry pull --offline verifies signatures (real ssh-keygen, filesystem registries)', () => {
  let dir: string;
  const cli = (args: string[]) => runCli(args, { cwd: dir, env: { HOME: join(dir, 'home'), SOURCE_DATE_EPOCH: '1700000000' } });
  const digestOf = async (registry: string, ref: string) =>
    JSON.parse((await cli(['registry', 'inspect', registry, ref, '--output', 'json'])).stdout).manifestDigest as string;

  beforeAll(() => {
    dir = project({ 'build/good': 'signed release\n', 'build/evil': 'the attacker\n' });
    mkdirSync(join(dir, 'home'));
    mkdirSync(join(dir, 'keys'));
    mkdirSync(join(dir, 'out'));
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
  open: { type: filesystem, path: ./reg/open }
  prod: { type: filesystem, path: ./reg/prod, sign_with: { key: ./keys/release }, verify: { allowed_signers: ./allowed_signers } }
hosts:
  h: { local: true }
jobs:
  get:
    env: { OPEN: , PROD: }
    actions:
      - pull: { registry: open, name: app, digest: "\${OPEN}", to: "${dir}/out/open.bin" }
      - pull: { registry: prod, name: app, digest: "\${PROD}", to: "${dir}/out/prod.bin" }
plans:
  get:
    env: { OPEN: "\${OPEN}", PROD: "\${PROD}" }
    steps:
      - { name: get, job: get, targets: h }
`,
    );
  });

  it('an unsigned artifact cached from an open registry is refused offline from prod (nothing written); a signed one is delivered', async () => {
    expect((await cli(['registry', 'push', 'open', 'build/evil', 'app:v1'])).code).toBe(0);
    expect((await cli(['registry', 'push', 'prod', 'build/good', 'app:v1'])).code).toBe(0);
    const evil = await digestOf('open', 'app:v1');
    const good = await digestOf('prod', 'app:v1');
    // One online run reads both into the cache (and keeps prod's signatures).
    const online = await runCli(['plan', 'get', '--no-lock', '--output', 'plain', '--cache-dir', join(dir, 'cache')], {
      cwd: dir,
      env: { HOME: join(dir, 'home'), OPEN: evil, PROD: good },
    });
    expect(online.code, online.stdout + online.stderr).toBe(0);

    const ok = await cli([
      'registry',
      'pull',
      '--offline',
      'prod',
      `app@${good}`,
      '-o',
      'pulled/good.bin',
      '--cache-dir',
      join(dir, 'cache'),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(dir, 'pulled', 'good.bin'), 'utf8')).toBe('signed release\n');

    const refused = await cli([
      'registry',
      'pull',
      '--offline',
      'prod',
      `app@${evil}`,
      '-o',
      'pulled/evil.bin',
      '--cache-dir',
      join(dir, 'cache'),
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('signature');
    expect(existsSync(join(dir, 'pulled', 'evil.bin'))).toBe(false);
  });
});
