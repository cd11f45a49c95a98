/**
 * The gpg action end to end through the built CLI: a real key made by `gpg` in the test,
 * served armored and binary by a local HTTPS server whose certificate is signed by a test CA
 * (trusted by the CLI child only, through its own NODE_EXTRA_CA_CERTS), delivered to
 * `local: true` hosts and to a real-sshd lab host with become.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quote } from '../../src/shell/command.js';
import { TransportPool } from '../../src/transport/pool.js';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { type GpgHome, gpgHome } from '../helpers/gpg.js';
import { hostSpec, labInventory, requireLab } from '../lab/helpers.js';
import type { LabInfo } from '../lab/lab.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let g: GpgHome;
let fpr: string;
let otherFpr: string;
let armored: Buffer;
let binary: Buffer;
let dearmored: Buffer; // what `gpg --dearmor` makes of the armored key
let bothKeys: Buffer;
let pki: string;
let server: Server;
let plain: HttpServer;
let base: string;
let plainBase: string;
const hits = new Map<string, number>();
let plainHits = 0;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: pki, stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  g = gpgHome();
  fpr = g.genKey('Repo Signing <repo@example.com>');
  otherFpr = g.genKey('Someone Else <else@example.com>');
  armored = g.gpg(['--armor', '--export', fpr]);
  binary = g.gpg(['--export', fpr]);
  dearmored = g.gpg(['--dearmor'], armored);
  bothKeys = g.gpg(['--armor', '--export', fpr, otherFpr]);
  expect(armored.toString()).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);

  // A test CA and a server certificate it signs, for 127.0.0.1.
  pki = mkdtempSync(join(tmpdir(), 'hades-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=hades test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
  openssl(['req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(pki, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.pem',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  ]);

  plain = createHttpServer((_req, res) => {
    plainHits++;
    res.end(armored);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainBase = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;

  server = createServer({ key: readFileSync(join(pki, 'srv.key')), cert: readFileSync(join(pki, 'srv.pem')) }, (req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/key.asc') return res.end(armored);
    if (path === '/key.gpg') return res.end(binary);
    if (path === '/both.asc') return res.end(bothKeys);
    if (path === '/moved') return res.writeHead(302, { location: '/key.asc' }).end();
    if (path === '/to-http') return res.writeHead(301, { location: `${plainBase}/key.asc` }).end();
    if (path === '/page') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>not a key</p>');
    if (path === '/slow') return; // never answers: the action's timeout ends it
    res.writeHead(404, 'Not Found').end('no such key');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  g?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await new Promise((r) => plain?.close(r));
});

/** The CLI trusts the test CA; the test process's own NODE_EXTRA_CA_CERTS is not touched. */
const cliEnv = () => ({ NODE_EXTRA_CA_CERTS: join(pki, 'ca.pem') });

function localProject(actions: string): { dir: string; out: string } {
  const dir = project({ 'hadesfile.yaml': '' });
  const out = join(dir, 'out');
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `hosts:
  a: { local: true }
  b: { local: true }
targets:
  both: [a, b]
jobs:
  keys:
    env:
      OUT: { default: ${out} }
    actions:
      - mkdir: { path: "\${OUT}/\${HADES_HOST_NAME}" }
${actions}
plans:
  release:
    steps:
      - { name: keys, job: keys, targets: both }
`,
  );
  return { dir, out };
}

const statuses = (stdout: string, kind = 'gpg') =>
  jsonEvents(stdout)
    .filter((e) => e.type === 'action.end' && e.kind === kind)
    .map((e) => `${e.host}:${e.status}`)
    .sort();

describe('gpg on local hosts', () => {
  it('downloads once per run, dearmors byte-identically to gpg --dearmor, pins by fingerprint and sha256; a second run is unchanged', async () => {
    const spaced = fpr
      .replace(/(.{4})/g, '$1 ')
      .trim()
      .toLowerCase();
    const { dir, out } =
      localProject(`      - gpg: { src: "${base}/key.asc", path: "\${OUT}/\${HADES_HOST_NAME}/repo.gpg", dearmor: true, fingerprint: "${spaced}" }
      - gpg: { src: "${base}/key.asc", path: "\${OUT}/\${HADES_HOST_NAME}/repo.asc", mode: "0640", sha256: "sha256:${sha(armored)}" }
      - gpg: { src: "${base}/moved", path: "\${OUT}/\${HADES_HOST_NAME}/moved.gpg", dearmor: true, fingerprint: [${fpr}] }
      - gpg: { src: "${base}/key.gpg", path: "\${OUT}/\${HADES_HOST_NAME}/bin.gpg", dearmor: true }`);
    hits.clear();
    const dry = await runCli(['plan', 'release', '--dry-run'], { cwd: dir, env: cliEnv() });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`${base}/key.asc -> ${out}/a/repo.gpg mode 0644`);
    expect(dry.stdout).toContain(`pinned: primary-key fingerprint ${fpr} (exactly these primary keys)`);
    expect(dry.stdout).toContain(`pinned: sha256 ${sha(armored)} of the download`);
    expect(dry.stdout).toContain('dearmor: ASCII armor converted to a binary keyring on the orchestrator');
    expect(dry.stdout).toContain('not pinned: any OpenPGP public key served at that URL is accepted');
    expect(dry.stdout).toContain('timeout 30s');
    expect(hits.size).toBe(0); // a dry run downloads nothing

    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: cliEnv() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const h of ['a', 'b']) {
      const keyring = readFileSync(join(out, h, 'repo.gpg'));
      expect(sha(keyring)).toBe(sha(dearmored));
      expect(keyring.equals(binary)).toBe(true);
      expect(statSync(join(out, h, 'repo.gpg')).mode & 0o7777).toBe(0o644);
      expect(readFileSync(join(out, h, 'repo.asc')).equals(armored)).toBe(true);
      expect(statSync(join(out, h, 'repo.asc')).mode & 0o7777).toBe(0o640);
      expect(readFileSync(join(out, h, 'moved.gpg')).equals(dearmored)).toBe(true);
      expect(readFileSync(join(out, h, 'bin.gpg')).equals(binary)).toBe(true);
      expect(readdirSync(join(out, h)).sort()).toEqual(['bin.gpg', 'moved.gpg', 'repo.asc', 'repo.gpg']); // no temp files
    }
    // Two hosts × two actions on /key.asc: one download. The redirect and the binary: one each.
    expect(Object.fromEntries(hits)).toEqual({ '/key.asc': 2, '/moved': 1, '/key.gpg': 1 });
    // ('/key.asc' twice: once directly, once as the target of /moved — a different src URL.)
    expect(statuses(r.stdout)).toEqual([
      'a:changed',
      'a:changed',
      'a:changed',
      'a:changed',
      'b:changed',
      'b:changed',
      'b:changed',
      'b:changed',
    ]);
    const end = jsonEvents(r.stdout).find((e) => e.type === 'action.end' && e.kind === 'gpg' && e.host === 'a');
    expect(end?.message).toBe(`${binary.length} bytes (dearmored), fingerprint ${fpr}, sha256 ${sha(binary).slice(0, 12)}`);

    const before = statSync(join(out, 'a', 'repo.gpg'));
    const r2 = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: cliEnv() });
    expect(r2.code).toBe(0);
    expect(statuses(r2.stdout)).toEqual([
      'a:unchanged',
      'a:unchanged',
      'a:unchanged',
      'a:unchanged',
      'b:unchanged',
      'b:unchanged',
      'b:unchanged',
      'b:unchanged',
    ]);
    const after = statSync(join(out, 'a', 'repo.gpg'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('a wrong fingerprint, a wrong sha256, an extra unpinned key: the action fails and no file reaches a host', async () => {
    for (const [what, action, msg] of [
      ['fingerprint', `fingerprint: "${otherFpr}"`, `its primary key fingerprint is ${fpr}; pinned: ${otherFpr}`],
      ['sha256', `sha256: "${'0'.repeat(64)}"`, `its sha256 is ${sha(armored)}, the pin says ${'0'.repeat(64)}`],
    ] as const) {
      const { dir, out } = localProject(
        `      - gpg: { src: "${base}/key.asc", path: "\${OUT}/\${HADES_HOST_NAME}/repo.gpg", dearmor: true, ${action} }`,
      );
      const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: cliEnv() });
      expect(r.code, what).toBe(1);
      const ends = jsonEvents(r.stdout).filter((e) => e.type === 'action.end' && e.kind === 'gpg');
      expect(ends.length, what).toBeGreaterThan(0);
      for (const e of ends) {
        expect(e.status).toBe('failed');
        expect(e.message).toBe(
          `gpg ${out}/${e.host}/repo.gpg: the key from ${base}/key.asc is refused: ${msg} (nothing was written on the host)`,
        );
      }
      for (const h of ['a', 'b']) expect(existsSync(join(out, h)) ? readdirSync(join(out, h)) : [], what).toEqual([]);
    }
    // Two keys served where one is pinned: refused, the unpinned one named.
    const { dir, out } = localProject(
      `      - gpg: { src: "${base}/both.asc", path: "\${OUT}/\${HADES_HOST_NAME}/repo.gpg", fingerprint: "${fpr}" }`,
    );
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: cliEnv() });
    expect(r.code).toBe(1);
    const end = jsonEvents(r.stdout).find((e) => e.type === 'action.end' && e.kind === 'gpg');
    expect(end?.message).toContain(
      `is refused: its primary key fingerprints are ${fpr}, ${otherFpr}; pinned: ${fpr} (not pinned: ${otherFpr})`,
    );
    expect(existsSync(join(out, 'a', 'repo.gpg'))).toBe(false);
  });

  it('refused and failed downloads are clear: redirect to http://, 404, not a key, timeout, an untrusted certificate', async () => {
    const cases: Array<[string, string, string, Record<string, string>?]> = [
      [
        '/to-http',
        '',
        `downloading ${base}/to-http failed: redirected to http://127.0.0.1:${plainBase.split(':')[2]}/key.asc: refused (keys are fetched over https:// only)`,
      ],
      ['/missing', '', `downloading ${base}/missing failed: HTTP 404 Not Found`],
      ['/page', '', `the key from ${base}/page is refused: not an OpenPGP keyring: byte 0 (0x3c) is not a packet header`],
      ['/slow', ', timeout: 1s', `downloading ${base}/slow failed: timed out after 1s (the action's timeout: raises it)`],
      ['/key.asc', '', `downloading ${base}/key.asc failed: TLS certificate not accepted`, { NODE_EXTRA_CA_CERTS: '' }],
    ];
    plainHits = 0;
    for (const [path, extra, msg, env] of cases) {
      const { dir, out } = localProject(`      - gpg: { src: "${base}${path}", path: "\${OUT}/\${HADES_HOST_NAME}/repo.gpg"${extra} }`);
      const r = await runCli(['plan', 'release'], { cwd: dir, env: { ...cliEnv(), ...env } });
      expect(r.code, path).toBe(1);
      expect(r.stdout + r.stderr, path).toContain(msg);
      expect(r.stdout + r.stderr, path).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(join(out, 'a', 'repo.gpg')), path).toBe(false);
    }
    expect(plainHits).toBe(0); // the http:// redirect was never followed
  });

  it('validation: http:// src, a key id instead of a fingerprint, a bad sha256 and a bare mode are user errors (exit 2)', async () => {
    const { dir } = localProject(
      `      - gpg: { src: "http://example.com/key.asc", path: /etc/apt/keyrings/x.gpg, fingerprint: "0x71180FDE68FE4B3E", sha256: abc, mode: 644 }`,
    );
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gpg.src "http://example.com/key.asc" is plain http://: refused');
    expect(r.stderr).toContain('a key id is not enough');
    expect(r.stderr).toContain('gpg.sha256 "abc" is not 64 hex digits');
    expect(r.stderr).toContain('ambiguous mode');
  });
});

describe('gpg on a lab host and a local host in one step', () => {
  let lab: LabInfo;
  let pool: TransportPool;
  beforeAll(() => {
    lab = requireLab();
    pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
  });
  afterAll(() => pool?.closeAll());

  /** Step 1 on l1 (the orchestrator, into a temp dir), step 2 on h7 (over SSH, become root, into its private /etc/app). */
  function labProject(gpgFields: string): { dir: string; dest: string; localDest: string } {
    const dest = `/etc/app/keys-${randomBytes(5).toString('hex')}`;
    const dir = project({ 'hadesfile.yaml': '' });
    const localDest = join(dir, 'keys');
    const h = lab.hosts.find((x) => x.name === 'h7')!;
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
  l1: { local: true }
  h7: { addr: ${h.addr}, port: ${h.port}, user: ${lab.sudoUser}, identity_file: ${lab.clientKey} }
known_hosts: [${lab.knownHosts}]
jobs:
  keys:
    env:
      DEST:
    actions:
      - mkdir: { path: "\${DEST}", mode: 0755 }
        become: true
      - gpg: { src: "${base}/key.asc", path: "\${DEST}/repo.gpg", dearmor: true, owner: root, group: root, ${gpgFields} }
        become: true
plans:
  release:
    steps:
      - { name: local, job: keys, targets: [l1], env: { DEST: ${localDest} } }
      - { name: remote, job: keys, targets: [h7], env: { DEST: ${dest} } }
`,
    );
    return { dir, dest, localDest };
  }

  const env = (dir: string) => ({ ...cliEnv(), HOME: dir, SSH_AUTH_SOCK: '' });

  it('delivers the dearmored key under become (sha256 equals gpg --dearmor), downloaded once for both steps; then unchanged; a wrong pin leaves no file', async () => {
    const { dir, dest, localDest } = labProject(`fingerprint: "${fpr}"`);
    hits.clear();
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: env(dir) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Object.fromEntries(hits)).toEqual({ '/key.asc': 1 });
    expect(statuses(r.stdout)).toEqual(['h7:changed', 'l1:changed']);
    const t = pool.get(hostSpec(lab, 'h7', { name: 'h7-gpg', user: lab.sudoUser }));
    const st = await t.exec(
      `sha256sum ${quote(`${dest}/repo.gpg`)} && stat -c '%a %U %G' ${quote(`${dest}/repo.gpg`)} && ls -A ${quote(dest)}`,
    );
    expect(st.stdout).toBe(`${sha(dearmored)}  ${dest}/repo.gpg\n644 root root\nrepo.gpg\n`);
    expect(existsSync(dest)).toBe(false); // h7's /etc/app is its own
    expect(readFileSync(join(localDest, 'repo.gpg')).equals(dearmored)).toBe(true);

    const r2 = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir, env: env(dir) });
    expect(r2.code).toBe(0);
    expect(statuses(r2.stdout)).toEqual(['h7:unchanged', 'l1:unchanged']);

    const bad = labProject(`fingerprint: "${otherFpr}"`);
    const r3 = await runCli(['plan', 'release', '--output', 'json'], { cwd: bad.dir, env: env(bad.dir) });
    expect(r3.code).toBe(1);
    expect(statuses(r3.stdout)).toEqual(['l1:failed']); // the first step fails: the second never starts
    expect(readdirSync(bad.localDest)).toEqual([]);
    const ls = await t.exec(`test -e ${quote(bad.dest)}; echo $?`);
    expect(ls.stdout).toBe('1\n');
  });

  it('a wrong pin fails on the lab host too, with nothing written there', async () => {
    const bad = labProject(`sha256: "${'f'.repeat(64)}"`);
    const file = readFileSync(join(bad.dir, 'hadesfile.yaml'), 'utf8').replace(/ {6}- \{ name: local.*\n/, '');
    writeFileSync(join(bad.dir, 'hadesfile.yaml'), file);
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: bad.dir, env: env(bad.dir) });
    expect(r.code).toBe(1);
    expect(statuses(r.stdout)).toEqual(['h7:failed']);
    const t = pool.get(hostSpec(lab, 'h7', { name: 'h7-gpg', user: lab.sudoUser }));
    const ls = await t.exec(`ls -A ${quote(bad.dest)}`);
    expect(ls).toMatchObject({ exitCode: 0, stdout: '' }); // mkdir ran; no key, no temp file
  });
});
