/**
 * Security issue 11 on a real host: a user who owns (or can write) a directory on the
 * destination path must not be able to make a root delivery write, chmod or chown
 * anything else. The attacker is the real lab user hades-nosudo, acting inside the same
 * host (its own mount namespace: an extra sshd from startSshd), while the delivery runs
 * through the built CLI as hades-sudo with `become`. After each attack, what lies outside
 * is byte-identical and unchanged (lstat: type, mode, owner), and Hades either refused with
 * the clear error or delivered correctly.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { jsonEvents, runCli } from '../helpers/cli.js';
import { describeLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';

describeLab('deliveries under a hostile directory owner (real sshd, real users)', (lab) => {
  let sshd: ExtraSshd;
  let pid: string;
  const attacker = lab.nosudoUser;
  const watchers: ChildProcess[] = [];

  beforeAll(async () => {
    sshd = await startSshd(lab, { name: 'hostile' });
    pid = readFileSync(sshd.host.pidFile, 'utf8').trim();
  });
  afterAll(async () => {
    for (const w of watchers) if (w.exitCode === null && w.pid) process.kill(-w.pid, 'SIGKILL');
    await sshd?.stop();
  });

  /** A shell script as root inside the host's mount namespace. */
  const asRoot = (script: string): string => execFileSync('nsenter', ['-t', pid, '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
  /** A shell script as the attacker (a real unprivileged user) on the same host. */
  const asAttacker = (script: string): string =>
    execFileSync('nsenter', ['-t', pid, '-m', '--', 'runuser', '-u', attacker, '--', 'sh', '-c', script], { encoding: 'utf8' });
  /** A loop the attacker keeps running during the delivery (stopped by the test's `touch /srv/app/stop`-like file). */
  const watch = (script: string): ChildProcess => {
    const w = spawn('nsenter', ['-t', pid, '-m', '--', 'runuser', '-u', attacker, '--', 'sh', '-c', script], {
      stdio: 'ignore',
      detached: true,
    });
    watchers.push(w);
    return w;
  };
  /** type, mode, owner (lstat) and sha256 of everything under `dir`, to compare before/after. */
  const snapshot = (dir: string): string =>
    asRoot(`cd ${dir} && find . -exec stat -c '%n %F %a %U:%G' {} + | sort && find . -type f -exec sha256sum {} + | sort`);

  beforeEach(() => {
    asRoot(
      `rm -rf /srv/* /opt/* && mkdir -m 0700 /srv/secret && echo 'root only' > /srv/secret/keep && chmod 0600 /srv/secret/keep && ` +
        `mkdir -m 0755 /srv/etc-like && echo 'a=1' > /srv/etc-like/conf && mkdir /srv/app && chown ${attacker}: /srv/app && mkdir -m 0755 /opt/app`,
    );
  });

  function project(body: string, files: Record<string, string | Buffer> = {}): { dir: string; env: Record<string, string> } {
    const dir = mkdtempSync(join(tmpdir(), 'hades-hostile-'));
    mkdirSync(join(dir, 'home'));
    const known = join(dir, 'known_hosts');
    writeFileSync(known, `${sshd.knownHostsLine}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
  box: { addr: ${sshd.host.addr}, port: ${sshd.host.port}, user: ${lab.sudoUser}, identity_file: ${lab.clientKey} }
known_hosts: [${known}]
${body}`,
    );
    for (const [k, v] of Object.entries(files)) {
      mkdirSync(join(dir, k, '..'), { recursive: true });
      writeFileSync(join(dir, k), v);
    }
    return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } };
  }
  const plan = (job: string) => `plans:\n  p:\n    steps:\n      - { name: s, job: ${job}, targets: box }\n`;
  const run = (p: { dir: string; env: Record<string, string> }) => runCli(['plan', 'p', '--output', 'json'], { cwd: p.dir, env: p.env });
  const statuses = (stdout: string) =>
    jsonEvents(stdout)
      .filter((e) => e.type === 'action.end')
      .map((e) => e.status);

  it('a copy as root into a directory the attacker owns is refused, even while the attacker races for the temp file via /proc', async () => {
    const big = randomBytes(24 << 20);
    const p = project(
      `jobs:
  j:
    become: true
    actions:
      - copy: { src: files/big.bin, dst: /srv/app/big.bin, mode: 0644 }
${plan('j')}`,
      { 'files/big.bin': big },
    );
    const before = snapshot('/srv/secret');
    // The attacker swaps every temp name he can see (in his directory or in a command line) for a link into /srv/secret.
    watch(
      `while [ ! -e /srv/app/stop ]; do ` +
        `for f in /srv/app/.*hades-tmp*; do [ -e "$f" ] && [ ! -L "$f" ] && mv -f "$f" /srv/app/moved 2>/dev/null && ln -s /srv/secret/pwn "$f"; done; ` +
        `grep -aho '/srv/app/\\.big\\.bin\\.hades-tmp-[A-Za-z0-9-]*' /proc/[0-9]*/cmdline 2>/dev/null | while IFS= read -r m; do [ -L "$m" ] || ln -s /srv/secret/pwn "$m" 2>/dev/null; done; ` +
        `done`,
    );
    const r = await run(p);
    asAttacker('touch /srv/app/stop');
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toContain(`refusing to write under /srv/app: it is owned by ${attacker}:${attacker} with mode 755`);
    expect(r.stdout + r.stderr).toContain(`deliver as that user (become: ${attacker})`);
    expect(snapshot('/srv/secret')).toBe(before);
    expect(asRoot('ls -A /srv/app')).toBe('stop\n');
  });

  it('the hint works: delivering as the directory owner (become: that user) succeeds, and a second run is unchanged', async () => {
    const p = project(
      `jobs:
  j:
    become: ${attacker}
    actions:
      - copy: { src: files/a.txt, dst: /srv/app/a.txt, mode: 0640 }
${plan('j')}`,
      { 'files/a.txt': 'hello\n' },
    );
    const r = await run(p);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(asRoot('stat -c "%U %a" /srv/app/a.txt && cat /srv/app/a.txt')).toBe(`${attacker} 640\nhello\n`);
    const r2 = await run(p);
    expect(statuses(r2.stdout)).toEqual(['unchanged']);
  });

  it('mkdir never chowns through a symlink: the attacker points app/releases at a root-owned directory', async () => {
    asAttacker('ln -s /srv/etc-like /srv/app/releases');
    asRoot('ln -s /srv/etc-like /opt/rel'); // a link root made itself: still never changed through
    const before = snapshot('/srv/etc-like');
    for (const path of ['/srv/app/releases', '/opt/rel']) {
      const p = project(
        `jobs:
  j:
    become: true
    actions:
      - mkdir: { path: ${path}, owner: ${attacker}, mode: 0775 }
${plan('j')}`,
      );
      const r = await run(p);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toContain(
        path === '/opt/rel' ? '/opt/rel is a symbolic link: refusing to change it' : 'refusing to write under /srv/app',
      );
      expect(asRoot('stat -c "%F %a %U:%G" /srv/etc-like')).toBe('directory 755 root:root\n');
      expect(snapshot('/srv/etc-like')).toBe(before);
    }
  });

  it('dst swapped for a symlink to a directory during a slow transfer (sticky shared dir): the file replaces the link, never lands inside', async () => {
    // /srv/shared is like /tmp (root, 1777): the attacker owns the old dst and may replace it
    asRoot('mkdir -m 1777 /srv/shared && mkdir -m 0700 /srv/shared-secret && echo s > /srv/shared-secret/keep');
    asAttacker('echo mine > /srv/shared/big.bin');
    const before = snapshot('/srv/shared-secret');
    const big = randomBytes(24 << 20);
    const p = project(
      `jobs:
  j:
    become: true
    actions:
      - copy: { src: files/big.bin, dst: /srv/shared/big.bin, mode: 0644 }
${plan('j')}`,
      { 'files/big.bin': big },
    );
    // As soon as a temp appears (the bytes are streaming), the attacker replaces his dst with a link to a directory.
    const w = watch(
      `while [ ! -e /srv/shared/stop ]; do for f in /srv/shared/.big.bin.hades-tmp*; do ` +
        `if [ -e "$f" ]; then rm -f /srv/shared/big.bin && ln -s /srv/shared-secret /srv/shared/big.bin && touch /srv/shared/stop; fi; done; done`,
    );
    const r = await run(p);
    asRoot('touch /srv/shared/stop');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(statuses(r.stdout)).toEqual(['changed']);
    await new Promise((res) => (w.exitCode === null ? w.once('exit', res) : res(undefined)));
    expect(asRoot('ls -A /srv/shared | sort')).toBe('big.bin\nstop\n'); // the swap did happen, no temp left
    expect(asRoot('stat -c "%F %U %a" /srv/shared/big.bin')).toBe('regular file root 644\n');
    expect(asRoot('sha256sum < /srv/shared/big.bin').split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
    expect(snapshot('/srv/shared-secret')).toBe(before);
  });

  it('become into a root-owned 0755 directory: owner applied before mode (04755 survives), idempotent', async () => {
    const p = project(
      `jobs:
  j:
    become: true
    actions:
      - mkdir: { path: /opt/app/bin/sub, mode: 02775, owner: ${attacker} }
      - copy: { src: files/tool, dst: /opt/app/tool, mode: 04755, owner: ${attacker} }
      - template: { src: files/app.conf.j2, dst: /opt/app/app.conf, mode: 0640, owner: root }
${plan('j')}`,
      { 'files/tool': '#!/bin/sh\necho tool\n', 'files/app.conf.j2': 'host={{ host.name }}\n' },
    );
    const r = await run(p);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(statuses(r.stdout)).toEqual(['changed', 'changed', 'changed']);
    expect(
      asRoot(
        'stat -c "%n %F %U %a" /opt/app/bin /opt/app/bin/sub /opt/app/tool /opt/app/app.conf && cat /opt/app/app.conf && ls -A /opt/app',
      ),
    ).toBe(
      `/opt/app/bin directory root 755\n/opt/app/bin/sub directory ${attacker} 2775\n/opt/app/tool regular file ${attacker} 4755\n/opt/app/app.conf regular file root 640\nhost=box\napp.conf\nbin\ntool\n`,
    );
    const r2 = await run(p);
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    expect(statuses(r2.stdout)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });
});
