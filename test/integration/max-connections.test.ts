/**
 * --max-connections (issue 16 part 1) on real sshds, through the built CLI: 42 hosts (three
 * extra sshds, each listening on 14 ports — sshd's limit is 16 listen sockets: 42 endpoints,
 * 42 separate connections), the number of established connections sampled on the lab side
 * (the sshds' end of each TCP connection, `ss`) every 50 ms during the run never exceeds the cap; the run still succeeds, also when a single
 * batch is larger than the cap (its hosts queue).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';
import type { LabInfo } from '../lab/lab.js';

const SSHDS = 3;
const PORTS = [22, ...Array.from({ length: 13 }, (_, i) => 2201 + i)];
const HOSTS = SSHDS * PORTS.length;
const name = (i: number) => `n${String(i + 1).padStart(2, '0')}`;

let lab: LabInfo;
const sshds: ExtraSshd[] = [];
/** Host i: the (addr, port) it is. */
const endpoint = (i: number) => ({ sshd: sshds[Math.floor(i / PORTS.length)]!, port: PORTS[i % PORTS.length]! });
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  lab = requireLab();
  for (let i = 0; i < SSHDS; i++) sshds.push(await startSshd(lab, { name: `many${i}`, extraPorts: PORTS.slice(1) }));
}, 60_000);
afterAll(async () => {
  for (const s of sshds) await s.stop();
});

/**
 * The sshds' established connections right now: their side of each TCP connection, whose
 * local address is an sshd's listening address and port (the client's side has the same
 * address on loopback, but an ephemeral port).
 */
function established(): Promise<number> {
  const listening = new Set(sshds.flatMap((s) => PORTS.map((p) => `${s.host.addr}:${p}`)));
  return new Promise((resolve, reject) =>
    execFile('ss', ['-Htn', 'state', 'established'], (e, out) => {
      if (e) return reject(e);
      const local = out
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[2] ?? '')
        .filter((a) => listening.has(a));
      resolve(local.length);
    }),
  );
}

/** Runs the CLI while sampling the established connections every 50 ms; returns the result and the most seen at once. */
async function sampled(args: string[]) {
  let peak = 0;
  let samples = 0;
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      // One `ss` listing is no atomic snapshot (see below): a connection closed while the kernel
      // walks its table and the one opened after it can both be listed. An overshoot that is
      // real lasts longer than two back-to-back listings, so a sample is the smaller of two.
      peak = Math.max(peak, Math.min(await established(), await established()));
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const res = await runCli(args, { cwd: dir, env });
  stop = true;
  await sampler;
  return { res, peak, samples };
}

describe('--max-connections on 42 lab hosts', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hades-maxconn-'));
    mkdirSync(join(dir, 'home'));
    const hosts = Array.from({ length: HOSTS }, (_, i) => endpoint(i));
    writeFileSync(
      join(dir, 'known_hosts'),
      hosts.map(({ sshd, port }) => `${port === 22 ? sshd.host.addr : `[${sshd.host.addr}]:${port}`} ${sshd.hostKey}\n`).join(''),
    );
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
${hosts.map((h, i) => `  ${name(i)}: { addr: ${h.sshd.host.addr}, port: ${h.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }`).join('\n')}
targets:
  all: [${hosts.map((_, i) => name(i)).join(', ')}]
known_hosts: [${join(dir, 'known_hosts')}]
jobs:
  work:
    actions:
      - run: sleep 0.2; echo "did $HADES_HOST_NAME"
  slow:
    actions:
      - run: sleep 2; echo "did $HADES_HOST_NAME"
plans:
  batched:
    steps:
      - { name: first, job: work, targets: all, parallelism: 4 }
      - { name: second, job: work, targets: all, parallelism: 4 }
  halves:
    steps:
      - { name: front, job: work, targets: [${hosts
        .slice(0, HOSTS / 2)
        .map((_, i) => name(i))
        .join(', ')}], parallelism: 7 }
      - { name: back, job: slow, targets: [${hosts
        .slice(HOSTS / 2)
        .map((_, i) => name(i + HOSTS / 2))
        .join(', ')}] }
  onebatch:
    steps:
      - { name: first, job: work, targets: all }
      - { name: second, job: work, targets: all }
`,
    );
    env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
  });

  it('42 hosts, parallelism 4, --max-connections 8: never more than 8 established connections; the run succeeds on every host', async () => {
    const { res, peak, samples } = await sampled(['plan', 'batched', '-o', 'plain', '--max-connections', '8']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(samples).toBeGreaterThan(5);
    // Session 6 instrumented Hades: never more than 8 sockets between net.connect and the FIN
    // (every slot is handed on only after the old socket's FIN). A single `ss` dump is no
    // snapshot (the kernel walks its socket hash over several reads), so 8 connections recycled
    // one at a time were listed as up to 13 (test/lab/ss-snapshot-experiment.mjs); hence each
    // sample is the smaller of two back-to-back listings (sampled above).
    expect(peak, `peak ${peak}\n${res.stderr}`).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThanOrEqual(4); // a batch of 4 ran at once
    for (let i = 0; i < HOSTS; i++) expect(res.stdout.match(new RegExp(`did ${name(i)}$`, 'gm'))).toHaveLength(2);
    // The locks were taken and released on every host through the same budget.
    expect(res.stdout.match(/^lock n\d\d: taken/gm)).toHaveLength(HOSTS);
    expect(res.stdout.match(/^lock n\d\d: released$/gm)).toHaveLength(HOSTS);
  }, 120_000);

  it('a single batch of 42 hosts with --max-connections 8 still runs: its hosts queue for connections', async () => {
    const { res, peak } = await sampled(['plan', 'onebatch', '-o', 'plain', '--max-connections', '8', '--no-lock']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(peak, `peak ${peak}\n${res.stderr}`).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < HOSTS; i++) expect(res.stdout.match(new RegExp(`did ${name(i)}$`, 'gm'))).toHaveLength(2);
  }, 120_000);

  it("a host's connection is closed after its last batch: while the second half runs, the first half is no longer connected", async () => {
    // Default cap (256): all 42 are connected before step 1; the 21 of step 1 have no later work.
    const run = startCli(['plan', 'halves', '-o', 'plain', '--no-lock'], { cwd: dir, env });
    let out = '';
    run.child.stdout!.on('data', (c) => (out += c));
    let before = 0;
    let during = 0;
    let samplesDuring = 0;
    let stop = false;
    const sampler = (async () => {
      while (!stop) {
        const n = await established();
        if (/^== step back: \d+ host/m.test(out)) {
          during = Math.max(during, n);
          samplesDuring++;
        } else before = Math.max(before, n);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const res = await run.done;
    stop = true;
    await sampler;
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(before).toBeGreaterThan(HOSTS / 2); // the preflight connected (nearly) every host: more than the second half
    expect(samplesDuring).toBeGreaterThan(5);
    expect(during).toBeLessThanOrEqual(HOSTS / 2);
    expect(during).toBeGreaterThanOrEqual(HOSTS / 2 - 1);
  }, 120_000);

  it('a bad --max-connections is a user error (exit 2) with a hint', async () => {
    const r = await runCli(['plan', 'batched', '--max-connections', '0'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--max-connections must be a whole number of at least 1, not "0"');
    expect(r.stderr).toContain('e.g. --max-connections 64 (default 256)');
  });
});
