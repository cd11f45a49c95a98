/**
 * push / pull / promote through real plans (local hosts) and the `hades registry` CLI,
 * against real filesystem registries: the guide's workflow, promotion staging → prod,
 * idempotence, immutability, directory artifacts, malicious archives.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeTarHeader } from '../../src/registry/archive.js';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { countingProxies, requireLab } from '../lab/helpers.js';
import { startSshd } from '../lab/lab.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A 1 MiB random file every build appends to the app: a payload that cannot hide in SSH traffic. */
const PAD = 1024 * 1024;

/** `apps`: the inventory lines of app-1..3 (default: local hosts) and anything else for the top level. */
function releaseProject(apps?: (dir: string) => string) {
  const dir = project({});
  mkdirSync(join(dir, 'build/site'), { recursive: true });
  writeFileSync(join(dir, 'pad.bin'), randomBytes(PAD));
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `registries:
  staging: { type: filesystem, path: ./registry/staging }
  prod: { type: filesystem, path: ./registry/prod }
hosts:
  build-server: { local: true }
${apps ? apps(dir) : '  app-1: { local: true }\n  app-2: { local: true }\n  app-3: { local: true }'}
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
  deploy:
    env: { VERSION: v1.0.0 }
    steps:
      - { name: canary, job: deploy, targets: app-servers, limit: 1 }
`,
  );
  return dir;
}

describe('registry workflow through plans', () => {
  it('build → publish → promote staging→prod → canary → rollout; hosts get the built bytes; a second run sends no bytes', async () => {
    // app-1..3 are SSH hosts (one sshd of this test's own), each reached through a
    // byte-counting proxy: what a run sends to a host is measured on the wire.
    const lab = requireLab();
    const apps = ['app-1', 'app-2', 'app-3'];
    const sshd = await startSshd(lab, { name: 'reg-actions' });
    const kh = join(project({}), 'known_hosts');
    const via = await countingProxies(lab, new Map(apps.map((n) => [n, { addr: sshd.host.addr, hostKey: sshd.hostKey }])), kh);
    try {
      const dir = releaseProject(() =>
        [
          ...apps.map(
            (n) => `  ${n}: { addr: ${via.proxies.get(n)!.listen.host}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }`,
          ),
          `known_hosts: [${kh}]`,
        ].join('\n'),
      );
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
        const got = readFileSync(join(dir, 'hosts', h, 'app'));
        expect(got.equals(built)).toBe(true);
        expect(statSync(join(dir, 'hosts', h, 'app')).mode & 0o777).toBe(0o750);
        expect(readFileSync(join(dir, 'hosts', h, 'deployed.sha'), 'utf8').trim()).toBe(sha(built)); // digest on hosts = digest built
        expect(readFileSync(join(dir, 'hosts', h, 'site/index.html'), 'utf8')).toBe('<h1>v1.0.0</h1>\n');
      }
      const first = via.sent();
      for (const h of apps) expect(first.get(h)!, h).toBeGreaterThan(PAD); // the count sees the payload go by
      // promotion kept the digest
      const ls = async (reg: string) =>
        JSON.parse((await runCli(['registry', 'ls', reg, 'myapp', '--output', 'json'], { cwd: dir, env })).stdout).tags[0].manifestDigest;
      expect(await ls('prod')).toBe(await ls('staging'));

      const before = statSync(join(dir, 'hosts/app-2/app'));
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
      const after = statSync(join(dir, 'hosts/app-2/app'));
      expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    } finally {
      await via.close();
      await sshd.stop();
    }
  });

  it('a tag never changes: publishing other bytes under v1.0.0 fails the run naming the existing digest', async () => {
    const dir = releaseProject();
    expect((await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir })).code).toBe(0);
    const sabotaged = readFileSync(join(dir, 'hadesfile.yaml'), 'utf8').replace(`printf 'myapp %s\\n'`, `printf 'other %s\\n'`);
    writeFileSync(join(dir, 'hadesfile.yaml'), sabotaged);
    const r = await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/tag v1\.0\.0 of myapp already exists with sha256:[0-9a-f]{64}/);
    expect(r.stdout).toMatch(/step canary: not-run/);
  });

  it('a corrupted blob in the registry fails the pull naming registry, artifact, expected and actual digest', async () => {
    const dir = releaseProject();
    expect((await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'c1')], { cwd: dir })).code).toBe(0);
    const payload = sha(readFileSync(join(dir, 'build/myapp')));
    const blob = join(dir, 'registry/prod/myapp/blobs/sha256', payload);
    writeFileSync(blob, 'tampered!!\n');
    // Hosts that already hold the payload (sha256 checked on the host) need no registry read:
    const noop = await runCli(['plan', 'deploy', '--output', 'json', '--cache-dir', join(dir, 'c2')], { cwd: dir });
    expect(noop.code, noop.stdout).toBe(0);
    expect(
      jsonEvents(noop.stdout)
        .filter((e) => e.type === 'action.end' && e.kind === 'pull')
        .map((e) => e.status),
    ).toEqual(['unchanged', 'unchanged']); // canary: 1 host × 2 pulls
    // ...a host that needs the bytes gets them only verified, so this one fails:
    rmSync(join(dir, 'hosts/app-1/app'));
    const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'c3')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(existsSync(join(dir, 'hosts/app-1/app'))).toBe(false);
    expect(r.stdout).toContain(`sha256:${payload}`);
    expect(r.stdout).toContain(`sha256:${sha('tampered!!\n')}`);
    expect(r.stdout).toMatch(/prod/);
  });
});

describe("the seed's promotion pattern", () => {
  it('pull to a path on the orchestrator in a local job, then push it to prod: same bytes, same digest', async () => {
    const dir = project({ 'app.bin': 'promote-me\n' });
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  staging: { type: filesystem, path: ./staging }
  prod: { type: filesystem, path: ./prod }
jobs:
  publish:
    artifacts: { app: { path: ./app.bin } }
    actions:
      - push: { registry: staging, artifact: app, name: myapp, tag: "\${VERSION}" }
  promote:
    local: true
    artifacts:
      myapp: { path: ${dir}/tmp/artifact }
    actions:
      - mkdir: { path: ${dir}/tmp }
      - pull: { registry: staging, name: myapp, tag: "\${VERSION}", to: ${dir}/tmp/artifact }
      - push: { registry: prod, artifact: myapp, name: myapp, tag: "\${VERSION}" }
plans:
  release:
    env: { VERSION: v2.0.0 }
    steps:
      - { name: publish, job: publish, targets: localhost }
      - { name: promote, job: promote, targets: localhost }
`,
    );
    const r = await runCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const layer = async (reg: string) =>
      JSON.parse((await runCli(['registry', 'inspect', reg, 'myapp:v2.0.0', '--output', 'json'], { cwd: dir })).stdout).layer.digest;
    expect(await layer('prod')).toBe(await layer('staging'));
    expect(await layer('prod')).toBe(`sha256:${sha('promote-me\n')}`);
  });
});

describe('malicious archives', () => {
  function tarWith(entries: { name: string; type?: 'file' | 'symlink'; linkname?: string; body?: string }[]): Buffer {
    const parts: Buffer[] = [];
    for (const e of entries) {
      const body = Buffer.from(e.body ?? '');
      parts.push(
        encodeTarHeader({
          path: e.name,
          type: e.type ?? 'file',
          size: e.type === 'symlink' ? 0 : body.length,
          mode: 0o644,
          mtime: 0,
          ...(e.linkname ? { linkname: e.linkname } : {}),
        } as never),
      );
      if (e.type !== 'symlink' && body.length) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    parts.push(Buffer.alloc(1024));
    return Buffer.concat(parts);
  }

  it.each([
    ['../escape.txt', [{ name: '../escape.txt', body: 'x' }]],
    ['absolute path', [{ name: '/tmp/hades-abs-escape.txt', body: 'x' }]],
    [
      'symlink out',
      [
        { name: 'link', type: 'symlink' as const, linkname: '/etc' },
        { name: 'link/passwd', body: 'x' },
      ],
    ],
  ])('extract refuses %s before anything is written on the host', async (_label, entries) => {
    const dir = project({});
    writeFileSync(join(dir, 'evil.tar'), tarWith(entries));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  h: { local: true }
jobs:
  publish:
    artifacts: { evil: { path: ./evil.tar } }
    actions:
      - push: { registry: r, artifact: evil, name: evil, tag: v1 }
  deploy:
    actions:
      - pull: { registry: r, name: evil, tag: v1, to: "${dir}/out/evil", extract: true }
plans:
  p:
    steps:
      - { name: publish, job: publish, targets: localhost }
      - { name: deploy, job: deploy, targets: h }
`,
    );
    mkdirSync(join(dir, 'out'));
    const r = await runCli(['plan', 'p', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('refusing to extract');
    expect(r.stdout).toContain('nothing was written on the host');
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
    expect(existsSync('/tmp/hades-abs-escape.txt')).toBe(false);
  });
});

describe('hades registry CLI', () => {
  it('push, ls, inspect, pull, promote; json output; immutability', async () => {
    const dir = project({
      'hadesfile.yaml': 'registries:\n  a: { type: filesystem, path: ./a }\n  b: { type: filesystem, path: ./b }\n',
      'app.bin': 'bytes-1\n',
    });
    const run = (...args: string[]) => runCli(['registry', ...args], { cwd: dir });
    const p = await run('push', 'a', 'app.bin', 'app:v1.2.3', '--output', 'json', '--semver-aliases');
    expect(p.code, p.stderr).toBe(0);
    const pushed = JSON.parse(p.stdout);
    expect(pushed.unchanged).toBe(false);
    expect((await run('push', 'a', 'app.bin', 'app:v1.2.3')).stdout).toMatch(/^unchanged app:v1\.2\.3 = sha256:/);
    writeFileSync(join(dir, 'app.bin'), 'bytes-2\n');
    const clash = await run('push', 'a', 'app.bin', 'app:v1.2.3');
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain(pushed.descriptor.manifestDigest);

    const ls = JSON.parse((await run('ls', 'a', 'app', '--output', 'json')).stdout);
    expect(ls.tags.map((t: { tag: string; mutable: boolean }) => `${t.tag}:${t.mutable}`).sort()).toEqual([
      'latest:true',
      'v1.2.3:false',
      'v1.2:true',
      'v1:true',
    ]);
    expect((await run('ls', 'a')).stdout.trim()).toBe('app');
    const insp = JSON.parse((await run('inspect', 'a', 'app:v1', '--output', 'json')).stdout);
    expect(insp.manifestDigest).toBe(pushed.descriptor.manifestDigest);

    expect((await run('pull', 'a', 'app:v1.2.3', '-o', 'out/app.bin')).code).toBe(0);
    expect(readFileSync(join(dir, 'out/app.bin'), 'utf8')).toBe('bytes-1\n');

    const pr = JSON.parse((await run('promote', 'a', 'b', 'app:v1.2.3', '--output', 'json')).stdout);
    expect(pr.descriptor.manifestDigest).toBe(pushed.descriptor.manifestDigest);
    expect((await run('promote', 'a', 'b', 'app:v1.2.3')).stdout).toMatch(/^unchanged/);

    const unknown = await run('ls', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown registry "nope"');
    const bad = await run('inspect', 'a', '../etc:v1');
    expect(bad.code).toBe(2);
  });
});
