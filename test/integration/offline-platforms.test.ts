/**
 * `--offline` with a multi-platform artifact, through the built CLI and a real sshd: an online
 * run publishes an image index (two platforms) and deploys it to two hosts of different
 * platforms (a fake `uname` on their job's PATH, the real detection code path); the audit log
 * pins the INDEX digest. The registry goes away; `--replay last --offline` resolves index +
 * platform from the cache and gives each host the same bytes. A platform no online run
 * resolved is said to be missing from the cache.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import { startSshd, type ExtraSshd } from '../lab/lab.js';

let sshd: ExtraSshd;
beforeAll(async () => {
  sshd = await startSshd(requireLab(), { name: 'offline-plat' });
});
afterAll(async () => {
  await sshd?.stop();
});

describe('--offline with a multi-platform artifact', () => {
  it('online deploy pins the index; registry gone: --replay last --offline gives each host its platform’s bytes from the cache', async () => {
    const lab = requireLab();
    const dir = project({});
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist/app-amd64'), 'app for amd64\n');
    writeFileSync(join(dir, 'dist/app-arm64'), 'app for arm64, other bytes\n');
    mkdirSync(join(dir, 'fakebin'));
    writeFileSync(
      join(dir, 'fakebin/uname'),
      '#!/bin/sh\ncase "$1" in -s) echo Linux ;; -m) case "$HADES_HOST_NAME" in arm-1) echo aarch64 ;; *) echo x86_64 ;; esac ;; esac\n',
    );
    chmodSync(join(dir, 'fakebin/uname'), 0o755);
    mkdirSync(join(dir, 'hosts'));
    execFileSync('chown', [lab.user, join(dir, 'hosts')]);
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, `${sshd.knownHostsLine}\n`);
    const host = (n: string) =>
      `  ${n}: { addr: ${sshd.host.addr}, port: ${sshd.host.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }`;
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  store: { type: filesystem, path: ./registry }
hosts:
  builder: { local: true }
${host('arm-1')}
${host('amd-1')}
known_hosts: [${kh}]
jobs:
  publish:
    local: true
    artifacts:
      app:
        platforms:
          linux/amd64: ./dist/app-amd64
          linux/arm64: ./dist/app-arm64
    actions:
      - push: { registry: store, artifact: app, name: app, tag: v1 }
  deploy:
    env:
      PATH: ${dir}/fakebin:/usr/bin:/bin
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: store, name: app, tag: v1, to: "${dir}/hosts/\${HADES_HOST_NAME}/app" }
plans:
  release:
    steps:
      - { name: publish, job: publish, targets: builder }
      - { name: deploy, job: deploy, targets: [arm-1, amd-1] }
  arm-only:
    steps:
      - { name: deploy, job: deploy, targets: arm-1 }
`,
    );
    mkdirSync(join(dir, 'home'));
    const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', SOURCE_DATE_EPOCH: '1700000000', XDG_CACHE_HOME: join(dir, 'xdg') };
    const cli = (...args: string[]) => runCli(args, { cwd: dir, env });
    const amd = readFileSync(join(dir, 'dist/app-amd64'));
    const arm = readFileSync(join(dir, 'dist/app-arm64'));
    const wipe = () => {
      for (const h of ['arm-1', 'amd-1']) rmSync(join(dir, 'hosts', h), { recursive: true, force: true });
    };

    const online = await cli('plan', 'release', '-o', 'plain');
    expect(online.code, online.stdout + online.stderr).toBe(0);
    expect(readFileSync(join(dir, 'hosts/arm-1/app'))).toEqual(arm);
    expect(readFileSync(join(dir, 'hosts/amd-1/app'))).toEqual(amd);
    const indexDigest = JSON.parse((await cli('registry', 'inspect', 'store', 'app:v1', '--output', 'json')).stdout).indexDigest as string;
    expect(indexDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

    renameSync(join(dir, 'registry'), join(dir, 'registry.gone'));
    wipe();
    const dry = await cli('plan', 'release', '--replay', 'last', '--steps', 'deploy', '--offline', '--dry-run');
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(indexDigest);
    const off = await cli('plan', 'release', '--replay', 'last', '--steps', 'deploy', '--offline', '-o', 'plain');
    expect(off.code, off.stdout + off.stderr).toBe(0);
    expect(readFileSync(join(dir, 'hosts/arm-1/app'))).toEqual(arm);
    expect(readFileSync(join(dir, 'hosts/amd-1/app'))).toEqual(amd);

    // Online, the same replay fails on the registry that is gone: the bytes above came from the cache.
    wipe();
    const on = await cli('plan', 'release', '--replay', 'last', '--steps', 'deploy', '-o', 'plain');
    expect(on.code, on.stdout + on.stderr).toBe(1);
    expect(existsSync(join(dir, 'hosts/arm-1/app'))).toBe(false);
  });

  it('a platform no online run resolved: --offline says its manifest is not in the cache, naming the cached ones', async () => {
    const lab = requireLab();
    const dir = project({});
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist/app-amd64'), 'amd64\n');
    writeFileSync(join(dir, 'dist/app-arm64'), 'arm64\n');
    mkdirSync(join(dir, 'fakebin'));
    writeFileSync(join(dir, 'fakebin/uname'), `#!/bin/sh\ncase "$1" in -s) echo Linux ;; -m) cat ${join(dir, 'machine')} ;; esac\n`);
    chmodSync(join(dir, 'fakebin/uname'), 0o755);
    writeFileSync(join(dir, 'machine'), 'x86_64\n');
    mkdirSync(join(dir, 'hosts'));
    execFileSync('chown', [lab.user, join(dir, 'hosts')]);
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, `${sshd.knownHostsLine}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  store: { type: filesystem, path: ./registry }
hosts:
  builder: { local: true }
  web-1: { addr: ${sshd.host.addr}, port: ${sshd.host.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }
known_hosts: [${kh}]
jobs:
  publish:
    local: true
    artifacts:
      app: { platforms: { linux/amd64: ./dist/app-amd64, linux/arm64: ./dist/app-arm64 } }
    actions:
      - push: { registry: store, artifact: app, name: app, tag: v1 }
  deploy:
    env:
      PATH: ${dir}/fakebin:/usr/bin:/bin
    actions:
      - pull: { registry: store, name: app, tag: v1, to: "${dir}/hosts/app" }
plans:
  release:
    steps:
      - { name: publish, job: publish, targets: builder }
      - { name: deploy, job: deploy, targets: web-1 }
`,
    );
    mkdirSync(join(dir, 'home'));
    const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', SOURCE_DATE_EPOCH: '1700000000', XDG_CACHE_HOME: join(dir, 'xdg') };
    const cli = (...args: string[]) => runCli(args, { cwd: dir, env });
    const online = await cli('plan', 'release', '-o', 'plain');
    expect(online.code, online.stdout + online.stderr).toBe(0);
    renameSync(join(dir, 'registry'), join(dir, 'registry.gone'));
    writeFileSync(join(dir, 'machine'), 'aarch64\n'); // the host is now arm64: never resolved online
    const off = await cli('plan', 'release', '--replay', 'last', '--steps', 'deploy', '--offline', '-o', 'plain');
    expect(off.code, off.stdout + off.stderr).toBe(1);
    expect(off.stdout + off.stderr).toMatch(
      /--offline: the linux\/arm64 manifest of app@sha256:[0-9a-f]{64} is not in the cache \S+ \(cached platforms: linux\/amd64\)/,
    );
  });
});
