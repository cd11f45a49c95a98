/**
 * pull `via: host` through the built CLI with real parts: real docker-registry (anonymous and
 * htpasswd), real sshd hosts (an extra sshd of this file's own, reached through byte-counting
 * proxies), real curl and wget on the hosts. Bytes identical; what the orchestrator sent a host
 * counted on the wire; a corrupted blob refused on the host with nothing renamed; the password
 * in no process argv (sampled from /proc during a throttled download) and no file; a re-run sends
 * nothing; a host that cannot reach the registry (the jump host, in its own network namespace)
 * fails with the reason and a hint; hosts without curl (and without wget) get a clear error.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { encodeTarHeader } from '../../src/registry/archive.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { type CountingProxies, countingProxies, describeLab, labHost } from '../lab/helpers.js';
import { type DelayProxy, type ExtraSshd, startLabProxy, startSshd } from '../lab/lab.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const USER = 'alice';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const B64 = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
const PAYLOAD = 4 * 1024 * 1024;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const APPS = ['app-1', 'app-2'];

/** Every file under `dir` (recursively) that contains one of `needles`. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const text = readFileSync(p, 'latin1');
        if (needles.some((n) => text.includes(n))) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

/** Samples every process's argv (and curl's environment) from /proc until stopped. */
function watchProcs(needles: string[], url: string) {
  const leaks: string[] = [];
  const downloads = new Set<number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          if (needles.some((n) => argv.includes(n))) leaks.push(`argv of ${p}: ${argv.replace(/\0/g, ' ')}`);
          if (/(^|\/)curl\0/.test(argv) && argv.includes(url)) {
            downloads.add(Number(p));
            const environ = readFileSync(`/proc/${p}/environ`, 'utf8');
            if (needles.some((n) => environ.includes(n))) leaks.push(`environment of curl ${p}`);
          }
        } catch {
          /* gone */
        }
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { leaks, downloads: downloads.size };
    },
  };
}

/** A directory of links to every program in /usr/bin and /usr/sbin except `without`: a host's PATH without them. */
function binWithout(dir: string, without: string[]): string {
  mkdirSync(dir, { recursive: true });
  for (const from of ['/usr/bin', '/usr/sbin'])
    for (const f of readdirSync(from)) {
      if (without.includes(f) || existsSync(join(dir, f))) continue;
      symlinkSync(join(from, f), join(dir, f));
    }
  chmodSync(dir, 0o755);
  return dir;
}

describeLab('pull via: host (real registry, real sshd hosts, real curl/wget)', (lab) => {
  let anon: TestRegistry;
  let authed: TestRegistry;
  let sshd: ExtraSshd;
  let via: CountingProxies;
  let slow: DelayProxy;
  let appBytes: Buffer;
  let bigSha: string;

  beforeAll(async () => {
    if (skip) throw new Error(skip);
    [anon, authed, sshd] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: { user: USER, password: PASSWORD } }),
      startSshd(lab, { name: 'viahost' }),
    ]);
    via = await countingProxies(
      lab,
      new Map(APPS.map((n) => [n, { addr: sshd.host.addr, hostKey: sshd.hostKey }])),
      join(project({}), 'known_hosts'),
    );
    // The hosts reach the authenticated registry through a slow link: a download lasts long enough to sample /proc.
    slow = await startLabProxy(lab, { host: '127.0.0.1', port: authed.port }, 25);
    const src = project({});
    appBytes = randomBytes(PAYLOAD);
    writeFileSync(join(src, 'app.bin'), appBytes);
    mkdirSync(join(src, 'site/sub'), { recursive: true });
    writeFileSync(join(src, 'site/index.html'), '<h1>v1</h1>\n');
    writeFileSync(join(src, 'site/sub/a.txt'), 'a\n');
    const spec = (url: string, over: Partial<OciRegistrySpec> = {}): OciRegistrySpec => ({
      name: 'prod',
      type: 'oci',
      url,
      plainHttp: true,
      insecure: false,
      pos,
      ...over,
    });
    const a = openOciRegistry(spec(`${anon.url}/team`));
    await a.push('app', 'v1', { path: join(src, 'app.bin') });
    await a.push('site', 'v1', { path: join(src, 'site') });
    await a.push('app', 'v2', { path: join(src, 'site/index.html') });
    // A tar that leaves its root (`../evil`), published as a file artifact: `extract: true` must refuse it.
    const body = Buffer.from('pwned\n');
    writeFileSync(
      join(src, 'evil.tar'),
      Buffer.concat([
        encodeTarHeader({ path: '../evil', type: 'file', size: body.length, mode: 0o644, mtime: 0 } as never),
        body,
        Buffer.alloc(512 - body.length),
        Buffer.alloc(1024),
      ]),
    );
    await a.push('evil', 'v1', { path: join(src, 'evil.tar') });
    const b = openOciRegistry(spec(`${authed.url}/team`, { username: USER, passwordEnv: 'PW' }), { env: { PW: PASSWORD } });
    const big = randomBytes(24 * 1024 * 1024);
    bigSha = sha(big);
    writeFileSync(join(src, 'big.bin'), big);
    await b.push('big', 'v1', { path: join(src, 'big.bin') });
  }, 120_000);
  afterAll(async () => {
    await via?.close();
    await slow?.close();
    await sshd?.stop();
    await anon?.stop();
    await authed?.stop();
  });

  /** A project whose `deploy` job runs `pulls` on `hosts` (default: app-1, app-2 through the counting proxies). */
  function deployProject(registry: string, pulls: string[], hosts?: string): { dir: string; env: Record<string, string> } {
    const dir = project({});
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'hosts'));
    execFileSync('chown', [lab.user, join(dir, 'hosts')]);
    mkdirSync(join(dir, 'home'));
    const inventory =
      hosts ??
      [
        ...APPS.map(
          (n) => `  ${n}: { addr: ${via.proxies.get(n)!.listen.host}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }`,
        ),
        `known_hosts: [${via.knownHosts}]`,
      ].join('\n');
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  prod: ${registry}
hosts:
${inventory}
targets:
  app-servers: [${hosts ? hosts.split('\n')[0]!.trim().split(':')[0] : APPS.join(', ')}]
jobs:
  deploy:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
${pulls.map((p) => `      - pull: ${p.replaceAll('HOSTDIR', `${dir}/hosts/\${HADES_HOST_NAME}`)}`).join('\n')}
plans:
  deploy:
    steps:
      - { name: rollout, job: deploy, targets: app-servers }
`,
    );
    return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } };
  }
  const pullEnds = (stdout: string) =>
    jsonEvents(stdout)
      .filter((e) => e.type === 'action.end' && e.kind === 'pull')
      .map((e) => e.status);

  it('anonymous registry: file and directory artifacts, bytes identical; the orchestrator sends commands, not payloads; a re-run sends nothing', async () => {
    const { dir, env } = deployProject(`{ type: oci, url: ${anon.url}/team, plain_http: true }`, [
      '{ registry: prod, name: app, tag: v1, to: "HOSTDIR/app", mode: 0750, via: host }',
      '{ registry: prod, name: site, tag: v1, to: "HOSTDIR/site", via: host }',
    ]);
    const before = via.sent();
    const r = await runCli(['plan', 'deploy', '--output', 'json', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const first = via.sent();
    for (const h of APPS) {
      const app = join(dir, 'hosts', h, 'app');
      expect(readFileSync(app).equals(appBytes), h).toBe(true);
      expect(statSync(app).mode & 0o777).toBe(0o750);
      expect(readFileSync(join(dir, 'hosts', h, 'site/index.html'), 'utf8')).toBe('<h1>v1</h1>\n');
      expect(readFileSync(join(dir, 'hosts', h, 'site/sub/a.txt'), 'utf8')).toBe('a\n');
      // Counted at the proxies: commands and SSH only — far below the 4 MiB payload.
      expect(first.get(h)! - before.get(h)!, h).toBeLessThan(128 * 1024);
      expect(readdirSync(join(dir, 'hosts', h)).sort()).toEqual(['app', 'site']); // no temp dir left
    }
    const ino = statSync(join(dir, 'hosts/app-2/app')).ino;
    const r2 = await runCli(['plan', 'deploy', '--output', 'json', '--cache-dir', join(dir, 'cache2')], { cwd: dir, env });
    expect(r2.code, r2.stdout).toBe(0);
    expect(pullEnds(r2.stdout)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    expect(statSync(join(dir, 'hosts/app-2/app')).ino).toBe(ino);
    const second = via.sent();
    for (const h of APPS) expect(second.get(h)! - first.get(h)!, h).toBeLessThan(64 * 1024); // commands only
    // The second run read no payload on the orchestrator either (its cache stayed empty).
    expect(existsSync(join(dir, 'cache2/blobs/sha256')) ? readdirSync(join(dir, 'cache2/blobs/sha256')) : []).toEqual([]);
  }, 120_000);

  it('--dry-run shows the host-side download (curl -K - reading the header from stdin) and runs nothing', async () => {
    const { dir, env } = deployProject(`{ type: oci, url: ${anon.url}/team, plain_http: true }`, [
      '{ registry: prod, name: app, tag: v1, to: "HOSTDIR/app", via: host }',
    ]);
    const r = await runCli(['plan', 'deploy', '--dry-run'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`app:v1 from registry "prod" -> ${dir}/hosts/app-1/app mode 0644 via host`);
    expect(r.stdout).toContain(`IFS= read -r a || { echo 'no credentials line on stdin' >&2; exit 1; }`);
    expect(r.stdout).toContain(`printf 'header = "Authorization: %s"\\n' "$a"; } | curl -K - -fsSL`);
    expect(readdirSync(join(dir, 'hosts'))).toEqual([]);
  });

  it('a corrupted blob in the registry storage is refused on the host; nothing is renamed', async () => {
    const reg = openOciRegistry({ name: 'prod', type: 'oci', url: `${anon.url}/team`, plainHttp: true, insecure: false, pos });
    const d = await reg.resolve('app', { tag: 'v2' });
    const file = anon.blobFile(d.layer.digest);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[0] = bad[0]! ^ 0xff;
    writeFileSync(file, bad);
    try {
      const { dir, env } = deployProject(`{ type: oci, url: ${anon.url}/team, plain_http: true }`, [
        '{ registry: prod, name: app, tag: v2, to: "HOSTDIR/index.html", via: host }',
      ]);
      const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
      expect(r.code, r.stdout).toBe(1);
      expect(r.stdout).toContain(`checksum mismatch on host: expected ${d.layer.digest.slice(7)}, got ${sha(bad)}`);
      for (const h of APPS) expect(readdirSync(join(dir, 'hosts', h)), h).toEqual([]); // neither the file nor a temp dir
    } finally {
      writeFileSync(file, good);
    }
  }, 120_000);

  it("extract: true of a hostile tar: refused by the orchestrator's archive check before the host downloads anything", async () => {
    const { dir, env } = deployProject(`{ type: oci, url: ${anon.url}/team, plain_http: true }`, [
      '{ registry: prod, name: evil, tag: v1, to: "HOSTDIR/tree", extract: true, via: host }',
    ]);
    const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/refusing to extract evil:v1: .*\.\..*\(nothing was written on the host\)/);
    for (const h of APPS) expect(readdirSync(join(dir, 'hosts', h)), h).toEqual([]);
    expect(existsSync(join(dir, 'hosts', 'evil'))).toBe(false);
  }, 120_000);

  it('htpasswd registry: the password is in no process argv during the download (sampled from /proc), in no curl environment, no file, no output', async () => {
    const { dir, env } = deployProject(
      `{ type: oci, url: "${slow.listen.host}:${slow.listen.port}/team", plain_http: true, username: ${USER}, password_env: REG_PW }`,
      ['{ registry: prod, name: big, tag: v1, to: "HOSTDIR/big", via: host }'],
    );
    const blobPath = '/v2/team/big/blobs/sha256:';
    const watch = watchProcs([PASSWORD, B64], blobPath);
    let seen: { leaks: string[]; downloads: number };
    let r: Awaited<ReturnType<typeof runCli>>;
    try {
      r = await runCli(['plan', 'deploy', '--output', 'json', '--cache-dir', join(dir, 'cache')], {
        cwd: dir,
        env: { ...env, REG_PW: PASSWORD },
      });
    } finally {
      seen = await watch.stop();
    }
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(seen.downloads).toBeGreaterThanOrEqual(1); // the sampler saw the hosts' curl run
    expect(seen.leaks).toEqual([]);
    for (const h of APPS) expect(sha(readFileSync(join(dir, 'hosts', h, 'big'))), h).toBe(bigSha);
    expect(filesContaining(dir, [PASSWORD, B64])).toEqual([]); // hosts' files, audit log, cache
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect(r.stdout + r.stderr).not.toContain(B64);
  }, 180_000);

  it('insecure: a TLS registry with a self-signed certificate — the orchestrator pings it and the hosts download with curl -k', async () => {
    const tls = await startRegistry({ tls: true });
    try {
      const src = project({ 'tls.bin': 'over tls\n' });
      const reg = openOciRegistry({ name: 'prod', type: 'oci', url: `${tls.url}/team`, plainHttp: false, insecure: true, pos });
      await reg.push('app', 'v1', { path: join(src, 'tls.bin') });
      const { dir, env } = deployProject(`{ type: oci, url: ${tls.url}/team, insecure: true }`, [
        '{ registry: prod, name: app, tag: v1, to: "HOSTDIR/app", via: host }',
      ]);
      const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      for (const h of APPS) expect(readFileSync(join(dir, 'hosts', h, 'app'), 'utf8'), h).toBe('over tls\n');
    } finally {
      await tls.stop();
    }
  }, 120_000);

  it('a host that cannot reach the registry fails with the reason and a hint; no fallback', async () => {
    const hj = labHost(lab, 'hj');
    const target = `/tmp/hades-viahost-${randomBytes(6).toString('hex')}`;
    const { dir, env } = deployProject(
      `{ type: oci, url: ${anon.url}/team, plain_http: true }`,
      [],
      `  hj: { addr: ${hj.addr}, port: ${hj.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }\nknown_hosts: [${lab.knownHosts}]`,
    );
    const hf = readFileSync(join(dir, 'hadesfile.yaml'), 'utf8')
      .replace(/ {6}- mkdir:.*\n/, '')
      .replace('    actions:\n', `    actions:\n      - pull: { registry: prod, name: app, tag: v1, to: ${target}, via: host }\n`);
    writeFileSync(join(dir, 'hadesfile.yaml'), hf);
    const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `on host hj: cannot download http://${anon.url.replace(/\./g, '\\.')}/v2/team/app/blobs/sha256:[0-9a-f]{64} on this host \\(curl: \\(7\\) Failed to connect to 127\\.0\\.0\\.1 port ${anon.port}[^)]*\\): check that this host can reach the registry \\(address, firewall, proxy, TLS certificate\\), or pull with via: orchestrator`,
      ),
    );
  }, 120_000);

  it('a host without curl: wget for an anonymous registry (bytes identical), a clear error with credentials; neither: a clear error naming the host', async () => {
    const tools = project({});
    chmodSync(tools, 0o755);
    const wgetOnly = await startSshd(lab, {
      name: 'wget-only',
      extraConfig: [`SetEnv PATH=${binWithout(join(tools, 'wget-only'), ['curl'])}`],
    });
    const none = await startSshd(lab, {
      name: 'no-tools',
      extraConfig: [`SetEnv PATH=${binWithout(join(tools, 'none'), ['curl', 'wget'])}`],
    });
    try {
      const kh = join(tools, 'known_hosts');
      writeFileSync(kh, `${wgetOnly.knownHostsLine}\n${none.knownHostsLine}\n`);
      const host = (name: string, s: ExtraSshd) =>
        `  ${name}: { addr: ${s.host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }\nknown_hosts: [${kh}]`;
      const ok = deployProject(
        `{ type: oci, url: ${anon.url}/team, plain_http: true }`,
        ['{ registry: prod, name: app, tag: v1, to: "HOSTDIR/app", via: host }'],
        host('w1', wgetOnly),
      );
      const r = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(ok.dir, 'cache')], { cwd: ok.dir, env: ok.env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readFileSync(join(ok.dir, 'hosts/w1/app')).equals(appBytes)).toBe(true);

      const cred = deployProject(
        `{ type: oci, url: ${authed.url}/team, plain_http: true, username: ${USER}, password_env: REG_PW }`,
        ['{ registry: prod, name: big, tag: v1, to: "HOSTDIR/big", via: host }'],
        host('w1', wgetOnly),
      );
      const rc = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(cred.dir, 'cache')], {
        cwd: cred.dir,
        env: { ...cred.env, REG_PW: PASSWORD },
      });
      expect(rc.code).toBe(1);
      expect(rc.stdout).toContain(
        'on host w1: this host has wget but not curl: wget takes credentials only in argv or a file, so pulling via: host from a registry with credentials needs curl on the host (install curl), or pull with via: orchestrator',
      );
      expect(readdirSync(join(cred.dir, 'hosts/w1'))).toEqual([]);

      const bare = deployProject(
        `{ type: oci, url: ${anon.url}/team, plain_http: true }`,
        ['{ registry: prod, name: app, tag: v1, to: "HOSTDIR/app", via: host }'],
        host('n1', none),
      );
      const rn = await runCli(['plan', 'deploy', '--output', 'plain', '--cache-dir', join(bare.dir, 'cache')], {
        cwd: bare.dir,
        env: bare.env,
      });
      expect(rn.code).toBe(1);
      expect(rn.stdout).toContain(
        'on host n1: neither curl nor wget is installed on this host: pull via: host downloads with one of them (install curl), or pull with via: orchestrator',
      );
      expect(readdirSync(join(bare.dir, 'hosts/n1'))).toEqual([]);
    } finally {
      await wgetOnly.stop();
      await none.stop();
    }
  }, 180_000);
});
