/**
 * `type: oci` registries through the built CLI, as an operator uses them: `hades registry`
 * (push, ls, inspect, pull, promote), plans with push/pull/promote actions on local hosts (the
 * registry guide's example with an oci prod registry; staging filesystem → prod oci; both oci),
 * a corrupt blob caught during a plan, and `hades doctor`.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonEvents, project, ROOT, runCli } from '../helpers/cli.js';
import { countingProxies, requireLab } from '../lab/helpers.js';
import { startSshd } from '../lab/lab.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe.skipIf(skip)('oci registries through the CLI (real registry)', () => {
  let reg: TestRegistry;
  let n = 0;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });
  /** A fresh repository prefix per test, so tests never see each other's artifacts. */
  const prefix = () => `${reg.url}/cli${n++}`;

  it('hades registry push/ls/inspect/pull/promote against an oci registry; immutability; unknown artifacts', async () => {
    const url = prefix();
    const dir = project({
      'hadesfile.yaml': `registries:\n  prod: { type: oci, url: ${url}, plain_http: true }\n  local: { type: filesystem, path: ./local }\n`,
      'app.bin': 'bytes-1\n',
      'site/index.html': '<h1>site</h1>\n',
    });
    const run = (...args: string[]) => runCli(['registry', ...args], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    const p = await run('push', 'prod', 'app.bin', 'app:v1.2.3', '--semver-aliases', '--output', 'json');
    expect(p.code, p.stderr).toBe(0);
    const pushed = JSON.parse(p.stdout);
    expect(pushed.unchanged).toBe(false);
    expect(pushed.aliases.map((a: { tag: string }) => a.tag)).toEqual(['v1.2', 'v1', 'latest']);
    expect((await run('push', 'prod', 'app.bin', 'app:v1.2.3')).stdout).toMatch(/^unchanged app:v1\.2\.3 = sha256:/);
    writeFileSync(join(dir, 'app.bin'), 'bytes-2\n');
    const clash = await run('push', 'prod', 'app.bin', 'app:v1.2.3');
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(`tag v1.2.3 of app already exists with ${pushed.descriptor.manifestDigest}`);

    expect((await run('push', 'prod', 'site', 'site:v1')).code).toBe(0);
    expect((await run('ls', 'prod')).stdout.trim().split('\n')).toEqual(['app', 'site']);
    const ls = JSON.parse((await run('ls', 'prod', 'app', '--output', 'json')).stdout);
    expect(ls.tags.map((t: { tag: string; mutable: boolean }) => `${t.tag}:${t.mutable}`)).toEqual([
      'latest:true',
      'v1:true',
      'v1.2:true',
      'v1.2.3:false',
    ]);
    const plainLs = (await run('ls', 'prod', 'app')).stdout;
    expect(plainLs).toMatch(/^latest\tsha256:[0-9a-f]{64}\t8\t2023-11-14T22:13:20Z\t\(mutable alias\)$/m);
    const insp = JSON.parse((await run('inspect', 'prod', 'app:v1', '--output', 'json')).stdout);
    expect(insp.manifestDigest).toBe(pushed.descriptor.manifestDigest);
    expect((await run('inspect', 'prod', `app@${pushed.descriptor.manifestDigest}`)).stdout).toContain(
      'payload:       app.bin (application/vnd.oci.image.layer.v1.tar), 8 bytes',
    );

    expect((await run('pull', 'prod', 'app:latest', '--to', 'out/app.bin')).code).toBe(0);
    expect(readFileSync(join(dir, 'out/app.bin'), 'utf8')).toBe('bytes-1\n');
    expect((await run('pull', 'prod', 'site:v1', '--to', 'out/site')).code).toBe(0);
    expect(readFileSync(join(dir, 'out/site/index.html'), 'utf8')).toBe('<h1>site</h1>\n');

    const pr = JSON.parse((await run('promote', 'prod', 'local', 'app:v1.2.3', '--output', 'json')).stdout);
    expect(pr.descriptor.manifestDigest).toBe(pushed.descriptor.manifestDigest);
    expect((await run('promote', 'prod', 'local', 'app:v1.2.3')).stdout).toMatch(/^unchanged/);
    const back = await run('promote', 'local', 'prod', 'app:v1.2.3', '--as', 'release-1');
    expect(back.stdout).toMatch(new RegExp(`^promoted app:release-1 in "prod" = ${pushed.descriptor.manifestDigest}`));

    const missing = await run('inspect', 'prod', 'app:v9');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: artifact app:v9 not found in registry "prod"\n');
    const noName = await run('ls', 'prod', 'nope');
    expect(noName.stderr).toContain('artifact nope not found in registry "prod"');
  });

  /** A 1 MiB random file the build appends to the app: a payload that cannot hide in SSH traffic. */
  const PAD = 1024 * 1024;

  /** `apps`: the inventory lines of app-1..3 and anything else for the top level. */
  function releaseProject(staging: string, prodUrl: string, apps: string) {
    const dir = project({});
    mkdirSync(join(dir, 'build/site'), { recursive: true });
    writeFileSync(join(dir, 'pad.bin'), randomBytes(PAD));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  staging: ${staging.replace('DIR', dir)}
  prod: { type: oci, url: ${prodUrl}, plain_http: true }
hosts:
  build-server: { local: true }
${apps}
targets:
  app-servers: [app-1, app-2, app-3]
jobs:
  build:
    local: true
    actions:
      - run: printf 'myapp %s\\n' "$VERSION" > build/myapp && cat pad.bin >> build/myapp && printf '<h1>%s</h1>\\n' "$VERSION" > build/site/index.html
  publish:
    artifacts:
      app-binary: { path: ./build/myapp }
      site: { path: ./build/site }
    actions:
      - push: { registry: staging, artifact: app-binary, name: myapp, tag: "\${VERSION}" }
      - push: { registry: staging, artifact: site, name: site, tag: "\${VERSION}" }
  promote:
    actions:
      - promote: { from: staging, to: prod, name: myapp, tag: "\${VERSION}" }
      - promote: { from: staging, to: prod, name: site, tag: "\${VERSION}" }
  deploy:
    env:
      VERSION:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: prod, name: myapp, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}/app", mode: 0750 }
      - run: echo "$HADES_ARTIFACT_SHA256" > "${dir}/hosts/$HADES_HOST_NAME/deployed.sha"
      - pull: { registry: prod, name: site, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}/site" }
plans:
  release:
    env: { VERSION: "\${VERSION:-v1.0.0}" }
    steps:
      - { name: build, job: build, targets: build-server }
      - { name: publish, job: publish, targets: build-server }
      - { name: promote, job: promote, targets: build-server }
      - { name: canary, job: deploy, targets: app-servers, limit: 1 }
      - { name: rollout, job: deploy, targets: app-servers, parallelism: 2 }
`,
    );
    return dir;
  }

  it.each([
    ['staging filesystem → prod oci', '{ type: filesystem, path: DIR/registry/staging }'],
    ['staging oci → prod oci', 'STAGING_OCI'],
  ])(
    'plan: build → publish → promote (%s) → canary → rollout; same digest everywhere; a second run sends nothing',
    async (_label, stagingSpec) => {
      // app-1..3 are SSH hosts (one sshd of this test's own), each reached through a
      // byte-counting proxy: what a run sends to a host is measured on the wire.
      const lab = requireLab();
      const apps = ['app-1', 'app-2', 'app-3'];
      const sshd = await startSshd(lab, { name: 'oci-cli' });
      const kh = join(project({}), 'known_hosts');
      const via = await countingProxies(lab, new Map(apps.map((n) => [n, { addr: sshd.host.addr, hostKey: sshd.hostKey }])), kh);
      try {
        const staging = stagingSpec === 'STAGING_OCI' ? `{ type: oci, url: ${prefix()}, plain_http: true }` : stagingSpec;
        const inv = [
          ...apps.map(
            (n) => `  ${n}: { addr: ${via.proxies.get(n)!.listen.host}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }`,
          ),
          `known_hosts: [${kh}]`,
        ].join('\n');
        const dir = releaseProject(staging, prefix(), inv);
        // The hosts write under the project (same machine: /tmp is shared with the sshd).
        chmodSync(dir, 0o755);
        mkdirSync(join(dir, 'hosts'));
        // Owned by the lab user the hosts log in as (a 0777 directory is refused: anyone could redirect the writes).
        execFileSync('chown', [lab.user, join(dir, 'hosts')]);
        mkdirSync(join(dir, 'home'));
        const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
        const r = await runCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
        expect(r.code, r.stdout + r.stderr).toBe(0);
        const built = readFileSync(join(dir, 'build/myapp'));
        expect(built.length).toBe('myapp v1.0.0\n'.length + PAD);
        for (const h of apps) {
          expect(readFileSync(join(dir, 'hosts', h, 'app')).equals(built)).toBe(true);
          expect(statSync(join(dir, 'hosts', h, 'app')).mode & 0o777).toBe(0o750);
          expect(readFileSync(join(dir, 'hosts', h, 'deployed.sha'), 'utf8').trim()).toBe(sha(built));
          expect(readFileSync(join(dir, 'hosts', h, 'site/index.html'), 'utf8')).toBe('<h1>v1.0.0</h1>\n');
        }
        const first = via.sent();
        for (const h of apps) expect(first.get(h)!, h).toBeGreaterThan(PAD); // the count sees the payload go by
        const digest = async (registry: string, name: string) =>
          JSON.parse((await runCli(['registry', 'inspect', registry, `${name}:v1.0.0`, '--output', 'json'], { cwd: dir, env })).stdout)
            .manifestDigest;
        expect(await digest('prod', 'myapp')).toBe(await digest('staging', 'myapp'));
        expect(await digest('prod', 'site')).toBe(await digest('staging', 'site'));
        // the payload was fetched into the cache once, by digest
        expect(readdirSync(join(dir, 'cache/blobs/sha256'))).toContain(sha(built));

        const r2 = await runCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
        expect(r2.code, r2.stdout).toBe(0);
        // On the wire: the second run sent each host its commands only — far less than the payload.
        const second = via.sent();
        for (const h of apps) expect(second.get(h)! - first.get(h)!, h).toBeLessThan(PAD / 8);
        const ev = jsonEvents(r2.stdout).filter((e) => e.type === 'action.end');
        expect(ev.filter((e) => e.kind === 'push' || e.kind === 'promote').map((e) => e.status)).toEqual([
          'unchanged',
          'unchanged',
          'unchanged',
          'unchanged',
        ]);
        // canary: 1 host × 2 pulls, rollout: 3 hosts × 2 pulls
        expect(ev.filter((e) => e.kind === 'pull').map((e) => e.status)).toEqual(Array(8).fill('unchanged'));
      } finally {
        await via.close();
        await sshd.stop();
      }
    },
  );

  it("the registry guide's example with an oci prod registry (publish → canary → rollout), and a tag that never changes", async () => {
    const url = prefix();
    const dir = project({ 'build/myapp': '#!/bin/sh\necho myapp v1.0.0\n' });
    mkdirSync(join(dir, 'opt'));
    const guide = readFileSync(join(ROOT, 'examples/registry-guide.yaml'), 'utf8')
      .replace(
        /registries:\n {2}prod:\n {4}type: filesystem\n {4}path: \/var\/hades\/artifacts\n/,
        `registries:\n  prod:\n    type: oci\n    url: ${url}\n    plain_http: true\n`,
      )
      .replace(/app-1: \{[^}]*\}/, 'app-1: { local: true }')
      .replace(/app-2: \{[^}]*\}/, 'app-2: { local: true }')
      .replaceAll('/opt/myapp', `${dir}/opt/\${HADES_HOST_NAME}`)
      .replace('run: systemctl restart myapp', `run: "${dir}/opt/$HADES_HOST_NAME/app > ${dir}/opt/$HADES_HOST_NAME/started"`);
    expect(guide).toContain('type: oci');
    writeFileSync(join(dir, 'hadesfile.yaml'), guide);
    const r = await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const h of ['app-1', 'app-2']) expect(readFileSync(join(dir, 'opt', h, 'started'), 'utf8')).toBe('myapp v1.0.0\n');

    writeFileSync(join(dir, 'build/myapp'), '#!/bin/sh\necho tampered\n');
    const r2 = await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/tag v1\.0\.0 of myapp already exists with sha256:[0-9a-f]{64}; registries are immutable/);
    expect(r2.stdout).toMatch(/step deploy-canary: not-run/);
  });

  it('a blob corrupted inside the registry fails the pull of a plan, naming registry, expected and actual digest', async () => {
    const url = prefix();
    const dir = project({ 'app.bin': 'good bytes\n', 'out/.keep': '' });
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  prod: { type: oci, url: ${url}, plain_http: true }
hosts:
  h: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: prod, name: app, tag: v1, to: "${dir}/out/app.bin" }
plans:
  deploy:
    steps:
      - { name: deploy, job: deploy, targets: h }
`,
    );
    expect((await runCli(['registry', 'push', 'prod', 'app.bin', 'app:v1'], { cwd: dir })).code).toBe(0);
    writeFileSync(reg.blobFile(`sha256:${sha('good bytes\n')}`), 'evil bytes\n');
    const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`expected sha256:${sha('good bytes\n')}, actual sha256:${sha('evil bytes\n')}`);
    expect(r.stdout).toContain('registry "prod"');
    expect(readdirSync(join(dir, 'out'))).toEqual(['.keep']);
    expect(readdirSync(join(dir, 'cache/blobs/sha256'))).toEqual([]); // no temp file left in the cache either
    // `hades registry pull` refuses it too, and leaves nothing at the destination
    const p = await runCli(['registry', 'pull', 'prod', 'app:v1', '-o', 'out/app.bin'], { cwd: dir });
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(`expected sha256:${sha('good bytes\n')}, actual sha256:${sha('evil bytes\n')}`);
    expect(readdirSync(join(dir, 'out'))).toEqual(['.keep']);
  });

  it('hades doctor reports oras (exit 0); without oras it says how to install it (exit 1), and so does an oci registry command', async () => {
    const ok = await runCli(['doctor']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok\s+oras 1\.\d+\.\d+ \(\/\S+\/oras\)/m);
    expect(ok.stdout).toMatch(/^ok\s+tar /m);
    const json = JSON.parse((await runCli(['doctor', '--output', 'json'])).stdout);
    expect(json.checks.find((c: { name: string }) => c.name === 'oras')).toMatchObject({ ok: true });

    const none = await runCli(['doctor'], { env: { HADES_ORAS: '/nonexistent/oras' } });
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(
      /^missing oras — type: oci registries \(minimum 1\.2\.0\)\n\s+the oras CLI was not found at \/nonexistent\/oras: install oras 1\.2\.0 or newer/m,
    );

    const dir = project({ 'hadesfile.yaml': `registries:\n  prod: { type: oci, url: ${prefix()}, plain_http: true }\n` });
    const r = await runCli(['registry', 'ls', 'prod'], { cwd: dir, env: { HADES_ORAS: '/nonexistent/oras' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the oras CLI was not found at \/nonexistent\/oras: install oras 1\.2\.0 or newer/);
  });
});
