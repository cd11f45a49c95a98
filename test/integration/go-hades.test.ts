/**
 * Go-Hades projects load unchanged (issue 15), through the built CLI: the starter fixture
 * (test/fixtures/go-hades-starter) validates, dry-runs and runs on lab hosts (h7, h8), its
 * deploy delivering the artifact its build step built; and each rule end to end.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireLab } from '../lab/helpers.js';
import type { LabInfo } from '../lab/lab.js';
import { jsonEvents, project, runCli } from '../helpers/cli.js';

const STARTER = fileURLToPath(new URL('../fixtures/go-hades-starter/', import.meta.url));
const LAB_HOSTS = { 'web-1': 'h7', 'web-2': 'h8' } as const;

let lab: LabInfo;
beforeAll(() => {
  lab = requireLab();
});

function onHost(name: string, script: string): string {
  const h = lab.hosts.find((x) => x.name === name)!;
  return execFileSync('nsenter', ['-t', String(h.pid), '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
}

describe('the Go-Hades starter project, unchanged', () => {
  it('validates (every literal checked) and lists the default step names, the target named localhost and the hosts', async () => {
    const v = await runCli(['validate'], { cwd: STARTER });
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect(v.stdout).toBe('ok: 3 file(s), 1 plan(s), 3 job(s), 2 host(s), 2 target(s), 0 registries\n');
    const l = await runCli(['list'], { cwd: STARTER });
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(
      [
        '    - build: job build on localhost (orchestrator)',
        '    - deploy: job deploy on web (web-1, web-2)',
        '    - smoke: job smoke on web-1 (web-1)',
        '    - smoke-2: job smoke on web (web-1, web-2)',
      ].join('\n'),
    );
    expect(l.stdout).toContain('targets:\n  localhost: localhost\n  web: web-1, web-2\nhosts:\n');
    expect(l.stdout).toContain('  localhost: local (built-in)');
  });

  it('dry-runs: the deploy names the artifact the build step declares', async () => {
    const r = await runCli(['plan', 'deploy', '--dry-run'], { cwd: STARTER });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `${join(STARTER, 'build/app.sh')} (artifact app, declared by job build in step 1 (build); sha256 taken when the step runs) -> /srv/starter-app/app.sh mode 0755`,
    );
    expect(r.stdout).toContain('step 4/4 "smoke-2": job smoke, targets web');
    expect(existsSync(join(STARTER, 'build'))).toBe(false); // nothing ran
  });

  it('runs on lab hosts: build on the orchestrator, deploy delivers the built artifact and the rendered Go template', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-starter-'));
    cpSync(STARTER, dir, { recursive: true });
    mkdirSync(join(dir, 'home'));
    // Same host and target names; the lab's addresses instead of the example ones.
    const hosts = Object.entries(LAB_HOSTS).map(([name, h]) => {
      const lh = lab.hosts.find((x) => x.name === h)!;
      return `  ${name}:\n    addr: ${lh.addr}\n    port: ${lh.port}\n    user: ${lab.user}\n    identity_file: ${lab.clientKey}\n`;
    });
    writeFileSync(
      join(dir, 'hosts.hades.yaml'),
      `hosts:\n${hosts.join('')}\ntargets:\n  localhost: [localhost]\n  web: [web-1, web-2]\n\nknown_hosts: [${lab.knownHosts}]\n`,
    );
    for (const h of Object.values(LAB_HOSTS))
      onHost(h, `rm -rf /srv/starter-app && mkdir /srv/starter-app && chown ${lab.user} /srv/starter-app`);

    const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
    const r = await runCli(['plan', 'deploy', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const built = readFileSync(join(dir, 'build/app.sh'), 'utf8');
    expect(built).toBe('#!/bin/sh\necho "app 1.0.0 on example.com"\n');
    for (const h of Object.values(LAB_HOSTS)) {
      expect(onHost(h, 'cat /srv/starter-app/app.sh; stat -c %a /srv/starter-app/app.sh')).toBe(`${built}755\n`);
      expect(onHost(h, 'cat /srv/starter-app/Caddyfile')).toBe('example.com {\n\troot * /srv/starter-app\n\tfile_server\n}\n');
    }
    const ev = jsonEvents(r.stdout);
    expect(ev.filter((e) => e.type === 'step.start').map((e) => e.step)).toEqual(['build', 'deploy', 'smoke', 'smoke-2']);
    const said = ev.filter((e) => e.type === 'action.output' && e.step === 'smoke-2').map((e) => `${e.host}: ${e.data}`);
    expect(said.sort()).toEqual(['web-1: app 1.0.0 on example.com', 'web-2: app 1.0.0 on example.com']);
  });
});

describe('each rule through the CLI', () => {
  it('an artifact declared only by a later step: validate exits 2 at file:line:col, naming the step that declares it', async () => {
    const dir = project({
      'jobs.hades.yaml': `jobs:
  build:
    local: true
    artifacts: {bin: {path: build/app}}
    actions: [{run: "mkdir -p build && echo app > build/app"}]
  deploy:
    local: true
    actions:
      - copy: {artifact: bin, dst: /tmp/never}
`,
      'plans.hades.yaml': `plans:
  release:
    steps:
      - job: deploy
        targets: [localhost]
      - job: build
        targets: [localhost]
`,
    });
    const r = await runCli(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'jobs.hades.yaml:9:26: error: artifact "bin" (copy in job "deploy") is not declared by that job nor by any earlier step of plan "release" (step 1, deploy)',
    );
    expect(r.stderr).toContain('hint: job "build" declares it, but in step 2 (build), which runs after this one');
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a step without a name is approved by its default name', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hades-gate-'));
    const dir = project({
      'hadesfile.yaml': `jobs:
  approve:
    actions: [{wait: {message: "go?"}}]
  mark:
    local: true
    actions: [{run: "echo done >> ${out}/marks"}]
plans:
  p:
    steps:
      - {job: approve, targets: [localhost]}
      - {job: mark, targets: [localhost]}
      - {job: approve, targets: [localhost]}
      - {job: mark, targets: [localhost]}
`,
    });
    const declined = await runCli(['plan', 'p', '--approve', 'approve'], { cwd: dir });
    expect(declined.code, declined.stdout + declined.stderr).toBe(3); // approve-2 was not approved
    expect(readFileSync(join(out, 'marks'), 'utf8')).toBe('done\n');
    const ok = await runCli(['plan', 'p', '--approve', 'approve', '--approve', 'approve-2', '--output', 'json'], { cwd: dir });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(
      jsonEvents(ok.stdout)
        .filter((e) => e.type === 'step.start')
        .map((e) => e.step),
    ).toEqual(['approve', 'mark', 'approve-2', 'mark-2']);
  });

  it('a target may share a host name: the target wins in a step; list shows both', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hades-clash-'));
    const dir = project({
      'hadesfile.yaml': `hosts:
  build-server: {local: true}
  other: {local: true}
targets:
  build-server: [other]
jobs:
  mark:
    actions: [{run: "echo $HADES_HOST_NAME >> ${out}/marks"}]
plans:
  p:
    steps:
      - {job: mark, targets: [build-server]}
`,
    });
    const l = await runCli(['list'], { cwd: dir });
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain('targets:\n  build-server: other\n');
    expect(l.stdout).toContain('hosts:\n  build-server: local\n  other: local\n');
    expect(l.stdout).toContain('    - mark: job mark on build-server (other)');
    const r = await runCli(['plan', 'p'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(out, 'marks'), 'utf8')).toBe('other\n');
  });

  it('validate without a plan refuses a literal mistake; the same field with ${…} waits for the plan', async () => {
    const files = (tag: string) => ({
      'hadesfile.yaml': `registries:
  prod: {type: filesystem, path: ./registry}
jobs:
  get:
    actions:
      - pull: {registry: prod, name: app, tag: ${tag}, to: /opt/app}
plans:
  p:
    steps:
      - {job: get, targets: [localhost]}
`,
    });
    const bad = await runCli(['validate'], { cwd: project(files('"../../etc"')) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('hadesfile.yaml:6:48: error: pull.tag: tag "../../etc" is invalid');
    const dynamic = project(files('"${VERSION}"'));
    const ok = await runCli(['validate'], { cwd: dynamic });
    expect(ok.code, ok.stderr).toBe(0);
    const named = await runCli(['validate', 'p', '-e', 'VERSION=../../etc'], { cwd: dynamic });
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('pull.tag: tag "../../etc" is invalid');
  });
});
