/**
 * Rollout semantics on real OpenSSH hosts (the lab), through the built CLI:
 * every action remotely, skip-on-identical, canary determinism, parallelism measured on
 * the hosts, abort, Ctrl-C without leftovers, become via sudo, one connection per host,
 * host-key policy, the registry workflow delivering to hosts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptedLogins, type CountingProxies, countingProxies, labHostKey, requireLab } from '../lab/helpers.js';
import type { LabHost, LabInfo } from '../lab/lab.js';
import { jsonEvents, runCli, startCli } from '../helpers/cli.js';

let lab: LabInfo;
beforeAll(() => {
  lab = requireLab();
  // The deploy user owns its deploy dirs (like a real app user); /etc/app stays root's for become tests.
  for (const h of lab.hosts.slice(0, 6)) onHost(h.name, `chown ${lab.user} /opt /srv /var/lib/app && rm -rf /opt/* /srv/* /var/lib/app/*`);
});

/** Runs a shell command inside a lab host's mount namespace (to see its private /opt). */
function onHost(name: string, script: string): string {
  const h = lab.hosts.find((x) => x.name === name)!;
  return execFileSync('nsenter', ['-t', String(h.pid), '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
}

/** `via`: route the hosts through these proxies (name → listen address, and its known_hosts file). */
function inventory(user = lab.user, hosts = lab.hosts.slice(0, 6), via?: CountingProxies): string {
  const addr = (h: LabHost) => via?.proxies.get(h.name)?.listen.host ?? h.addr;
  return `hosts:
${hosts.map((h) => `  ${h.name}: { addr: ${addr(h)}, port: ${h.port}, user: ${user}, identity_file: ${lab.clientKey} }`).join('\n')}
targets:
  web: [${hosts.map((h) => h.name).join(', ')}]
known_hosts: [${via ? via.knownHosts : lab.knownHosts}]
`;
}

/** A project dir whose HOME is private (no ~/.ssh of the machine is read or written). */
function sshProject(body: string, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hades-ssh-'));
  mkdirSync(join(dir, 'home'));
  writeFileSync(join(dir, 'hadesfile.yaml'), inventory() + body);
  for (const [k, v] of Object.entries(files)) {
    mkdirSync(join(dir, k, '..'), { recursive: true });
    writeFileSync(join(dir, k), v);
  }
  return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } };
}

describe('actions on real hosts', () => {
  it('mkdir, copy, template, run and guard work remotely; a second run transfers nothing (inode and mtime unchanged)', async () => {
    const { dir, env } = sshProject(
      `jobs:
  deploy:
    env: { VERSION: }
    guard:
      if: test "$HADES_HOST_NAME" != h6
    actions:
      - mkdir: { path: /opt/app, mode: 0755 }
      - copy: { src: files/app.bin, dst: /opt/app/app.bin, mode: 0750 }
      - template: { src: files/app.conf.njk, dst: /opt/app/app.conf }
      - run: echo "$HADES_HOST_NAME $VERSION" > /opt/app/who && cat /opt/app/who
plans:
  p:
    env: { VERSION: "3.1" }
    steps:
      - { name: all, job: deploy, targets: web }
`,
      { 'files/app.bin': 'binary\n', 'files/app.conf.njk': 'host={{ host.name }} addr={{ host.addr }}\n' },
    );
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const h1 = lab.hosts[0]!;
    expect(onHost('h1', 'cat /opt/app/app.bin /opt/app/app.conf /opt/app/who; stat -c %a /opt/app/app.bin')).toBe(
      `binary\nhost=h1 addr=${h1.addr}\nh1 3.1\n750\n`,
    );
    expect(onHost('h6', 'ls /opt')).toBe(''); // guard skipped h6 (and /opt is private per host)
    const ev = jsonEvents(r.stdout);
    expect(ev.find((e) => e.type === 'host.end' && e.host === 'h6')?.status).toBe('skipped');
    expect(ev.find((e) => e.type === 'action.output' && e.host === 'h2')?.data).toBe('h2 3.1');

    const before = onHost('h3', 'stat -c "%i %Y.%y" /opt/app/app.bin /opt/app/app.conf');
    const r2 = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r2.code).toBe(0);
    expect(onHost('h3', 'stat -c "%i %Y.%y" /opt/app/app.bin /opt/app/app.conf')).toBe(before);
    const statuses = jsonEvents(r2.stdout)
      .filter((e) => e.type === 'action.end' && e.host === 'h3')
      .map((e) => e.status);
    expect(statuses).toEqual(['unchanged', 'unchanged', 'unchanged', 'ok']);
  });
});

describe('rollout semantics measured on the hosts', () => {
  it('limit: 1 always picks the first host in inventory order', async () => {
    const { dir, env } = sshProject(`jobs:
  mark:
    actions:
      - run: echo "$HADES_RUN_ID" >> /srv/canary
plans:
  p:
    steps:
      - { name: canary, job: mark, targets: [h4, web, h2], limit: 1 }
`);
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    expect(onHost('h1', 'wc -l < /srv/canary').trim()).toBe('3');
    for (const h of ['h2', 'h3', 'h4', 'h5', 'h6']) expect(onHost(h, 'test -e /srv/canary && echo yes || echo no').trim()).toBe('no');
  });

  it.each([
    ['2', 2],
    ['"50%"', 3],
  ])('parallelism %s never runs more than %i hosts at once', async (par, max) => {
    const shared = mkdtempSync(join(tmpdir(), 'hades-conc-'));
    const { dir, env } = sshProject(`jobs:
  work:
    actions:
      - run: echo "start $(date +%s%N) $HADES_HOST_NAME" >> ${shared}/log; sleep 0.4; echo "end $(date +%s%N) $HADES_HOST_NAME" >> ${shared}/log
plans:
  p:
    steps:
      - { name: roll, job: work, targets: web, parallelism: ${par} }
`);
    execFileSync('chmod', ['1777', shared]);
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const events = readFileSync(join(shared, 'log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([kind, t]) => ({ kind, t: BigInt(t!) }))
      .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.kind === 'end' ? -1 : 1));
    let running = 0;
    let peak = 0;
    for (const e of events) {
      running += e.kind === 'start' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    expect(events).toHaveLength(12);
    expect(peak).toBe(max); // reached, never exceeded
  });

  it('a failing host stops new hosts, later batches and steps; in-flight hosts finish their current action', async () => {
    const { dir, env } = sshProject(`jobs:
  work:
    actions:
      - run: if [ "$HADES_HOST_NAME" = h1 ]; then exit 3; fi; sleep 1; touch /srv/first
      - run: touch /srv/second
plans:
  p:
    steps:
      - { name: one, job: work, targets: web, parallelism: 3 }
      - { name: two, job: work, targets: web }
`);
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(onHost('h2', 'ls /srv').trim()).toBe('first');
    expect(onHost('h4', 'ls /srv').trim()).toBe('');
    expect(r.stdout).toMatch(/h1: FAILED .*command exited with code 3/);
    expect(r.stdout).toMatch(/not started: h4, h5, h6/);
    expect(r.stdout).toMatch(/step two: not-run/);
  });

  it('Ctrl-C mid-rollout: exit 130, summary, no temp files left on any host', async () => {
    const big = mkdtempSync(join(tmpdir(), 'hades-big-'));
    writeFileSync(join(big, 'blob'), Buffer.alloc(8 * 1024 * 1024, 7));
    // Through proxies that can hold a transfer half-way: the signal comes while a copy is
    // provably under way (its temp file seen on the host), not merely announced.
    const hosts = lab.hosts.slice(0, 6);
    const via = await countingProxies(
      lab,
      new Map(hosts.map((h) => [h.name, { addr: h.addr, hostKey: labHostKey(lab, h.name) }])),
      join(big, 'known_hosts'),
    );
    try {
      const { dir, env } = sshProject(`jobs:
  ship:
    actions:
      - mkdir: { path: /var/lib/app/rel }
      - copy: { src: ${big}/blob, dst: /var/lib/app/rel/blob }
      - run: sleep 1
plans:
  p:
    steps:
      - { name: roll, job: ship, targets: web, parallelism: 2 }
`);
      writeFileSync(
        join(dir, 'hadesfile.yaml'),
        readFileSync(join(dir, 'hadesfile.yaml'), 'utf8').replace(inventory(), inventory(lab.user, hosts, via)),
      );
      // h1 and h2 (parallelism 2) are held once 1 MiB went their way: part of the blob.
      for (const h of ['h1', 'h2']) via.proxies.get(h)!.holdToTargetAt(1024 * 1024);
      const { child, done } = startCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
      const temps = (h: string) => onHost(h, 'ls -A /var/lib/app/rel 2>/dev/null | grep hades-tmp || true').trim();
      // The copy's temp file on a held host: that copy is under way on the host.
      let seen = '';
      while (!seen && child.exitCode === null) {
        seen = temps('h1') || temps('h2');
        if (!seen) await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toMatch(/hades-tmp/);
      child.kill('SIGINT');
      for (const p of via.proxies.values()) p.holdToTarget(false);
      const r = await done;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      expect(r.stdout).toContain('INTERRUPTED');
      expect(r.stdout).toMatch(/not started: h3, h4, h5, h6/);
      // The copy's directory is there (the check below looks at something), and holds no temp file.
      for (const h of ['h1', 'h2']) expect(onHost(h, 'test -d /var/lib/app/rel && echo dir').trim()).toBe('dir');
      for (const h of hosts) expect(temps(h.name), h.name).toBe('');
    } finally {
      await via.close();
    }
  });
});

describe('privilege and connections', () => {
  it('become: a sudo user deploys into a root-owned directory with owner root; a user without sudo gets a clear error and leaves nothing', async () => {
    const body = `jobs:
  root-deploy:
    become: true
    actions:
      - mkdir: { path: /etc/app/conf.d, mode: 0750, owner: root, group: root }
      - copy: { src: files/x.conf, dst: /etc/app/conf.d/x.conf, mode: 0640, owner: root }
      - run: id -u > /etc/app/conf.d/uid
plans:
  p:
    steps:
      - { name: s, job: root-deploy, targets: h5 }
`;
    onHost('h5', 'chown root:root /etc/app && chmod 0755 /etc/app');
    const ok = sshProject(body, { 'files/x.conf': 'k=v\n' });
    writeFileSync(join(ok.dir, 'hadesfile.yaml'), inventory(lab.sudoUser) + body);
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: ok.dir, env: ok.env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(onHost('h5', 'stat -c "%U:%G %a" /etc/app/conf.d /etc/app/conf.d/x.conf; cat /etc/app/conf.d/uid')).toBe(
      'root:root 750\nroot:root 640\n0\n',
    );

    onHost('h6', 'chown root:root /etc/app && chmod 0755 /etc/app');
    const bad = sshProject(body.replace('targets: h5', 'targets: h6'), { 'files/x.conf': 'k=v\n' });
    writeFileSync(join(bad.dir, 'hadesfile.yaml'), inventory(lab.nosudoUser) + body.replace('targets: h5', 'targets: h6'));
    const r2 = await runCli(['plan', 'p', '--output', 'plain'], { cwd: bad.dir, env: bad.env });
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/sudo needs a password for become: root|may not use sudo/);
    expect(onHost('h6', 'ls -A /etc/app')).toBe('');
  });

  it('one SSH connection per host for a whole run of several steps and actions', async () => {
    const { dir, env } = sshProject(`jobs:
  a:
    actions:
      - mkdir: { path: /srv/one }
      - run: "true"
      - run: "true"
plans:
  p:
    steps:
      - { name: s1, job: a, targets: web, parallelism: 2 }
      - { name: s2, job: a, targets: web }
      - { name: s3, job: a, targets: web, limit: 2 }
`);
    const before = lab.hosts.slice(0, 6).map((h) => acceptedLogins(h));
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const after = lab.hosts.slice(0, 6).map((h) => acceptedLogins(h));
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('host keys: unknown → fails before any action with the fingerprint; --accept-new-hosts records it; a changed key is refused even then', async () => {
    const body = `jobs:
  a:
    actions:
      - run: touch /srv/ran
plans:
  p:
    steps:
      - { name: s, job: a, targets: h2 }
`;
    const { dir, env } = sshProject(body);
    writeFileSync(join(dir, 'hadesfile.yaml'), inventory().replace(/known_hosts: .*\n/, '') + body); // only ~/.ssh/known_hosts (empty HOME)
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
    expect(r.stderr).toContain('--accept-new-hosts');
    expect(onHost('h2', 'test -e /srv/ran && echo ran || echo no').trim()).toBe('no');

    const r2 = await runCli(['plan', 'p', '--output', 'plain', '--accept-new-hosts'], { cwd: dir, env });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    const kh = join(env.HOME, '.ssh/known_hosts');
    expect(readFileSync(kh, 'utf8')).toContain(lab.hosts[1]!.addr);
    expect((await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env })).code).toBe(0);

    // Replace the recorded key with another host's key of the same type: now it is "changed".
    const other = readFileSync(lab.knownHosts, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${lab.hosts[0]!.addr} `))!;
    const line = readFileSync(kh, 'utf8').trim().split(' ');
    writeFileSync(kh, `${line[0]} ${other.split(' ').slice(1).join(' ')}\n`);
    const r3 = await runCli(['plan', 'p', '--output', 'plain', '--accept-new-hosts'], { cwd: dir, env });
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/CHANGED|changed/);
  });
});

describe('unreachable hosts', () => {
  it('a host that is down fails that host with a clear message, bounded by the connect timeout; the others still run', async () => {
    const base = lab.hosts[0]!.addr.split('.').slice(0, 3).join('.');
    // "down" refuses; "silent" accepts TCP and never speaks SSH: only the connect timeout can
    // end its connect, so the run finishing at all (within the test's timeout) is the bound.
    const held: net.Socket[] = [];
    const silent = net.createServer((sock) => held.push(sock));
    await new Promise<void>((res) => silent.listen(0, `${base}.197`, res));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      const { dir, env } = sshProject(`  down: { addr: ${base}.250, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }
  silent: { addr: ${base}.197, port: ${silentPort}, user: ${lab.user}, identity_file: ${lab.clientKey} }
jobs:
  a:
    actions:
      - run: "true"
plans:
  p:
    steps:
      - { name: s, job: a, targets: [h1, down, silent] }
`);
      // the extra hosts go into the hosts map of the inventory
      const text = readFileSync(join(dir, 'hadesfile.yaml'), 'utf8');
      const [inv, body] = [text.slice(0, text.indexOf('targets:')), text.slice(text.indexOf('jobs:'))];
      const extra = text.slice(text.indexOf('  down:'), text.indexOf('jobs:'));
      writeFileSync(join(dir, 'hadesfile.yaml'), inv + extra + text.slice(text.indexOf('targets:'), text.indexOf('  down:')) + body);
      const r = await runCli(['plan', 'p', '--output', 'plain', '--connect-timeout', '2s'], { cwd: dir, env });
      expect(r.code).toBe(1);
      expect(held.length).toBeGreaterThan(0); // the silent host was really connected to
      expect(r.stdout).toMatch(/down: FAILED: .*down.*(refused|unreachable)/i);
      expect(r.stdout).toMatch(/silent: FAILED: .*no answer within 2s/);
      expect(r.stdout).toMatch(/h1: ok/);
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
    }
  });
});

describe('registry to hosts', () => {
  it("the registry guide's complete example runs on lab hosts; every host ends with the right bytes and mode; a second run sends no bytes", async () => {
    const work = mkdtempSync(join(tmpdir(), 'hades-guide-'));
    // Every host is reached through a byte-counting proxy: what a run sends to a host is
    // measured on the wire, not taken from Hades's own status lines.
    const hosts = lab.hosts.slice(0, 6);
    const via = await countingProxies(
      lab,
      new Map(hosts.map((h) => [h.name, { addr: h.addr, hostKey: labHostKey(lab, h.name) }])),
      join(work, 'known_hosts'),
    );
    try {
      // The guide's complete example (../shared/seeds), with only the registry path and the
      // restart command adapted to the lab; inventory: the lab hosts as app-servers.
      const seed = readFileSync(join(__dirname, '../../examples/registry-guide.yaml'), 'utf8');
      const body = seed
        .slice(seed.indexOf('registries:'))
        .replace('path: /var/hades/artifacts', `path: ${work}/registry`)
        .replace('- run: systemctl restart myapp', '- run: /opt/myapp/app > /opt/myapp/ran');
      const inv = inventory(lab.user, hosts, via).replace('targets:\n  web:', 'targets:\n  build-server: [localhost]\n  app-servers:');
      const { dir, env } = sshProject('');
      writeFileSync(join(dir, 'hadesfile.yaml'), inv + body);
      mkdirSync(join(dir, 'build'));
      // A 1 MiB payload (incompressible text after the script's exit): big against the SSH
      // traffic of a run without it, so a resent payload cannot hide in the count.
      const PAYLOAD = 1024 * 1024;
      const script = '#!/bin/sh\necho myapp\nexit 0\n';
      const pad = randomBytes(PAYLOAD)
        .toString('base64')
        .replace(/(.{76})/g, '$1\n')
        .slice(0, PAYLOAD - script.length - 1);
      writeFileSync(join(dir, 'build/myapp'), `${script}${pad}\n`);
      expect(statSync(join(dir, 'build/myapp')).size).toBe(PAYLOAD);
      const r = await runCli(['plan', 'release', '--output', 'json', '--cache-dir', join(work, 'cache')], { cwd: dir, env });
      expect(r.code, r.stdout.slice(-3000) + r.stderr).toBe(0);
      for (const h of hosts) expect(onHost(h.name, 'cat /opt/myapp/ran; stat -c %a /opt/myapp/app')).toBe('myapp\n755\n');
      const first = via.sent();
      // The count sees the payload: each host received at least its bytes on the first run.
      for (const h of hosts) expect(first.get(h.name)!, h.name).toBeGreaterThan(PAYLOAD);
      const inodes = hosts.map((h) => onHost(h.name, 'stat -c %i /opt/myapp/app'));
      const r2 = await runCli(['plan', 'release', '--output', 'json', '--cache-dir', join(work, 'cache')], { cwd: dir, env });
      expect(r2.code).toBe(0);
      const second = via.sent();
      // On the wire: the second run sent each host its commands only — far less than the payload.
      for (const h of hosts) expect(second.get(h.name)! - first.get(h.name)!, h.name).toBeLessThan(PAYLOAD / 8);
      const pulls = jsonEvents(r2.stdout).filter((e) => e.type === 'action.end' && e.kind === 'pull');
      expect(pulls.length).toBe(7); // canary 1 + all 6
      // The guide pulls with the default mode 0644 then runs chmod +x: the mode is put back
      // without sending bytes; the file itself is never rewritten.
      for (const e of pulls) expect(e.status === 'unchanged' || /no bytes sent/.test(e.message)).toBe(true);
      expect(hosts.map((h) => onHost(h.name, 'stat -c %i /opt/myapp/app'))).toEqual(inodes);
      expect(existsSync(join(work, 'registry/myapp/index.json'))).toBe(true);
    } finally {
      await via.close();
    }
  });
});
