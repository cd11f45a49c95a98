/**
 * Live progress of long transfers and the TTY view at fleet size, through the built CLI:
 *  - a push to a real docker-registry (through oras) and a copy to a real sshd, each throttled
 *    by a delay proxy, report increasing `action.progress` events ending at the total (JSON),
 *    and the TTY view shows the byte counter (a real terminal: tmux);
 *  - 64 hosts in a 20-row terminal: the frame is redrawn in place and never scrolls into the
 *    terminal's history (tmux keeps every line that left the screen), the failed host is named.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, jsonEvents, project, runCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import { type DelayProxy, type ExtraSshd, startLabProxy, startSshd } from '../lab/lab.js';
import { startRegistry, type TestRegistry } from '../lab/registry.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const SPINNER = /^\s*[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /m;

function tmuxAvailable(): boolean {
  return spawnSync('tmux', ['-V']).status === 0;
}

/**
 * Runs `cmd` in a detached tmux session of `cols`×`rows` on a private server; samples the
 * visible screen every 100 ms until the command ends. Returns the samples and the whole
 * history (every line that scrolled off the top, then the screen).
 */
async function inTmux(
  cmd: string,
  size: { cols: number; rows: number },
  env: Record<string, string>,
): Promise<{ samples: string[]; history: string; code: number }> {
  const sock = `hades-test-${process.pid}-${randomBytes(3).toString('hex')}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  tmux('-f', '/dev/null', 'new-session', '-d', '-x', String(size.cols), '-y', String(size.rows), `${cmd}; echo "EXIT=$?"; sleep 600`);
  tmux('set-option', '-g', 'status', 'off');
  tmux('set-option', '-g', 'history-limit', '50000');
  const samples: string[] = [];
  try {
    for (let i = 0; i < 1200; i++) {
      const screen = tmux('capture-pane', '-p');
      samples.push(screen);
      const m = /EXIT=(\d+)/.exec(screen);
      if (m) {
        const history = tmux('capture-pane', '-p', '-S', '-', '-E', '-');
        return { samples, history, code: Number(m[1]) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`tmux run did not end: ${samples.at(-1)}`);
  } finally {
    spawnSync('tmux', ['-L', sock, 'kill-server']);
  }
}

describe('live progress of long transfers', () => {
  const lab = requireLab();
  let sshd: ExtraSshd;
  let hostProxy: DelayProxy;
  let registry: TestRegistry;
  let regProxy: DelayProxy;
  let dir: string;

  beforeAll(async () => {
    expect(tmuxAvailable(), 'tmux is needed for the TTY tests (.ci/install installs it)').toBe(true);
    sshd = await startSshd(lab, { name: 'progress' });
    // ~1 MiB in flight per 150 ms each way: 16 MiB take a few seconds.
    hostProxy = await startLabProxy(lab, { host: sshd.host.addr, port: 22 }, 150);
    registry = await startRegistry();
    regProxy = await startLabProxy(lab, { host: '127.0.0.1', port: registry.port }, 150);
    dir = project({});
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'hosts'));
    execFileSync('chown', [lab.user, join(dir, 'hosts')]);
    writeFileSync(join(dir, 'big.bin'), randomBytes(SIZE));
    writeFileSync(join(dir, 'known_hosts'), `${hostProxy.listen.host} ${sshd.hostKey}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  slow: { type: oci, url: "${regProxy.listen.host}:22/progress", plain_http: true }
hosts:
  build: { local: true }
  far: { addr: ${hostProxy.listen.host}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }
known_hosts: [./known_hosts]
jobs:
  publish:
    artifacts:
      app: { path: ./big.bin }
    actions:
      - push: { registry: slow, artifact: app, name: app, tag: "\${TAG}" }
  ship:
    actions:
      - copy: { src: ./big.bin, dst: "${dir}/hosts/big-\${TAG}.bin" }
plans:
  release:
    env: { TAG: "\${TAG}" }
    steps:
      - { name: publish, job: publish, targets: build }
      - { name: ship, job: ship, targets: far }
`,
    );
  }, 60_000);
  afterAll(async () => {
    await regProxy?.close();
    await hostProxy?.close();
    await registry?.stop();
    await sshd?.stop();
  });

  const env = () => ({ HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', XDG_CACHE_HOME: join(dir, 'cache') });

  it('--output json: the push and the copy report increasing progress ending at the total; the audit log keeps none of it', async () => {
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: { ...env(), TAG: 'v1' } });
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    const events = jsonEvents(r.stdout);
    for (const kind of ['push', 'copy']) {
      const p = events.filter((e) => e.type === 'action.progress' && e.kind === kind);
      expect(p.length, `${kind} progress events`).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < p.length; i++) expect(p[i].bytes).toBeGreaterThanOrEqual(p[i - 1].bytes);
      expect(p.at(-1)).toMatchObject({ bytes: SIZE, total: SIZE });
      expect(p[0].bytes).toBeLessThan(SIZE);
      // At most ~2 per second: consecutive events at least 500 ms apart.
      for (let i = 1; i < p.length; i++) expect(Date.parse(p[i].ts) - Date.parse(p[i - 1].ts)).toBeGreaterThanOrEqual(490);
    }
    expect(readFileSync(join(dir, 'hosts', 'big-v1.bin')).length).toBe(SIZE);
    const runs = join(dir, '.hades', 'runs');
    const audit = readdirSync(runs)
      .map((f) => readFileSync(join(runs, f), 'utf8'))
      .join('');
    expect(audit).toContain('"action.end"');
    expect(audit).not.toContain('"action.progress"');
  }, 120_000);

  it('the TTY view shows the byte counter of the running transfer', async () => {
    const e = { ...env(), TAG: 'v2', NO_COLOR: '1', CI: '' };
    const r = await inTmux(`cd '${dir}' && node '${CLI}' plan release`, { cols: 120, rows: 30 }, e);
    expect(r.code, r.history).toBe(0);
    const seen = r.samples.join('\n');
    // The copy through the throttling proxy: a counter part-way (not 0, not yet the total), with a rate.
    expect(seen).toMatch(/far: copy .* {2}(?!0\.0\/)(\d|1[0-5])\.\d\/16\.0 MiB {2}\d+(\.\d)? [KM]iB\/s/);
    // oras's own writes are sampled every 250 ms: under load they may jump; the counter is shown.
    expect(seen).toMatch(/localhost: push app:v2 to slow {2}\d+(\.\d)?\/16\.0 MiB/);
    expect(r.history).toContain('✔ step 2/2: ship — job ship: 1 ok');
  }, 120_000);
});

describe('the TTY view at fleet size', () => {
  it('64 hosts in a 20-row terminal: the frame never scrolls into the history; the failed host is named', async () => {
    expect(tmuxAvailable(), 'tmux is needed for the TTY tests (.ci/install installs it)').toBe(true);
    const names = Array.from({ length: 64 }, (_, i) => `web-${i + 1}`);
    const dir = project({
      'hadesfile.yaml': `hosts:
${names.map((n) => `  ${n}: { local: true }`).join('\n')}
targets:
  fleet: [${names.join(', ')}]
jobs:
  work:
    actions:
      - run: sleep 0.2; echo "working on $HADES_HOST_NAME"; sleep 0.2; test "$HADES_HOST_NAME" != web-23
plans:
  p:
    steps:
      - { name: rollout, job: work, targets: fleet, parallelism: 16, max_failures: 2 }
`,
    });
    const r = await inTmux(`cd '${dir}' && node '${CLI}' plan p`, { cols: 100, rows: 20 }, { NO_COLOR: '1', CI: '' });
    expect(r.code, r.history).toBe(4);
    // It was live: some screens showed running hosts and collapsed batches.
    const live = r.samples.filter((s) => SPINNER.test(s));
    expect(live.length).toBeGreaterThan(0);
    expect(live.some((s) => /batch [2-4]\/4: .*running/.test(s) && /^ {2}batch 1\/4: 16 ok$/m.test(s))).toBe(true);
    for (const s of r.samples) expect(s.split('\n').length).toBeLessThanOrEqual(21);
    // Nothing of a frame left the screen: no spinner line and no running host in the history.
    expect(r.history).not.toMatch(SPINNER);
    expect(r.history).not.toContain('│ working on');
    expect(r.history).toContain('✔ step 1/1: rollout — job work: 63 ok, 1 failed (4 batches)');
    expect(r.history).toMatch(/✖ web-23: failed — /);
    expect(r.history).toContain('COMPLETED WITH FAILURES (1 host(s) failed');
    // Locks of 64 hosts: one line each way, not 64.
    expect(r.history).toContain('locks taken on 64 host(s)');
    expect(r.history).toContain('locks released on 64 host(s)');
    expect(r.history).not.toContain('lock web-1: taken');
  }, 120_000);
});
