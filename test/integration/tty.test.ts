/**
 * The TTY view through a real pseudo-terminal (util-linux `script`): the live frame, the
 * gate asked on the terminal, approved or declined by typing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, demoEnv, ROOT } from '../helpers/cli.js';

async function inPty(args: string[], answer: string): Promise<{ code: number | null; out: string }> {
  const demo = await demoEnv();
  return new Promise((resolve) => {
    const cmd = `stty cols 100 rows 40; ${['node', CLI, ...args].map((a) => `'${a}'`).join(' ')}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, CI: '', NO_COLOR: '1', ...demo } });
    let out = '';
    let answered = false;
    child.stdout.on('data', (c) => {
      out += c;
      if (!answered && out.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${answer}\r`);
      }
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

// --no-lock: cli.test.ts and examples.test.ts run these same projects (same .hades/locks) at the
// same time, and a second run of a project would rightly find its hosts locked (exit 5).
// The host locks are tested in lock.test.ts.
describe('tty output', () => {
  it('renders steps and hosts, asks at the gate; "y" approves', async () => {
    const r = await inPty(['plan', 'release', '-f', 'hadesfile.example.yaml', '--no-lock'], 'y');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('step 2/6: canary');
    expect(r.out).toContain('? [gate] Canary app-1 is healthy. Roll out to every app server? [y/N]');
    expect(r.out).toContain('step 4/6: rollout');
    expect(r.out).toMatch(/OK in .* \(exit 0\)/);
  });

  it('a terminal that reports no width gets plain lines (auto mode)', async () => {
    const r = await new Promise<string>((resolve) => {
      const child = spawn('script', ['-qec', `stty cols 0; node ${CLI} plan basics -f examples/local-basics.yaml --no-lock`, '/dev/null'], {
        cwd: ROOT,
        env: { ...process.env, CI: '' },
      });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.on('close', () => resolve(out));
    });
    expect(r).toContain('[localhost] > mkdir /tmp/hades-examples/basics');
  });

  it('anything but yes declines: exit 3, the rollout never starts', async () => {
    const r = await inPty(['plan', 'release', '-f', 'hadesfile.example.yaml', '--no-lock'], 'n');
    expect(r.code).toBe(3);
    expect(r.out).toContain('gate in step "gate" was declined');
    expect(r.out).toMatch(/step rollout: not-run/);
  });

  it('a host that failed within max_failures is shown skipped in the next step; a step --limit leaves empty is shown skipped; exit 4', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-tty-budget-'));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
  a: { local: true }
  b: { local: true }
  c: { local: true }
jobs:
  work:
    actions:
      - run: test "$HADES_HOST_NAME" != b
plans:
  p:
    steps:
      - { name: first, job: work, targets: [a, b], max_failures: 1 }
      - { name: second, job: work, targets: [a, b] }
      - { name: third, job: work, targets: [c] }
`,
    );
    const r = await inPty(['plan', 'p', '-f', join(dir, 'hadesfile.yaml'), '--limit', 'a,b'], '');
    expect(r.code, r.out).toBe(4);
    expect(r.out).toContain('b: skipped — failed in step "first"');
    expect(r.out).toContain('== step third (skipped: none of its hosts is selected by --limit): 0 host(s)');
    expect(r.out).toMatch(/COMPLETED WITH FAILURES \(1 host\(s\) failed within their step's max_failures: b\)/);
  });
});
