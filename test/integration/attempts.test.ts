/**
 * `timeout` and `retries` on real parts: a timed-out command's whole process group is
 * killed on a real sshd host (ps in that host's mount namespace proves it), transfers
 * leave no temp file, retries are counted on the host, and Ctrl-C during a retry delay
 * stops at once with the usual summary.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLab } from '../lab/helpers.js';
import { type ExtraSshd, pidsInMountNs, startSshd } from '../lab/lab.js';
import { jsonEvents, runCli, startCli } from '../helpers/cli.js';

describeLab('timeouts and retries on a real sshd host', (lab) => {
  let sshd: ExtraSshd;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    sshd = await startSshd(lab, { name: 'attempts' });
    onHost(`chown ${lab.user} /opt /srv`);
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  /** Runs a script inside the host's mount namespace (its private /opt). */
  function onHost(script: string): string {
    return execFileSync('nsenter', ['-t', String(sshd.host.pid), '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
  }
  /** The command lines of every process in the host's mount namespace (what ps shows there). */
  function hostProcs(): string[] {
    const ns = readFileSyncSafe(`/proc/${sshd.host.pid}/ns/mnt`);
    return pidsInMountNs(new Set([ns])).map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        return '';
      }
    });
  }
  function readFileSyncSafe(link: string): string {
    return execFileSync('readlink', [link], { encoding: 'utf8' }).trim();
  }

  function setup(body: string, files: Record<string, string> = {}): void {
    dir = mkdtempSync(join(tmpdir(), 'hades-attempts-'));
    mkdirSync(join(dir, 'home'));
    writeFileSync(join(dir, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:\n  h: { addr: ${sshd.host.addr}, user: ${lab.user}, identity_file: ${lab.clientKey} }\nknown_hosts: [./known_hosts]\n${body}`,
    );
    for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
    env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
  }

  it('timeout kills the whole process group on the host: a background child, one that ignores SIGTERM, and the sleep', async () => {
    setup(`jobs:
  j:
    actions:
      - name: hang
        timeout: 1s
        run: |
          sleep 4711 &
          sh -c 'trap "" TERM; sleep 4713' &
          sleep 4712
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    const mine = (ps: string[]) => ps.filter((c) => /^sleep 471[123]$/.test(c)).sort();
    const { child, done } = startCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    // While it runs, all three are there (the test's premise).
    let seen: string[] = [];
    for (let i = 0; i < 200 && seen.length < 3; i++) {
      seen = mine(hostProcs());
      if (seen.length < 3) await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toEqual(['sleep 4711', 'sleep 4712', 'sleep 4713']);
    const r = await done;
    expect(child.exitCode).toBe(1);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const end = jsonEvents(r.stdout).find((e) => e.type === 'action.end');
    expect(end?.status).toBe('failed');
    expect(end?.message).toBe('timed out after 1s');
    // After the run: nothing of that command is left on the host.
    expect(mine(hostProcs())).toEqual([]);
    // The sessions are gone too: only the listening sshd remains.
    expect(hostProcs().filter((c) => !c.endsWith(' startups'))).toEqual([]);
  });

  it('with become (sudo to root): the root members of the group are killed too', async () => {
    setup(`jobs:
  j:
    become: true
    actions:
      - timeout: 1s
        run: |
          sleep 4721 &
          sleep 4722
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      readFileSync(join(dir, 'hadesfile.yaml'), 'utf8').replace(`user: ${lab.user},`, `user: ${lab.sudoUser},`),
    );
    const mine = (ps: string[]) => ps.filter((c) => /^sleep 472[12]$/.test(c)).sort();
    const { done } = startCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    let seen: string[] = [];
    for (let i = 0; i < 200 && seen.length < 2; i++) {
      seen = mine(hostProcs());
      if (seen.length < 2) await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toEqual(['sleep 4721', 'sleep 4722']);
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(jsonEvents(r.stdout).find((e) => e.type === 'action.end')?.message).toBe('timed out after 1s');
    expect(mine(hostProcs())).toEqual([]);
    expect(hostProcs().filter((c) => !c.endsWith(' startups'))).toEqual([]);
  });

  it('a timed-out copy is killed mid-transfer and leaves no temp file on the host', async () => {
    const src = join(mkdtempSync(join(tmpdir(), 'hades-attempts-big-')), 'blob');
    writeFileSync(src, Buffer.alloc(64 * 1024 * 1024, 1));
    setup(`jobs:
  j:
    actions:
      - mkdir: { path: /srv/rel }
      - copy: { src: ${src}, dst: /srv/rel/blob }
        timeout: 3s
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    const pidOf = (cmd: string): number | undefined => {
      const ns = readFileSyncSafe(`/proc/${sshd.host.pid}/ns/mnt`);
      return pidsInMountNs(new Set([ns])).find((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() === cmd;
        } catch {
          return false;
        }
      });
    };
    const { done } = startCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    // Hold the host's writer (the delivery's `cat` into its private temp file): the transfer
    // is then certainly still running when the timeout fires.
    let cat: number | undefined;
    for (let i = 0; i < 4000 && cat === undefined; i++) {
      cat = pidOf('cat');
      if (cat === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    expect(cat).toBeDefined();
    process.kill(cat!, 'SIGSTOP');
    expect(onHost('ls -A /srv/rel')).toMatch(/^\.blob\.hades-tmp-/);
    // The timeout's kill reaches the host: SIGTERM sent, then it polls while the group lives
    // (the stopped writer keeps it alive). Let the writer go on: it dies of the pending SIGTERM.
    let polling: number | undefined;
    for (let i = 0; i < 4000 && polling === undefined; i++) {
      polling = pidOf('sleep 0.1');
      if (polling === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    expect(polling).toBeDefined();
    process.kill(cat!, 'SIGCONT');
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const end = jsonEvents(r.stdout).find((e) => e.type === 'action.end' && e.kind === 'copy');
    expect(end?.message).toBe('timed out after 3s');
    expect(onHost('ls -A /srv/rel')).toBe('');
    expect(hostProcs().filter((c) => !c.endsWith(' startups'))).toEqual([]);
  });

  it('retries are counted on the host; the final outcome says "ok after 3 attempts"', async () => {
    onHost('rm -f /opt/count');
    setup(`jobs:
  j:
    actions:
      - name: flaky
        run: 'n=$(cat /opt/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /opt/count; echo "attempt $n"; [ $n -ge 3 ] || exit 7'
        retries: 4
        delay: 100ms
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    const dry = await runCli(['plan', 'p', '--dry-run'], { cwd: dir, env });
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain('up to 5 attempts, 100ms apart');
    expect(onHost('cat /opt/count 2>/dev/null || echo none')).toBe('none\n');

    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(onHost('cat /opt/count')).toBe('3\n');
    const ev = jsonEvents(r.stdout);
    const retries = ev.filter((e) => e.type === 'action.retry');
    expect(retries.map((e) => [e.attempt, e.attempts, e.exitCode, e.delayMs])).toEqual([
      [1, 5, 7, 100],
      [2, 5, 7, 100],
    ]);
    expect(ev.filter((e) => e.type === 'action.output').map((e) => e.data)).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
    const end = ev.find((e) => e.type === 'action.end');
    expect(end).toMatchObject({ status: 'ok', attempts: 3, message: 'ok after 3 attempts' });
    expect(ev.find((e) => e.type === 'action.start')?.command).toContain('up to 5 attempts, 100ms apart');

    // The audit log holds the same events; plain output announces each retry.
    const audit = readFileSync(join(dir, '.hades/runs', `${ev[0]!.runId}.jsonl`), 'utf8');
    expect(audit.split('\n').filter((l) => l.includes('"type":"action.retry"'))).toHaveLength(2);
    onHost('rm -f /opt/count');
    const plain = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(plain.stdout).toContain('[h] attempt 1/5 of flaky failed (exit 7): command exited with code 7:');
    expect(plain.stdout).toContain('; attempt 2/5 in 100ms');
    expect(plain.stdout).toContain('[h] ok flaky');
    expect(plain.stdout).toContain(': ok after 3 attempts');
  });

  it('all attempts failing: "failed after N attempts", exit 1, counted on the host', async () => {
    onHost('rm -f /opt/count');
    setup(`jobs:
  j:
    actions:
      - run: 'echo x >> /opt/count; exit 3'
        retries: 2
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(onHost('wc -l < /opt/count').trim()).toBe('3');
    expect(r.stdout).toMatch(/FAILED run: echo x >> \/opt\/count; exit 3 \([^)]*\): failed after 3 attempts: command exited with code 3/);
  });

  it('Ctrl-C during a retry delay stops at once: no further attempt, the usual summary, exit 130', async () => {
    onHost('rm -f /opt/count');
    setup(`jobs:
  j:
    actions:
      - name: flaky
        run: 'echo x >> /opt/count; exit 1'
        retries: 3
        delay: 10m
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`);
    const { child, done } = startCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    let out = '';
    let sent = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (!sent && out.includes('attempt 2/4 in 10m')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('INTERRUPTED');
    expect(r.stdout).toMatch(/FAILED flaky \([^)]*\): interrupted before attempt 2 of 4: command exited with code 1/);
    expect(onHost('wc -l < /opt/count').trim()).toBe('1');
  });
});
