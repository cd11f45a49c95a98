/**
 * Secrets never reach output, end to end through the built CLI, on `local: true` hosts and
 * one real-sshd lab host: plain, JSON and TTY output, both dry-runs, the audit log and the
 * error messages. The secrets come from a .env file, from the OS environment and from a
 * plan var built from one; they are printed whole, split inside a UTF-8 character, line by
 * line (a multi-line key) and transformed by a template filter (`| upper`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, jsonEvents, runCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import type { LabInfo } from '../lab/lab.js';

// "tok-" then "€" (3 bytes: the split falls after its first byte), then a tail to look for.
const API_TOKEN = 'tok-€uro-Sekrit-42';
const KEY_LINES = ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7', 'Zm9vYmFyYmF6cXV4cGVtbGluZXR3b3RocmVlZm91cmZpdmVzaXg='];
const TLS_KEY = ['-----BEGIN PRIVATE KEY-----', ...KEY_LINES, '-----END PRIVATE KEY-----'].join('\n');
const DB_PASSWORD = 'pw-Xyzzy-77';
const CI_JOB_TOKEN = 'ci-job-tok-Q9Q9';
const TEMPLATE_CONTENT = `token=${API_TOKEN.toUpperCase()}\n`;
const TEMPLATE_SHA = createHash('sha256').update(TEMPLATE_CONTENT).digest('hex');

/** Every fragment that would give a secret away (in any case). */
function expectNoSecret(text: string, where: string): void {
  const lower = text.toLowerCase();
  for (const bad of [
    API_TOKEN,
    'uro-sekrit',
    'sekrit-42',
    ...KEY_LINES,
    DB_PASSWORD,
    'xyzzy',
    CI_JOB_TOKEN,
    'q9q9',
    TEMPLATE_SHA,
    TEMPLATE_SHA.slice(0, 12),
  ])
    expect(lower, `${where} must not contain ${bad}`).not.toContain(bad.toLowerCase());
  expect(text, `${where}: no mojibake of a split character`).not.toContain('\ufffd');
}

let lab: LabInfo;
let dir: string;
let outDir: string;
const childEnv = () => ({ HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', DB_PASSWORD, CI_JOB_TOKEN, HADES_TEST_LEAK: 'leaky-value' });

function hadesfile(extraAction = ''): string {
  const h = lab.hosts.find((x) => x.name === 'h8')!;
  return `hosts:
  l1: { local: true }
  l2: { local: true }
  h8: { addr: ${h.addr}, port: ${h.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }
targets:
  all: [l1, l2, h8]
  locals: [l1]
known_hosts: [${lab.knownHosts}]
jobs:
  show:
    actions:
      - mkdir: { path: "${outDir}/\${HADES_HOST_NAME}" }
      - template: { src: files/app.conf.njk, dst: "${outDir}/\${HADES_HOST_NAME}/app.conf" }
      - name: whole
        run: echo "token is $API_TOKEN"
      - name: split
        run: printf '%s' "$API_TOKEN" | head -c 5; sleep 0.3; printf '%s\\n' "$API_TOKEN" | tail -c +6
      - name: key
        run: printf '%s\\n' "$TLS_KEY" > "${outDir}/$HADES_HOST_NAME/key.pem"; cat "${outDir}/$HADES_HOST_NAME/key.pem"
      - name: derived
        run: echo "url is $DB_URL"; sleep "\${PAUSE:-0}"
${extraAction}      - name: last
        run: echo "last $API_TOKEN"
  gate:
    local: true
    actions:
      - wait: { message: "ship with \${API_TOKEN} and \${DB_URL}?" }
  envdump:
    actions:
      - name: env
        run: env | sort
plans:
  p:
    env:
      DB_URL: "postgres://u:\${DB_PASSWORD}@db"
    steps:
      - { name: show, job: show, targets: all }
      - { name: envdump, job: envdump, targets: locals }
  gated:
    env:
      DB_URL: "postgres://u:\${DB_PASSWORD}@db"
    steps:
      - { name: gate, job: gate, targets: localhost }
`;
}

function inPty(args: string[], answer?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const env = childEnv();
    const cmd = `stty cols 200 rows 60; ${['node', CLI, ...args].map((a) => `'${a}'`).join(' ')}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: dir, env: { ...process.env, CI: '', NO_COLOR: '1', ...env } });
    let out = '';
    let answered = false;
    child.stdout.on('data', (c) => {
      out += c;
      if (answer !== undefined && !answered && out.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${answer}\r`);
      }
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

function auditLogs(): string {
  const d = join(dir, '.hades', 'runs');
  return readdirSync(d)
    .map((f) => readFileSync(join(d, f), 'utf8'))
    .join('\n');
}

describe('secrets never reach output', () => {
  beforeAll(() => {
    lab = requireLab();
    dir = mkdtempSync(join(tmpdir(), 'hades-secrets-'));
    outDir = mkdtempSync(join(tmpdir(), 'hades-secrets-out-'));
    chmodSync(outDir, 0o1777); // the lab user (h8) writes its own subdirectory
    mkdirSync(join(dir, 'home'));
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files/app.conf.njk'), 'token={{ env.API_TOKEN | upper }}\n');
    writeFileSync(join(dir, '.env'), `API_TOKEN=${API_TOKEN}\nTLS_KEY="${TLS_KEY}"\n`);
    writeFileSync(join(dir, 'hadesfile.yaml'), hadesfile());
  });
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('plain output and the audit log: whole, split, multi-line, derived, templated and OS-env secrets are masked', async () => {
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env: childEnv() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(outDir, 'l1/app.conf'), 'utf8')).toBe(TEMPLATE_CONTENT); // the real value reached the host
    expect(readFileSync(join(outDir, 'h8/key.pem'), 'utf8')).toBe(`${TLS_KEY}\n`);
    expectNoSecret(r.stdout + r.stderr, 'plain output');
    for (const h of ['l1', 'h8']) {
      expect(r.stdout).toContain(`[${h}] | token is ***`);
      expect(r.stdout).toContain(`[${h}] | ***`); // the split print and every key line
      expect(r.stdout).toContain(`[${h}] | url is ***`);
    }
    const log = auditLogs();
    expectNoSecret(log, 'audit log');
    const meta = JSON.parse(log.split('\n')[0]!);
    expect(meta.steps[0].env).toMatchObject({ DB_URL: '***' });
  });

  it('local commands get the job env and a minimal base, never the orchestrator environment', async () => {
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env: childEnv() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expectNoSecret(r.stdout + r.stderr, 'json output');
    const ev = jsonEvents(r.stdout);
    const envLines = ev.filter((e) => e.type === 'action.output' && e.step === 'envdump').map((e) => e.data as string);
    expect(envLines.some((l) => l.startsWith('PATH='))).toBe(true);
    expect(envLines).toContain(`HOME=${join(dir, 'home')}`);
    expect(envLines.some((l) => l.startsWith('CI_JOB_TOKEN='))).toBe(false);
    expect(envLines.some((l) => l.startsWith('HADES_TEST_LEAK='))).toBe(false);
    expect(envLines).toContain('API_TOKEN=***'); // the job's own env does arrive
    const outputs = ev.filter((e) => e.type === 'action.output' && e.step === 'show').map((e) => `${e.host} ${e.data}`);
    for (const h of ['l1', 'h8']) {
      expect(outputs).toContain(`${h} token is ***`);
      expect(outputs).toContain(`${h} url is ***`);
    }
    const start = ev.find((e) => e.type === 'action.start' && e.kind === 'template')!;
    expect(start.command).toContain('***');
  });

  it('TTY output', async () => {
    // The pause keeps the line on screen (the live view shows a host's latest output line).
    const r = await inPty(['plan', 'p', '--output', 'tty', '-e', 'PAUSE=1']);
    expect(r.code, r.out).toBe(0);
    expectNoSecret(r.out, 'tty output');
    expect(r.out).toContain('url is ***');
  });

  it('a gate message built from secrets: masked in the terminal prompt and in the events', async () => {
    const tty = await inPty(['plan', 'gated', '--output', 'tty'], 'n');
    expect(tty.code, tty.out).toBe(3);
    expect(tty.out).toContain('ship with *** and ***? [y/N]');
    expectNoSecret(tty.out, 'gate prompt');
    const json = await runCli(['plan', 'gated', '--output', 'json', '--yes'], { cwd: dir, env: childEnv() });
    expect(json.code, json.stdout + json.stderr).toBe(0);
    expect(jsonEvents(json.stdout).find((e) => e.type === 'action.start')?.command).toContain('gate: ship with *** and ***?');
    expectNoSecret(json.stdout + json.stderr + auditLogs(), 'gate events');
  });

  it('dry-run, text and JSON: derived var masked, template content hidden, digest redacted', async () => {
    const text = await runCli(['plan', 'p', '--dry-run'], { cwd: dir, env: childEnv() });
    expect(text.code, text.stderr).toBe(0);
    expectNoSecret(text.stdout + text.stderr, 'dry-run text');
    expect(text.stdout).toContain('DB_URL="***"');
    expect(text.stdout).toContain('content hidden: uses secret API_TOKEN');
    const json = await runCli(['plan', 'p', '--dry-run', '--output', 'json'], { cwd: dir, env: childEnv() });
    expect(json.code, json.stderr).toBe(0);
    expectNoSecret(json.stdout + json.stderr, 'dry-run json');
    const plan = JSON.parse(json.stdout);
    expect(plan.steps[0].env.DB_URL).toBe('***');
    const tpl = plan.steps[0].batches[0].hosts[0].actions.find((a: { kind: string }) => a.kind === 'template');
    expect(tpl.source.content).toBe('(content hidden: uses secret API_TOKEN)');
    expect(tpl.source.sha256).toBe('***');
  });

  it('an error message that carries a secret value is redacted (planning, validate, every output mode)', async () => {
    writeFileSync(join(dir, 'bad.yaml'), hadesfile(`      - mkdir: { path: "relative/\${API_TOKEN}/\${DB_URL}" }\n`));
    for (const args of [
      ['plan', 'p'],
      ['plan', 'p', '--output', 'json'],
      ['plan', 'p', '--dry-run'],
      ['validate', 'p'],
    ]) {
      const r = await runCli([...args, '-f', 'bad.yaml'], { cwd: dir, env: childEnv() });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('is not an absolute path');
      expect(r.stderr).toContain('relative/***');
      expectNoSecret(r.stdout + r.stderr, `${args.join(' ')} error`);
    }
  });
});
