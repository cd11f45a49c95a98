/** The CLI surface: exit codes, errors, dry-run, init, schema, list, the example. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoEnv, jsonEvents, project, ROOT, runCli, startCli } from '../helpers/cli.js';

describe('cli', () => {
  it('--help works, and package.json exposes hades and orchestrate', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: hades');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ hades: 'dist/bin/hades.js', orchestrate: 'dist/bin/hades.js' });
  });

  it("a handle left open after the command finished (a bug) does not keep hades running: it says what is open and exits with the command's code", async () => {
    // A module preloaded into the CLI's process leaks an interval, as a leaked socket would.
    const leak = `data:text/javascript,${encodeURIComponent('setInterval(() => {}, 1000);')}`;
    const t0 = Date.now();
    const r = await runCli(['validate', '-f', 'hadesfile.example.yaml'], {
      env: { NODE_OPTIONS: `--import=${leak}` },
      internalError: true,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok');
    expect(r.stderr).toMatch(
      /internal error \(a bug — please report it\): the command finished \(exit 0\) but the process was still running 5s later; open: .*Timeout.*\. Exiting\./,
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);

  it('unknown plan → exit 2 listing the plans that exist', async () => {
    const r = await runCli(['plan', 'nope', '-f', 'hadesfile.example.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown plan "nope"');
    expect(r.stderr).toContain(': release');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a bad hadesfile → exit 2 with file:line:col, all errors at once', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  j:
    actions:
      - mkdir: { path: /x, mode: 644 }
plans:
  p:
    steps:
      - { name: s, job: missing, targets: localhost }
`,
    });
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hadesfile\.yaml:4:\d+: error: .*ambiguous mode 644; write 0644/);
    expect(r.stderr).toMatch(/hadesfile\.yaml:8:\d+: error: .*missing/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing required variable fails before anything runs (exit 2)', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  j:
    env: { VERSION: }
    actions:
      - run: touch ran.txt
plans:
  p:
    steps:
      - { name: s, job: j, targets: localhost }
`,
    });
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('job "j" requires "VERSION", which is not set');
    expect(existsSync(join(dir, 'ran.txt'))).toBe(false);
    const ok = await runCli(['plan', 'p', '--output', 'plain', '-e', 'VERSION=1'], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(existsSync(join(dir, 'ran.txt'))).toBe(true); // local commands run in the hadesfile's directory
  });

  it('--dry-run prints the plan and touches nothing', async () => {
    const demo = join(project({}), 'demo');
    const r = await runCli(['plan', 'release', '-f', 'hadesfile.example.yaml', '--dry-run'], { env: { DEMO_DIR: demo } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('step 2/6 "canary": job deploy, targets app-servers → 1 of 3 host(s) (limit 1)');
    expect(r.stdout).toContain('batch 2/2: app-2, app-3'); // parallelism [1, "100%"]
    expect(r.stdout).toContain('«trusted-dir prelude»'); // the long check printed once, at the top
    expect(existsSync(demo)).toBe(false);
    const j = await runCli(['plan', 'release', '-f', 'hadesfile.example.yaml', '--dry-run', '--output', 'json']);
    const plan = JSON.parse(j.stdout);
    expect(plan.steps.map((s: { name: string }) => s.name)).toEqual(['build', 'canary', 'gate', 'rollout', 'promote', 'stop']);
    // the JSON plan carries every command in full (the text's shorthand is only a rendering)
    expect(JSON.stringify(plan)).not.toContain('«trusted-dir prelude»');
  });

  it('a reader that goes away (`--dry-run | head`) is no error: no stack trace, exit 0, the run itself still completes', async () => {
    // Enough hosts that the dry-run is far larger than a pipe buffer.
    const hosts = Array.from({ length: 400 }, (_, i) => `  h${i}: { addr: 10.0.${i >> 8}.${i & 255} }`).join('\n');
    const dir = project({
      'hadesfile.yaml': `hosts:\n${hosts}\ntargets:\n  all: [${Array.from({ length: 400 }, (_, i) => `h${i}`).join(', ')}]\njobs:\n  j:\n    actions:\n      - run: echo hello from a host that is not there\n  mark:\n    local: true\n    actions:\n      - run: touch marked.txt\nplans:\n  p:\n    steps:\n      - { name: s, job: j, targets: all }\n  m:\n    steps:\n      - { name: a, job: mark, targets: localhost }\n      - { name: b, job: mark, targets: localhost }\n`,
    });
    for (const args of [
      ['plan', 'p', '--dry-run'],
      ['plan', 'm', '--output', 'plain'],
    ]) {
      const { child, done } = startCli(args, { cwd: dir });
      child.stdout!.once('data', () => child.stdout!.destroy()); // like `| head -1`
      const r = await done;
      expect(r.stderr, args.join(' ')).not.toMatch(/EPIPE|\n\s+at /);
      expect(r.code, args.join(' ')).toBe(0);
    }
    expect(existsSync(join(dir, 'marked.txt'))).toBe(true);
  });

  it('the example runs green with --yes (the README command): build, push, canary + health, gate, batches, promote; twice; nothing left running', async () => {
    const env = await demoEnv(); // keeps parallel runs apart (defaults: /tmp/hades-demo, port 18080)
    const demo = env.DEMO_DIR;
    for (const run of [1, 2]) {
      const r = await runCli(['plan', 'release', '-f', 'hadesfile.example.yaml', '--yes', '--output', 'json'], {
        env: { CI: 'true', ...env },
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const ev = jsonEvents(r.stdout);
      const healthy = ev
        .filter((e) => e.type === 'action.end' && e.kind === 'health' && e.status === 'ok')
        .map((e) => `${e.step}/${e.host}`);
      healthy.sort(); // app-2 and app-3 share a batch: they finish in either order
      expect(healthy, `run ${run}`).toEqual(['canary/app-1', 'rollout/app-1', 'rollout/app-2', 'rollout/app-3']);
      const batches = ev.filter((e) => e.type === 'batch.start' && e.step === 'rollout').map((e) => e.hosts);
      expect(batches).toEqual([['app-1'], ['app-2', 'app-3']]);
      for (const h of ['app-1', 'app-2', 'app-3']) expect(readFileSync(`${demo}/${h}/myapp.txt`, 'utf8')).toBe('myapp 1.0.0\n');
      // the last step stopped every demo service: no process of this demo, and its port is free again
      const left = spawnSync('pgrep', ['-f', `node service.mjs 127.0.0.1[123] ${env.DEMO_PORT} `]);
      expect(left.stdout.toString(), `run ${run}: a demo service outlived the run`).toBe('');
    }
  });

  it('init writes a working starter project', async () => {
    const dir = project({});
    const r = await runCli(['init', 'proj'], { cwd: dir });
    expect(r.code).toBe(0);
    const p = join(dir, 'proj');
    expect((await runCli(['validate'], { cwd: p })).code).toBe(0);
    const run = await runCli(['plan', 'deploy', '--yes', '--output', 'plain'], { cwd: p });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const again = await runCli(['init', 'proj'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already has');
  });

  it('a plan using an OCI registry checks credentials and the oras CLI before anything runs (exit 2, positioned)', async () => {
    const dir = project({
      'a.bin': 'x',
      'hadesfile.yaml': `registries:
  prod: { type: oci, url: 127.0.0.1:1/x, plain_http: true, username: bob, password_env: HADES_TEST_NOPE_PASS }
jobs:
  pub:
    artifacts: { a: { path: ./a.bin } }
    actions:
      - push: { registry: prod, artifact: a, name: app, tag: v1 }
plans:
  p:
    steps: [{ name: s, job: pub, targets: localhost }]
`,
    });
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: dir, env: { HADES_ORAS: '/nonexistent/oras' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hadesfile.yaml:2:3: error: registry "prod": password_env HADES_TEST_NOPE_PASS is not set');
    expect(r.stderr).toMatch(/hadesfile\.yaml:2:3: error: registry "prod" is an OCI registry, which needs the oras CLI: .*not found/);
    expect(r.stdout).toBe('');
  });

  it('schema prints the JSON schema; list shows plans, targets, hosts', async () => {
    const s = await runCli(['schema']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).properties).toHaveProperty('plans');
    const l = await runCli(['list', '-f', 'hadesfile.example.yaml']);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('- canary: job deploy on app-servers (app-1, app-2, app-3) [limit 1]');
    expect(l.stdout).toContain('- promote: job promote on localhost');
    expect(l.stdout).toContain('app-servers: app-1, app-2, app-3');
  });
});
