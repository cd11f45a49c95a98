/**
 * `--offline` and `hades cache` through the built CLI: publish, deploy once (the cache fills),
 * then the registry goes away (a filesystem registry moved off, a real docker-registry
 * stopped); an `--offline` replay gives the hosts (real OpenSSH, this file's own sshd) the same
 * bytes from the cache, while the same run without --offline fails on the unreachable
 * registry. Tags that need resolving and digests not in the cache fail before anything runs.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rawTar } from '../fixtures/registry/rawtar.js';
import { project, runCli } from '../helpers/cli.js';
import { fileSshd, labProject } from '../helpers/lab-project.js';
import { writeDirectoryArtifact } from '../helpers/raw-artifact.js';
import { sha256 as sha, treeHashes } from '../helpers/tree.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const APPS = ['app-1', 'app-2'];

const sshd = fileSshd('offline');

/**
 * publish (push a file and a directory by ${VERSION}) → deploy (pull both by tag onto the
 * hosts); plan `pinned` pulls the file by `digest: ${APP_DIGEST}`.
 */
function releaseProject(registryYaml: string) {
  const {
    dir,
    knownHosts,
    env: labEnv,
    hostLines,
  } = labProject(sshd(), {
    files: { 'site/index.html': '<h1>v1</h1>\n', 'site/css/a.css': 'body{}\n' },
    userDirs: ['hosts'],
  });
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `registries:
  reg: ${registryYaml}
hosts:
  build-server: { local: true }
${hostLines(APPS)}
known_hosts: [${knownHosts}]
targets:
  apps: [${APPS.join(', ')}]
jobs:
  publish:
    local: true
    artifacts:
      app: { path: ./build.bin }
      site: { path: ./site }
    actions:
      - run: printf 'myapp %s\\n' "$VERSION" > build.bin && head -c 8192 /dev/urandom >> build.bin
      - push: { registry: reg, artifact: app, name: myapp, tag: "\${VERSION}" }
      - push: { registry: reg, artifact: site, name: site, tag: "\${VERSION}" }
  deploy:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: reg, name: myapp, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}/app" }
      - pull: { registry: reg, name: site, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}/site" }
  pinned:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: reg, name: myapp, digest: "\${APP_DIGEST}", to: "${dir}/hosts/\${HADES_HOST_NAME}/pinned" }
plans:
  release:
    env: { VERSION: "\${VERSION:-v1.0.0}" }
    steps:
      - { name: publish, job: publish, targets: build-server }
      - { name: deploy, job: deploy, targets: apps }
  pinned:
    steps:
      - { name: deploy, job: pinned, targets: apps }
`,
  );
  const xdg = join(dir, 'xdg');
  const env = { ...labEnv, XDG_CACHE_HOME: xdg };
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { ...env, ...extra } });
  const hostFiles = (h: string) => ({
    app: sha(readFileSync(join(dir, 'hosts', h, 'app'))),
    site: treeHashes(join(dir, 'hosts', h, 'site')),
  });
  const wipeHosts = () => {
    for (const h of APPS) rmSync(join(dir, 'hosts', h), { recursive: true, force: true });
  };
  return { dir, cacheDir: join(xdg, 'hades'), cli, hostFiles, wipeHosts };
}

/** Publish + deploy online; returns what the hosts got and the digests the run recorded. */
async function deployOnce(p: ReturnType<typeof releaseProject>) {
  const r = await p.cli(['plan', 'release', '-o', 'plain']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  // What the hosts hold: the pushed bytes (and the directory's .hades-artifact marker, which names its digest).
  const want = p.hostFiles(APPS[0]!);
  const { '.hades-artifact': marker, ...site } = want.site;
  expect(marker).toBeDefined();
  expect({ app: want.app, site }).toEqual({ app: sha(readFileSync(join(p.dir, 'build.bin'))), site: treeHashes(join(p.dir, 'site')) });
  for (const h of APPS) expect(p.hostFiles(h)).toEqual(want);
  const ls = await p.cli(['cache', 'ls', '--output', 'json']);
  expect(ls.code, ls.stderr).toBe(0);
  const cached = JSON.parse(ls.stdout);
  expect(cached.cacheDir).toBe(p.cacheDir);
  const byName = Object.fromEntries(cached.entries.map((e: any) => [e.name, e]));
  expect(Object.keys(byName).sort()).toEqual(['myapp', 'site']);
  expect(byName.myapp).toMatchObject({
    tag: 'v1.0.0',
    registry: 'reg',
    present: true,
    size: readFileSync(join(p.dir, 'build.bin')).length,
  });
  expect(byName.myapp.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(Date.parse(byName.myapp.lastUsed)).toBeGreaterThan(0);
  return { want, appDigest: byName.myapp.digest as string, siteDigest: byName.site.digest as string };
}

/** The registry is gone: --offline replays from the cache; the same run online fails on the registry. */
async function replayOffline(
  p: ReturnType<typeof releaseProject>,
  want: { app: string; site: Record<string, string> },
  onlineError: RegExp,
) {
  p.wipeHosts();
  const dry = await p.cli(['plan', 'release', '--replay', 'last', '--steps', 'deploy', '--offline', '--dry-run']);
  expect(dry.code, dry.stdout + dry.stderr).toBe(0);
  expect(dry.stdout).toContain(`offline: from cache ${p.cacheDir} (no registry is contacted; 2 artifact digest(s)`);
  expect(dry.stdout).toContain('--steps deploy --offline` runs');

  const off = await p.cli(['plan', 'release', '--replay', 'last', '--steps', 'deploy', '--offline', '-o', 'plain']);
  expect(off.code, off.stdout + off.stderr).toBe(0);
  for (const h of APPS) expect(p.hostFiles(h)).toEqual(want);
  const log = /audit log: (\S+)/.exec(off.stderr)![1]!;
  expect(JSON.parse(readFileSync(log, 'utf8').split('\n')[0]!)).toMatchObject({ offline: { cacheDir: p.cacheDir, artifacts: 2 } });

  p.wipeHosts();
  const on = await p.cli(['plan', 'release', '--replay', 'last', '--steps', 'deploy', '-o', 'plain']);
  expect(on.code, on.stdout + on.stderr).toBe(1);
  expect(on.stdout + on.stderr).toMatch(onlineError);
  for (const h of APPS) expect(existsSync(join(p.dir, 'hosts', h, 'app'))).toBe(false);
}

describe('--offline with a filesystem registry', () => {
  it('deploy once, move the registry away: --offline replay gives the hosts the same bytes; online the same run fails on the registry', async () => {
    const p = releaseProject('{ type: filesystem, path: ./registry }');
    const { want } = await deployOnce(p);
    renameSync(join(p.dir, 'registry'), join(p.dir, 'registry.gone'));
    await replayOffline(
      p,
      want,
      /FAILED at "pull myapp:v1\.0\.0 to \S+": pull myapp@sha256:[0-9a-f]{64} to \S+: artifact myapp@sha256:[0-9a-f]{64} not found in registry "reg"/,
    );
  });

  it('fails before anything runs: a tag to resolve, a push, a digest not in the cache or damaged there (exit 2, each named)', async () => {
    const p = releaseProject('{ type: filesystem, path: ./registry }');
    const { appDigest } = await deployOnce(p);
    p.wipeHosts();
    const tags = await p.cli(['plan', 'release', '--offline', '-o', 'plain']);
    expect(tags.code, tags.stdout + tags.stderr).toBe(2);
    expect(tags.stderr).toMatch(
      /hadesfile\.yaml:\d+:\d+: error: --offline: step "publish" pushes to registry "reg", which is not contacted offline/,
    );
    expect(tags.stderr).toMatch(/hadesfile\.yaml:\d+:\d+: error: --offline: pull myapp:v1\.0\.0 needs its tag resolved by registry "reg"/);
    expect(tags.stderr).toContain('--offline: pull site:v1.0.0 needs its tag resolved by registry "reg"');
    expect(tags.stderr).toContain('--replay / --resume');
    expect(readdirSync(join(p.dir, 'hosts'))).toEqual([]); // nothing ran

    // digest: on the action, offline
    const pinned = await p.cli(['plan', 'pinned', '--offline', '-o', 'plain', '-e', `APP_DIGEST=${appDigest}`]);
    expect(pinned.code, pinned.stdout + pinned.stderr).toBe(0);
    for (const h of APPS) expect(sha(readFileSync(join(p.dir, 'hosts', h, 'pinned')))).toBe(sha(readFileSync(join(p.dir, 'build.bin'))));

    const unknown = `sha256:${'ab'.repeat(32)}`;
    p.wipeHosts();
    const missing = await p.cli(['plan', 'pinned', '--offline', '-o', 'plain', '-e', `APP_DIGEST=${unknown}`]);
    expect(missing.code, missing.stdout + missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(
      new RegExp(
        `hadesfile\\.yaml:\\d+:\\d+: error: --offline: myapp@${unknown} \\(registry "reg"\\): not in the cache \\(${p.cacheDir}\\)`,
      ),
    );
    expect(readdirSync(join(p.dir, 'hosts'))).toEqual([]);

    // a damaged payload in the cache is found before the run (and not sent)
    const ls = JSON.parse((await p.cli(['cache', 'ls', '--output', 'json'])).stdout);
    const blob = ls.entries.find((e: any) => e.digest === appDigest).blob.replace('sha256:', '');
    const blobPath = join(p.cacheDir, 'blobs', 'sha256', blob);
    const good = readFileSync(blobPath);
    writeFileSync(blobPath, Buffer.concat([good.subarray(0, good.length - 1), Buffer.from('!')]));
    const damaged = await p.cli(['plan', 'pinned', '--offline', '-o', 'plain', '-e', `APP_DIGEST=${appDigest}`]);
    expect(damaged.code, damaged.stdout + damaged.stderr).toBe(2);
    expect(damaged.stderr).toContain(`its payload sha256:${blob} in the cache does not match its digest (damaged)`);
    expect(readdirSync(join(p.dir, 'hosts'))).toEqual([]);
  });

  it('registry pull --offline reads NAME@digest from the cache only (file and directory); a tag or an unknown digest: exit 2', async () => {
    const p = releaseProject('{ type: filesystem, path: ./registry }');
    const { appDigest, siteDigest } = await deployOnce(p);
    renameSync(join(p.dir, 'registry'), join(p.dir, 'registry.gone'));
    const f = await p.cli(['registry', 'pull', '--offline', 'reg', `myapp@${appDigest}`, '-o', 'out/app.bin']);
    expect(f.code, f.stderr).toBe(0);
    expect(sha(readFileSync(join(p.dir, 'out', 'app.bin')))).toBe(sha(readFileSync(join(p.dir, 'build.bin'))));
    const d = await p.cli(['registry', 'pull', '--offline', 'reg', `site@${siteDigest}`, '-o', 'out/site']);
    expect(d.code, d.stderr).toBe(0);
    expect(treeHashes(join(p.dir, 'out', 'site'))).toEqual(treeHashes(join(p.dir, 'site')));
    const tag = await p.cli(['registry', 'pull', '--offline', 'reg', 'myapp:v1.0.0', '-o', 'out/x']);
    expect(tag.code).toBe(2);
    expect(tag.stderr).toContain('--offline: myapp:v1.0.0 needs its tag resolved by registry "reg"');
    const unknown = await p.cli(['registry', 'pull', '--offline', 'reg', `myapp@sha256:${'cd'.repeat(32)}`, '-o', 'out/y']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`--offline: myapp@sha256:${'cd'.repeat(32)}: not in the cache (${p.cacheDir})`);
    const online = await p.cli(['registry', 'pull', 'reg', `myapp@${appDigest}`, '-o', 'out/z']);
    expect(online.code).not.toBe(0);
    expect(existsSync(join(p.dir, 'out', 'x')) || existsSync(join(p.dir, 'out', 'y')) || existsSync(join(p.dir, 'out', 'z'))).toBe(false);
  });

  it('cache prune --keep-last 1: keeps the newest digest of each name, removes the older one and its payload', async () => {
    const p = releaseProject('{ type: filesystem, path: ./registry }');
    const first = await deployOnce(p);
    writeFileSync(join(p.dir, 'site', 'index.html'), '<h1>v2</h1>\n');
    const r2 = await p.cli(['plan', 'release', '-o', 'plain'], { VERSION: 'v2.0.0' });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    const before = JSON.parse((await p.cli(['cache', 'ls', '--output', 'json'])).stdout).entries;
    expect(before.map((e: any) => `${e.name}:${e.tag}`).sort()).toEqual(['myapp:v1.0.0', 'myapp:v2.0.0', 'site:v1.0.0', 'site:v2.0.0']);
    const oldBlob = before.find((e: any) => e.digest === first.appDigest).blob.replace('sha256:', '');
    const pr = await p.cli(['cache', 'prune', '--keep-last', '1']);
    expect(pr.code, pr.stderr).toBe(0);
    expect(pr.stdout).toContain(`removed ${first.appDigest}\tmyapp:v1.0.0`);
    const after = JSON.parse((await p.cli(['cache', 'ls', '--output', 'json'])).stdout).entries;
    expect(after.map((e: any) => `${e.name}:${e.tag}`).sort()).toEqual(['myapp:v2.0.0', 'site:v2.0.0']);
    expect(existsSync(join(p.cacheDir, 'blobs', 'sha256', oldBlob))).toBe(false);
    const bad = await p.cli(['cache', 'prune', '--older-than', 'soon', '--keep-last', '-1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than "soon" is not a duration');
    expect(bad.stderr).toContain('--keep-last "-1" is not a whole number');
  });
});

describe('--offline still checks archives on the cached bytes', () => {
  it('a hostile directory artifact in the cache: the offline run and registry pull --offline refuse to extract it, naming the entry', async () => {
    const dir = project({});
    mkdirSync(join(dir, 'out'));
    // A directory artifact whose tree holds a link out of it, written straight into a filesystem registry.
    const tar = rawTar([
      { name: 'app', typeflag: '5', mode: 0o755 },
      { name: 'app/index.html', typeflag: '0', data: '<h1>hi</h1>\n' },
      { name: 'app/.hades-artifact', typeflag: '2', linkname: '../passwd' },
    ]);
    const m = { digest: await writeDirectoryArtifact(join(dir, 'reg'), 'site', 'v1', 'app', tar) };
    const hadesfile = (ref: string) => `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  h: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: r, name: site, ${ref}, to: "${dir}/out/site" }
plans:
  p:
    steps:
      - { name: deploy, job: deploy, targets: h }
`;
    writeFileSync(join(dir, 'hadesfile.yaml'), hadesfile('tag: v1'));
    const env = { XDG_CACHE_HOME: join(dir, 'xdg') };
    const online = await runCli(['plan', 'p', '-o', 'plain'], { cwd: dir, env });
    expect(online.code, online.stdout + online.stderr).toBe(1);
    expect(online.stdout).toContain('refusing to extract site:v1');
    renameSync(join(dir, 'reg'), join(dir, 'reg.gone'));
    writeFileSync(join(dir, 'hadesfile.yaml'), hadesfile(`digest: "${m.digest}"`));
    const off = await runCli(['plan', 'p', '--offline', '-o', 'plain'], { cwd: dir, env });
    expect(off.code, off.stdout + off.stderr).toBe(1);
    expect(off.stdout).toContain(`refusing to extract site@${m.digest}`);
    expect(off.stdout).toContain('tar entry "app/.hades-artifact": .hades-artifact at the root of the tree is the marker Hades writes');
    const pull = await runCli(['registry', 'pull', '--offline', 'r', `site@${m.digest}`, '-o', 'out/pulled'], { cwd: dir, env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain(`refusing to extract site@${m.digest}`);
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
  });
});

const skip = registrySkipReason();
describe.skipIf(skip)('--offline with an oci registry (real docker-registry)', () => {
  let reg: TestRegistry | undefined;
  afterAll(async () => {
    await reg?.stop();
  });

  it('deploy once, stop the registry: --offline replay gives the hosts the same bytes; online the same run fails on the registry', async () => {
    reg = await startRegistry();
    const p = releaseProject(`{ type: oci, url: ${reg.url}/offline, plain_http: true }`);
    const { want } = await deployOnce(p);
    await reg.stop();
    reg = undefined;
    await replayOffline(
      p,
      want,
      /FAILED at "pull myapp:v1\.0\.0 to \S+": pull myapp@sha256:[0-9a-f]{64} to \S+: cannot reach registry "reg" \(127\.0\.0\.1:\d+\/offline\): .*connection refused/,
    );
  });
});
