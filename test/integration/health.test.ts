/**
 * `health` on real OpenSSH hosts, through the built CLI. The hosts are this file's own
 * sshds (startSshd: own logs, so login and direct-tcpip counts are ours alone); the services
 * are real HTTP servers: in this process (the extra sshds share its network namespace), and
 * a python3 one inside the jump host's network namespace that only hj and hidden can reach.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptedLogins, logText, requireLab } from '../lab/helpers.js';
import { type ExtraSshd, type LabInfo, startSshd } from '../lab/lab.js';
import { jsonEvents, runCli, startCli } from '../helpers/cli.js';

let lab: LabInfo;
const hosts: ExtraSshd[] = [];
const servers: net.Server[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  lab = requireLab();
  for (const name of ['c1', 'c2', 'c3']) hosts.push(await startSshd(lab, { name: `health-${name}`, logLevel: 'DEBUG1' }));
});

afterAll(async () => {
  for (const s of servers) if (s instanceof http.Server) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(hosts.map((h) => h.stop()));
});

/** An HTTP server in this process answering `codes[i]` to the i-th request (the last code after that). */
async function service(codes: number[], body: (code: number) => string = (c) => (c === 200 ? 'all ok\n' : 'starting up\n')) {
  const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    const code = codes[Math.min(seen.length, codes.length - 1)]!;
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(code, { 'content-type': 'text/plain' }).end(body(code));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, seen };
}

function inventory(): string {
  const [c1, c2, c3] = hosts.map((h) => h.host);
  const line = (n: string, h: { addr: string; port: number }) =>
    `  ${n}: { addr: ${h.addr}, port: ${h.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }`;
  return `hosts:
${line('c1', c1!)}
${line('c2', c2!)}
${line('c3', c3!)}
  hj: { addr: ${lab.jumpHost!.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }
  hidden: { addr: ${lab.hiddenHost!.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey}, jump: hj }
targets:
  canary: [c1]
  rest: [c2, c3]
known_hosts: [${lab.knownHosts}, ${join(lab.dir, 'health-known_hosts')}]
`;
}

function project(body: string) {
  writeFileSync(join(lab.dir, 'health-known_hosts'), `${hosts.map((h) => h.knownHostsLine).join('\n')}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'hades-health-'));
  mkdirSync(join(dir, 'home'));
  writeFileSync(join(dir, 'hadesfile.yaml'), inventory() + body);
  return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } };
}

/** direct-tcpip channels the host's sshd opened to 127.0.0.1:port (its DEBUG1 log). */
function tunnels(h: ExtraSshd, port: number): number {
  return (logText(h.host).match(new RegExp(`server_request_direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${port}\\b`, 'g')) ?? [])
    .length;
}

/** Commands the host's sshd was asked to run (exec requests, its DEBUG1 log). */
function execs(h: ExtraSshd): number {
  return (logText(h.host).match(/server_input_channel_req: channel \d+ request exec /g) ?? []).length;
}

const rollout = (url: string, timeout = '2s', interval = '400ms') => `jobs:
  deploy:
    actions:
      - run: echo deployed
      - health: { http: "${url}", status: 200, contains: ok, timeout: ${timeout}, interval: ${interval} }
plans:
  p:
    steps:
      - { name: canary, job: deploy, targets: canary }
      - { name: rest, job: deploy, targets: rest }
`;

describe('health over SSH (real sshd)', () => {
  it('a canary whose health endpoint answers 503 fails the run: every attempt reported, no other host touched', async () => {
    const svc = await service([503]);
    const { dir, env } = project(rollout(`http://127.0.0.1:${svc.port}/healthz`));
    const before = hosts.map(execs);
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(1);
    const ev = jsonEvents(r.stdout);
    const attempts = ev.filter((e) => e.type === 'action.attempt');
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.map((e) => e.attempt)).toEqual(attempts.map((_, i) => i + 1));
    for (const a of attempts)
      expect(a).toMatchObject({ host: 'c1', kind: 'health', status: 'failed', message: 'answered 503 "starting up"' });
    // Each attempt was one GET, made by c1's sshd through a direct-tcpip channel of Hades' connection.
    expect(svc.seen.length).toBe(attempts.length);
    expect(svc.seen[0]!.url).toBe('/healthz');
    expect(svc.seen[0]!.headers.host).toBe(`127.0.0.1:${svc.port}`);
    expect(tunnels(hosts[0]!, svc.port)).toBe(attempts.length);
    const end = ev.find((e) => e.type === 'action.end' && e.kind === 'health')!;
    expect(end.status).toBe('failed');
    expect(end.message).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${svc.port}/healthz answered 503 "starting up" after [0-9.]+m?s, ${attempts.length} attempts \\(timeout 2s\\)$`,
      ),
    );
    // Nothing ran on c2 and c3, nothing was probed from them: the run only connected to them
    // (the preflight host-key check connects every host of the plan before any action) and
    // took and gave back its host lock there (three commands on every host: take — all hosts at
    // once —, confirm, release; src/engine/lock.ts).
    const lockCommands = 3;
    expect(ev.filter((e) => e.type === 'lock.acquired').map((e) => e.host)).toEqual(['c1', 'c2', 'c3']);
    expect(hosts.map((h, i) => execs(h) - before[i]!)).toEqual([1 + lockCommands, lockCommands, lockCommands]);
    expect(hosts.map((h) => tunnels(h, svc.port))).toEqual([attempts.length, 0, 0]);
    expect(ev.filter((e) => e.type === 'host.start').map((e) => e.host)).toEqual(['c1']);
    expect(ev.find((e) => e.type === 'run.end')!.summary.steps.map((s: { status: string }) => s.status)).toEqual(['failed', 'not-run']);
  });

  it('a service that becomes healthy passes; the attempts are reported in plain output and the audit log', async () => {
    const svc = await service([503, 503, 503, 200]);
    const { dir, env } = project(rollout(`http://127.0.0.1:${svc.port}/healthz`, '30s', '200ms'));
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('[c1] ~ '));
    expect(lines).toEqual([
      ...[1, 2, 3].map((n) => `[c1] ~ health http://127.0.0.1:${svc.port}/healthz: attempt ${n} not yet: answered 503 "starting up"`),
      `[c1] ~ health http://127.0.0.1:${svc.port}/healthz: attempt 4 ok: answered 200 with "ok"`,
    ]);
    // Step 2 ran on c2 and c3, each probing once (the service answers 200 from now on).
    expect(r.stdout).toMatch(/\[c2\] ~ health .*: attempt 1 ok: answered 200 with "ok"/);
    expect(r.stdout).toMatch(/\[c3\] ~ health .*: attempt 1 ok: answered 200 with "ok"/);
    expect(svc.seen.length).toBe(6);
    const audit = /audit log: (\S+)/.exec(r.stderr)![1]!;
    const logged = jsonEvents((await import('node:fs')).readFileSync(audit, 'utf8')).filter((e) => e.type === 'action.attempt');
    expect(logged.map((e) => `${e.host} ${e.attempt} ${e.status}`).sort()).toEqual([
      'c1 1 failed',
      'c1 2 failed',
      'c1 3 failed',
      'c1 4 ok',
      'c2 1 ok',
      'c3 1 ok',
    ]);
  });

  it('--dry-run shows the probe, its budget and where it is made from, and connects to nothing', async () => {
    const svc = await service([200]);
    const { dir, env } = project(rollout(`http://127.0.0.1:${svc.port}/healthz`, '1m', '2s'));
    const before = hosts.map((h) => acceptedLogins(h.host));
    const r = await runCli(['plan', 'p', '--dry-run'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`[health] health http://127.0.0.1:${svc.port}/healthz
         http GET http://127.0.0.1:${svc.port}/healthz: healthy on status 200 with a body containing "ok"
           from the host, through its SSH connection (direct-tcpip; nothing runs on the host)
           an attempt every 2s for at most 1m (at most 30 attempts; each waits at most 10s for an answer)`);
    expect(svc.seen.length).toBe(0);
    expect(hosts.map((h, i) => acceptedLogins(h.host) - before[i]!)).toEqual([0, 0, 0]);
  });

  it('reaches a service only the host can reach: hidden (behind jump host hj) probes an address of its own network namespace', async () => {
    const hidden = lab.hiddenHost!;
    const addr = hidden.realAddr; // 127.X.Y.254 exists only inside hj's network namespace
    const py = spawn(
      'nsenter',
      [
        `--net=/proc/${lab.jumpHost!.pid}/ns/net`,
        'python3',
        '-c',
        `import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hidden ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer((sys.argv[1], 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()`,
        addr,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(py);
    const port = Number(((await once(py.stdout!, 'data')) as [Buffer])[0].toString().trim());
    expect(port).toBeGreaterThan(0);
    // From here (the orchestrator's network namespace) nothing answers there.
    const direct = await new Promise<string>((res) => {
      const s = net.connect({ host: addr, port }, () => {
        s.destroy();
        res('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
    });
    expect(direct).toBe('ECONNREFUSED');
    const { dir, env } = project(`jobs:
  check:
    actions:
      - health: { http: "http://${addr}:${port}/", contains: "hidden ok", timeout: 10s }
      - health: { tcp: "${addr}:${port}", timeout: 10s }
plans:
  p:
    steps:
      - { name: s, job: check, targets: [hidden] }
`);
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const attempts = jsonEvents(r.stdout).filter((e) => e.type === 'action.attempt');
    expect(attempts.map((e) => [e.host, e.attempt, e.status, e.message])).toEqual([
      ['hidden', 1, 'ok', 'answered 200 with "hidden ok"'],
      ['hidden', 1, 'ok', 'connected'],
    ]);
    py.kill('SIGTERM');
  });

  it('a refused connection is what an attempt saw; a tcp probe passes once the port opens', async () => {
    // A port that is closed now (bound then released) and opened by the test after the first attempt.
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const { dir, env } = project(`jobs:
  check:
    actions:
      - health: { tcp: "127.0.0.1:${port}", timeout: 30s, interval: 200ms }
plans:
  p:
    steps:
      - { name: s, job: check, targets: canary }
`);
    const { child, done } = startCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    let out = '';
    let opened = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (!opened && out.includes('"type":"action.attempt"')) {
        opened = true;
        const s = net.createServer((c2) => c2.destroy());
        servers.push(s);
        s.listen(port, '127.0.0.1');
      }
    });
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const attempts = jsonEvents(r.stdout).filter((e) => e.type === 'action.attempt');
    expect(attempts[0]).toMatchObject({ attempt: 1, status: 'failed', message: 'connection refused' });
    expect(attempts.at(-1)).toMatchObject({ status: 'ok', message: 'connected' });
    expect(attempts.slice(0, -1).every((e) => e.message === 'connection refused')).toBe(true);
  });

  it('Ctrl-C during a health wait stops it at once, with the usual summary', async () => {
    const svc = await service([503]);
    const { dir, env } = project(rollout(`http://127.0.0.1:${svc.port}/healthz`, '10m', '200ms'));
    const { child, done } = startCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env });
    let out = '';
    let sent = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (!sent && out.includes('attempt 2 not yet')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stdout).toContain('INTERRUPTED');
    expect(r.stdout).toMatch(
      /\[c1\] FAILED health http:\/\/127\.0\.0\.1:\d+\/healthz \([^)]*\): health wait interrupted after [0-9.]+m?s, \d+ attempts \(last: http:\/\/127\.0\.0\.1:\d+\/healthz answered 503 "starting up"\)/,
    );
    const attempts = r.stdout.split('\n').filter((l) => l.startsWith('[c1] ~ ')).length;
    expect(svc.seen.length).toBe(attempts);
    expect(r.stdout).not.toContain('[c2]');
  });

  it('https: the certificate is verified (a self-signed one is refused, seen as a TLS error), insecure: true skips it; header values from env are sent and never shown', async () => {
    const certDir = mkdtempSync(join(lab.dir, 'health-tls-'));
    const [key, cert] = [join(certDir, 'key.pem'), join(certDir, 'cert.pem')];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const seen: Array<string | undefined> = [];
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200).end('secure ok');
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const token = 'hx-Sekrit-7781';
    const probe = (extra: string) =>
      `{ http: "https://127.0.0.1:${port}/ready", contains: "secure ok", headers: { Authorization: "Bearer \${API_TOKEN}" }, timeout: 1s, interval: 400ms${extra} }`;
    const { dir, env } = project(`jobs:
  strict:
    actions:
      - health: ${probe('')}
  lax:
    actions:
      - health: ${probe(', insecure: true')}
plans:
  strict:
    env: { API_TOKEN: "\${API_TOKEN}" }
    steps:
      - { name: s, job: strict, targets: canary }
  lax:
    env: { API_TOKEN: "\${API_TOKEN}" }
    steps:
      - { name: s, job: lax, targets: canary }
`);
    const runEnv = { ...env, API_TOKEN: token, NODE_EXTRA_CA_CERTS: '' };
    const refused = await runCli(['plan', 'strict', '--output', 'json'], { cwd: dir, env: runEnv });
    expect(refused.code, refused.stderr).toBe(1);
    const tries = jsonEvents(refused.stdout).filter((e) => e.type === 'action.attempt');
    expect(tries.length).toBeGreaterThanOrEqual(1);
    for (const t of tries) expect(t).toMatchObject({ status: 'failed', message: 'TLS: self-signed certificate' });
    expect(seen).toEqual([]); // no request was sent over an unverified connection

    const lax = await runCli(['plan', 'lax', '--output', 'plain'], { cwd: dir, env: runEnv });
    expect(lax.code, lax.stdout + lax.stderr).toBe(0);
    expect(lax.stdout).toContain(`[c1] ~ health https://127.0.0.1:${port}/ready: attempt 1 ok: answered 200 with "secure ok"`);

    // Trusting the test CA: verified, against the certificate's IP address.
    const trusted = await runCli(['plan', 'strict', '--output', 'plain'], { cwd: dir, env: { ...runEnv, NODE_EXTRA_CA_CERTS: cert } });
    expect(trusted.code, trusted.stdout + trusted.stderr).toBe(0);
    expect(seen).toEqual([`Bearer ${token}`, `Bearer ${token}`]);

    const dry = await runCli(['plan', 'strict', '--dry-run'], { cwd: dir, env: runEnv });
    expect(dry.stdout).toContain('header authorization: Bearer ***');
    expect(dry.stdout).toContain('(certificate verified)');
    const dryJson = await runCli(['plan', 'lax', '--dry-run', '--output', 'json'], { cwd: dir, env: runEnv });
    expect(dryJson.code).toBe(0);
    const runs = join(dir, '.hades', 'runs');
    const audit = readdirSync(runs)
      .map((f) => readFileSync(join(runs, f), 'utf8'))
      .join('');
    expect(audit).toContain('"type":"action.attempt"');
    for (const text of [refused.stdout, refused.stderr, lax.stdout, trusted.stdout, dry.stdout, dryJson.stdout, audit])
      expect(text).not.toContain('Sekrit');
  });

  it('a host whose sshd forbids TCP forwarding fails the probe at once, with a hint (no polling)', async () => {
    const svc = await service([200]);
    const strict = await startSshd(lab, { name: 'health-nofwd', extraConfig: ['AllowTcpForwarding no'] });
    try {
      writeFileSync(join(lab.dir, 'health-known_hosts'), `${[...hosts, strict].map((h) => h.knownHostsLine).join('\n')}\n`);
      const dir = mkdtempSync(join(tmpdir(), 'hades-health-'));
      mkdirSync(join(dir, 'home'));
      writeFileSync(
        join(dir, 'hadesfile.yaml'),
        `hosts:
  nofwd: { addr: ${strict.host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }
known_hosts: [${join(lab.dir, 'health-known_hosts')}]
jobs:
  check:
    actions:
      - health: { http: "http://127.0.0.1:${svc.port}/", timeout: 5m }
plans:
  p:
    steps:
      - { name: s, job: check, targets: [nofwd] }
`,
      );
      const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } });
      expect(r.code, r.stderr).toBe(1);
      const ev = jsonEvents(r.stdout);
      expect(ev.filter((e) => e.type === 'action.attempt')).toEqual([]);
      expect(ev.find((e) => e.type === 'action.end')!.message).toMatch(
        /^nofwd: sshd refused to open a TCP connection to 127\.0\.0\.1:\d+: administratively prohibited \(it said: open failed\)\n {4}hint: health probes need TCP forwarding on the host's sshd: AllowTcpForwarding yes/,
      );
      expect(svc.seen.length).toBe(0);
    } finally {
      await strict.stop();
    }
  });
});
