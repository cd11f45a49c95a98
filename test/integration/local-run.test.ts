/**
 * Real plans on the local transport, through the built CLI as a child process:
 * every action, guards, gates, abort semantics, Ctrl-C, audit log, JSON events.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonEvents, project, runCli, startCli } from '../helpers/cli.js';

const hosts = `
hosts:
  a: { local: true }
  b: { local: true }
  c: { local: true }
targets:
  app: [a, b, c]
`;

function deployProject(extraJobs = '', steps = '') {
  const dir = project({
    'files/app.bin': 'binary-v1\n',
    'files/app.conf.njk': 'name={{ host.name }}\nversion={{ env.VERSION }}\n',
    'hadesfile.yaml': '',
  });
  const file = `${hosts}
jobs:
  deploy:
    env:
      VERSION:
      API_TOKEN: { default: tok-very-secret-1 }
      OUT: { default: ${dir}/out }
    guard:
      if: test "$HADES_HOST_NAME" != c
    actions:
      - mkdir: { path: "\${OUT}/\${HADES_HOST_NAME}", mode: 0750 }
      - copy: { src: files/app.bin, dst: "\${OUT}/\${HADES_HOST_NAME}/app.bin", mode: 0755 }
      - template: { src: files/app.conf.njk, dst: "\${OUT}/\${HADES_HOST_NAME}/app.conf", mode: "0640" }
      - name: record
        run: echo "host=$HADES_HOST_NAME version=\${VERSION} token=$API_TOKEN" > "$OUT/$HADES_HOST_NAME/run.txt"; echo "deployed $VERSION"
${extraJobs}
plans:
  release:
    env:
      VERSION: v1
    steps:
      - { name: deploy, job: deploy, targets: app }
${steps}`;
  writeFileSync(join(dir, 'hadesfile.yaml'), file);
  return dir;
}

describe('every action on the local transport', () => {
  it('runs mkdir, copy, template, run with env as real variables; guard skips host c; second run changes nothing', async () => {
    const dir = deployProject();
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir });
    expect(r.stderr).not.toContain('internal error');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = join(dir, 'out');
    expect(readFileSync(join(out, 'a/app.bin'), 'utf8')).toBe('binary-v1\n');
    expect(statSync(join(out, 'a/app.bin')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(out, 'a')).mode & 0o7777).toBe(0o750);
    expect(readFileSync(join(out, 'b/app.conf'), 'utf8')).toBe('name=b\nversion=v1\n');
    expect(statSync(join(out, 'b/app.conf')).mode & 0o7777).toBe(0o640);
    expect(readFileSync(join(out, 'a/run.txt'), 'utf8')).toBe('host=a version=v1 token=tok-very-secret-1\n');
    expect(existsSync(join(out, 'c'))).toBe(false); // guard failed → skipped, not failed
    const ev = jsonEvents(r.stdout);
    expect(ev.find((e) => e.type === 'host.end' && e.host === 'c')).toMatchObject({ status: 'skipped' });
    expect(ev.filter((e) => e.type === 'action.end').map((e) => `${e.host}:${e.kind}:${e.status}`)).toEqual(
      expect.arrayContaining(['a:mkdir:changed', 'a:copy:changed', 'a:template:changed', 'a:run:ok']),
    );
    // output streamed, secrets never printed
    expect(ev.find((e) => e.type === 'action.output' && e.host === 'a')).toMatchObject({ stream: 'stdout', data: 'deployed v1' });
    expect(r.stdout).not.toContain('tok-very-secret-1');
    // no temp files left beside destinations
    expect(readdirSync(join(out, 'a')).sort()).toEqual(['app.bin', 'app.conf', 'run.txt']);

    const before = statSync(join(out, 'a/app.bin'));
    const r2 = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir });
    expect(r2.code).toBe(0);
    const after = statSync(join(out, 'a/app.bin'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]); // nothing transferred
    const ev2 = jsonEvents(r2.stdout).filter((e) => e.type === 'action.end' && e.host === 'a');
    expect(ev2.map((e) => e.status)).toEqual(['unchanged', 'unchanged', 'unchanged', 'ok']);
  });

  it('a drifted mode is fixed in place without sending bytes; drifted content is replaced atomically (new inode)', async () => {
    const dir = deployProject();
    expect((await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir })).code).toBe(0);
    const f = join(dir, 'out/a/app.bin');
    chmodSync(f, 0o600);
    const ino = statSync(f).ino;
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(statSync(f).mode & 0o7777).toBe(0o755);
    expect(statSync(f).ino).toBe(ino);
    expect(jsonEvents(r.stdout).find((e) => e.type === 'action.end' && e.host === 'a' && e.kind === 'copy')).toMatchObject({
      status: 'changed',
      message: 'mode/owner fixed, no bytes sent',
    });

    writeFileSync(f, 'tampered\n');
    const r2 = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r2.code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('binary-v1\n');
    expect(statSync(f).ino).not.toBe(ino);
  });

  it('a missing parent directory is an error that says so', async () => {
    const dir = project({
      'hadesfile.yaml': `${hosts}
jobs:
  j:
    actions:
      - copy: { src: hadesfile.yaml, dst: /nonexistent-dir-hades/x }
plans:
  p:
    steps: [{ name: s, job: j, targets: a }]
`,
    });
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('parent directory /nonexistent-dir-hades does not exist');
  });
});

describe('gates', () => {
  const gated = (dir: string) => `${hosts}
jobs:
  mark:
    actions:
      - run: echo "$HADES_STEP" >> ${dir}/steps.txt
  confirm:
    actions:
      - wait: { message: "roll out?" }
plans:
  release:
    steps:
      - { name: canary, job: mark, targets: app, limit: 1 }
      - { name: gate, job: confirm, targets: localhost }
      - { name: rollout, job: mark, targets: app }
`;

  it('without a TTY a gate fails closed: exit 3, later steps never run', async () => {
    const dir = project({});
    writeFileSync(join(dir, 'hadesfile.yaml'), gated(dir));
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('there is no TTY to ask on: pass --yes or --approve gate');
    expect(readFileSync(join(dir, 'steps.txt'), 'utf8')).toBe('canary\n');
    expect(r.stdout).toMatch(/step rollout: not-run/);
  });

  it('--yes and --approve <step> approve; approving another step does not', async () => {
    for (const [flags, code, lines] of [
      [['--yes'], 0, 'canary\nrollout\nrollout\nrollout\n'],
      [['--approve', 'gate'], 0, 'canary\nrollout\nrollout\nrollout\n'],
      [['--approve', 'canary'], 3, 'canary\n'],
    ] as const) {
      const dir = project({});
      writeFileSync(join(dir, 'hadesfile.yaml'), gated(dir));
      const r = await runCli(['plan', 'release', '--output', 'plain', ...flags], { cwd: dir });
      expect(r.code, r.stdout + r.stderr).toBe(code);
      expect(readFileSync(join(dir, 'steps.txt'), 'utf8')).toBe(lines);
    }
  });

  it('a timed pause waits', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  pause:
    actions:
      - wait: { duration: 600ms }
plans:
  p:
    steps: [{ name: s, job: pause, targets: localhost }]
`,
    });
    const t0 = Date.now();
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });
});

describe('abort semantics', () => {
  it('first failure: in-flight hosts finish their current action and stop; no new batch or step starts', async () => {
    const dir = project({});
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `
hosts:
  a: { local: true }
  b: { local: true }
  c: { local: true }
  d: { local: true }
targets:
  app: [a, b, c, d]
jobs:
  work:
    actions:
      - run: if [ "$HADES_HOST_NAME" = a ]; then exit 9; fi; sleep 1; touch ${dir}/$HADES_HOST_NAME.first
      - run: touch ${dir}/$HADES_HOST_NAME.second
plans:
  p:
    steps:
      - { name: one, job: work, targets: app, parallelism: 2 }
      - { name: two, job: work, targets: app }
`,
    );
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(existsSync(join(dir, 'b.first'))).toBe(true); // b was running: finished its action
    expect(existsSync(join(dir, 'b.second'))).toBe(false); // ...and then stopped
    expect(existsSync(join(dir, 'c.first'))).toBe(false); // batch 2 never started
    expect(r.stdout).toContain('a: FAILED at "run: if [ "$HADES_HOST_NAME" = a ]; then exit 9; fi; sleep 1; touch');
    expect(r.stdout).toContain('command exited with code 9');
    expect(r.stdout).toMatch(/b: stopped — stopped: another host failed \(1 ok\)/);
    expect(r.stdout).toMatch(/not started: c, d/);
    expect(r.stdout).toMatch(/step two: not-run/);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT: stop starting work, let the running action finish, print the summary, exit 130', async () => {
    const dir = project({});
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `
hosts:
  a: { local: true }
  b: { local: true }
targets:
  app: [a, b]
jobs:
  work:
    actions:
      - run: echo started; sleep 1.5; touch ${dir}/$HADES_HOST_NAME.done
      - run: touch ${dir}/$HADES_HOST_NAME.after
plans:
  p:
    steps:
      - { name: one, job: work, targets: app, parallelism: 1 }
`,
    );
    const { child, done } = startCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    let out = '';
    let sent = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (!sent && out.includes('[a] | started')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(r.code).toBe(130);
    expect(existsSync(join(dir, 'a.done'))).toBe(true); // in-flight action finished
    expect(existsSync(join(dir, 'a.after'))).toBe(false);
    expect(existsSync(join(dir, 'b.done'))).toBe(false);
    expect(r.stdout).toContain('INTERRUPTED');
    expect(r.stdout).toMatch(/not started: b/);
  });

  it('a second SIGINT aborts the running action at once', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  slow:
    local: true
    actions:
      - run: echo started; sleep 30; echo never
plans:
  p:
    steps: [{ name: s, job: slow, targets: localhost }]
`,
    });
    const { child, done } = startCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    let out = '';
    let sent = false;
    child.stdout!.on('data', (c) => {
      out += c;
      if (!sent && out.includes('| started')) {
        sent = true;
        child.kill('SIGINT');
        setTimeout(() => child.kill('SIGINT'), 200);
      }
    });
    const t0 = Date.now();
    const r = await done;
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.stdout).not.toContain('| never');
  });
});

describe('audit log and JSON events', () => {
  it('writes .hades/runs/<run-id>.jsonl with who, plan, redacted env, every event with exit codes and durations', async () => {
    const dir = deployProject();
    const r = await runCli(['plan', 'release', '--output', 'json', '-e', 'EXTRA_PASSWORD=pw-hunter2-x'], { cwd: dir });
    expect(r.code).toBe(0);
    const runs = readdirSync(join(dir, '.hades/runs'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}\.jsonl$/);
    const text = readFileSync(join(dir, '.hades/runs', runs[0]!), 'utf8');
    expect(text).not.toContain('tok-very-secret-1');
    expect(text).not.toContain('pw-hunter2-x');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: 'run.meta', plan: 'release', user: expect.any(String) });
    expect(lines[0].steps[0].env).toMatchObject({ VERSION: 'v1', API_TOKEN: '***' });
    const ends = lines.filter((l) => l.type === 'action.end');
    expect(ends.length).toBeGreaterThan(0);
    for (const e of ends) expect(e.durationMs).toEqual(expect.any(Number));
    const starts = lines.filter((l) => l.type === 'action.start');
    expect(starts.find((s) => s.kind === 'mkdir').command).toContain('mkdir -- "$t/d"');
    expect(lines.at(-1)).toMatchObject({ type: 'run.end', status: 'ok', exitCode: 0 });
  });

  it('JSON output: one event object per line, documented fields, summary at the end', async () => {
    const dir = deployProject();
    const r = await runCli(['plan', 'release', '--output', 'json'], { cwd: dir });
    const ev = jsonEvents(r.stdout);
    const types = new Set(ev.map((e) => e.type));
    for (const t of [
      'run.start',
      'step.start',
      'batch.start',
      'host.start',
      'action.start',
      'action.output',
      'action.end',
      'host.end',
      'batch.end',
      'step.end',
      'run.end',
    ])
      expect(types).toContain(t);
    for (const e of ev) {
      expect(typeof e.runId).toBe('string');
      expect(Number.isNaN(Date.parse(e.ts))).toBe(false);
    }
    const end = ev.at(-1)!;
    expect(end.summary.steps[0].hosts.map((h: { host: string; status: string }) => `${h.host}:${h.status}`)).toEqual([
      'a:ok',
      'b:ok',
      'c:skipped',
    ]);
  });
});
