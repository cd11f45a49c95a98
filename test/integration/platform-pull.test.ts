/**
 * Multi-platform artifacts through real plans: a job publishes `platforms:` (one payload per
 * platform) with annotations and a config; SSH lab hosts pull it and each gets ITS platform's
 * bytes. The platform is detected on the host (`uname -s; uname -m`, run like a `run:` command):
 * three hosts get fake platforms (amd64, arm64, s390x) from a `uname` script on the PATH their job runs with (the
 * detection code path is the real one, only the host's uname differs), one host uses this
 * machine's real uname. A host whose platform the index lacks fails naming the platforms.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import { startSshd } from '../lab/lab.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** What this machine's real uname maps to (the test runs on Linux x86_64 or aarch64). */
function nativePlatform(): string {
  const m = execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim();
  return { x86_64: 'linux/amd64', aarch64: 'linux/arm64' }[m] ?? `unmapped ${m}`;
}

describe('multi-platform pull on SSH hosts', () => {
  it('each host gets the payload of its detected platform; platform: overrides; a missing platform fails naming those available', async () => {
    const lab = requireLab();
    const sshd = await startSshd(lab, { name: 'platforms' });
    try {
      const dir = project({});
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, 'dist'));
      writeFileSync(join(dir, 'dist/app-amd64'), 'app for amd64\n');
      writeFileSync(join(dir, 'dist/app-arm64'), 'app for arm64, other bytes\n');
      writeFileSync(join(dir, 'app-config.json'), '{"port": 8080}\n');
      // A fake uname per host name, on the PATH of the `fake` job only.
      mkdirSync(join(dir, 'fakebin'));
      writeFileSync(
        join(dir, 'fakebin/uname'),
        `#!/bin/sh\necho "$HADES_HOST_NAME $1" >> ${dir}/hosts/uname.log\ncase "$1" in -s) echo Linux ;; -m) case "$HADES_HOST_NAME" in arm-1) echo aarch64 ;; amd-1) echo x86_64 ;; *) echo s390x ;; esac ;; esac\n`,
      );
      chmodSync(join(dir, 'fakebin/uname'), 0o755);
      mkdirSync(join(dir, 'hosts'));
      execFileSync('chown', [lab.user, join(dir, 'hosts')]);
      const host = (n: string) =>
        `  ${n}: { addr: ${sshd.host.addr}, port: ${sshd.host.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }`;
      const kh = join(dir, 'known_hosts');
      writeFileSync(kh, `${sshd.knownHostsLine}\n`);
      const deploy = (platform?: string) => `    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: store, name: app, tag: v1, to: "${dir}/hosts/\${HADES_HOST_NAME}/app"${platform ? `, platform: ${platform}` : ''} }
      - run: printf '%s %s %s\\n' "$HADES_ARTIFACT_PLATFORM" "$HADES_ARTIFACT_DIGEST" "$HADES_ARTIFACT_INDEX_DIGEST" > "${dir}/hosts/$HADES_HOST_NAME/env"
`;
      writeFileSync(
        join(dir, 'hadesfile.yaml'),
        `registries:
  store: { type: filesystem, path: ./registry }
hosts:
  builder: { local: true }
${host('arm-1')}
${host('amd-1')}
${host('odd-1')}
${host('native-1')}
${host('pinned-1')}
known_hosts: [${kh}]
jobs:
  publish:
    local: true
    artifacts:
      app:
        platforms:
          linux/amd64: ./dist/app-amd64
          linux/arm64: ./dist/app-arm64
        config: ./app-config.json
    actions:
      - push: { registry: store, artifact: app, name: app, tag: v1, annotations: { com.acme.build: "\${BUILD_ID}" } }
  fake:
    env:
      PATH: ${dir}/fakebin:/usr/bin:/bin
${deploy()}      - pull: { registry: store, name: app, tag: v1, to: "${dir}/hosts/\${HADES_HOST_NAME}/app-again" }
  native:
${deploy()}  pinned:
${deploy('linux/arm64')}plans:
  release:
    env: { BUILD_ID: "b-17" }
    steps:
      - { name: publish, job: publish, targets: builder }
      - { name: fake, job: fake, targets: [arm-1, amd-1] }
      - { name: native, job: native, targets: native-1 }
      - { name: pinned, job: pinned, targets: pinned-1 }
  odd:
    steps:
      - { name: fake, job: fake, targets: odd-1 }
`,
      );
      mkdirSync(join(dir, 'home'));
      const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', SOURCE_DATE_EPOCH: '1700000000' };

      const dry = await runCli(['plan', 'release', '--dry-run'], { cwd: dir, env });
      expect(dry.code, dry.stdout + dry.stderr).toBe(0);
      expect(dry.stdout).toContain('platform chosen per host at run time');
      expect(dry.stdout).toContain('uname -s; uname -m');
      expect(dry.stdout).toContain('if app:v1 is multi-platform: platform linux/arm64');
      expect(dry.stdout).toContain('linux/amd64: ');
      expect(dry.stdout).toContain('annotation com.acme.build=b-17');
      expect(dry.stdout).toContain(`config blob application/vnd.hades.config.v1+json, sha256:${sha('{"port": 8080}\n')}`);

      const r = await runCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const amd = readFileSync(join(dir, 'dist/app-amd64'));
      const arm = readFileSync(join(dir, 'dist/app-arm64'));
      expect(readFileSync(join(dir, 'hosts/arm-1/app'))).toEqual(arm);
      expect(readFileSync(join(dir, 'hosts/arm-1/app-again'))).toEqual(arm);
      expect(readFileSync(join(dir, 'hosts/pinned-1/app'))).toEqual(arm);
      // Detected once per host per run: one `uname -s; uname -m` for arm-1's two pulls.
      expect(readFileSync(join(dir, 'hosts/amd-1/app'))).toEqual(amd);
      expect(readFileSync(join(dir, 'hosts/amd-1/app-again'))).toEqual(amd);
      expect(readFileSync(join(dir, 'hosts/uname.log'), 'utf8').split('\n').filter(Boolean).sort()).toEqual([
        'amd-1 -m',
        'amd-1 -s',
        'arm-1 -m',
        'arm-1 -s',
      ]);
      expect(nativePlatform()).toMatch(/^linux\/(amd64|arm64)$/);
      expect(readFileSync(join(dir, 'hosts/native-1/app'))).toEqual(nativePlatform() === 'linux/amd64' ? amd : arm);

      // HADES_ARTIFACT_DIGEST is the chosen manifest, HADES_ARTIFACT_INDEX_DIGEST the index.
      const inspect = JSON.parse(
        (await runCli(['registry', 'inspect', 'store', 'app:v1', '--output', 'json', '--platform', 'linux/arm64'], { cwd: dir, env }))
          .stdout,
      );
      const [p, digest, index] = readFileSync(join(dir, 'hosts/arm-1/env'), 'utf8').trim().split(' ');
      expect(p).toBe('linux/arm64');
      expect(digest).toBe(inspect.manifestDigest);
      expect(index).toBe(inspect.index.digest);
      expect(inspect.annotations['com.acme.build']).toBe('b-17');
      expect(inspect.config.digest).toBe(`sha256:${sha('{"port": 8080}\n')}`);

      // A replay pins the tag to the index (not one host's entry): every host picks its platform again.
      rmSync(join(dir, 'hosts/arm-1/app'));
      rmSync(join(dir, 'hosts/native-1/app'));
      const replay = await runCli(['plan', 'release', '--replay', 'last', '--steps', 'fake,native', '--cache-dir', join(dir, 'cache')], {
        cwd: dir,
        env,
      });
      expect(replay.code, replay.stdout + replay.stderr).toBe(0);
      expect(readFileSync(join(dir, 'hosts/arm-1/app'))).toEqual(arm);
      expect(readFileSync(join(dir, 'hosts/native-1/app'))).toEqual(nativePlatform() === 'linux/amd64' ? amd : arm);
      expect(readFileSync(join(dir, 'hosts/arm-1/env'), 'utf8').trim()).toBe(
        `linux/arm64 ${inspect.manifestDigest} ${inspect.index.digest}`,
      );

      const odd = await runCli(['plan', 'odd', '--output', 'json', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
      expect(odd.code, odd.stdout + odd.stderr).toBe(1);
      const failed = jsonEvents(odd.stdout).find((e) => e.type === 'action.failed' || e.status === 'failed');
      expect(failed?.message).toMatch(
        /host odd-1 is linux\/s390x: registry "store": artifact app:v1@sha256:[a-f0-9]{64} has no platform linux\/s390x; platforms available: linux\/amd64, linux\/arm64$/,
      );
    } finally {
      await sshd.stop();
    }
  });
});
