/**
 * Go-Hades files load unchanged (issue 15): default step names, run-wide artifacts, a target
 * sharing a host's name, and the literal checks of `hades validate` without a plan.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArtifactRefs } from '../../src/config/artifact-refs.js';
import type { Problem } from '../../src/errors.js';
import { UserError } from '../../src/errors.js';
import { resolveTargets } from '../../src/inventory/targets.js';
import { lintHadesfile } from '../../src/plan/lint.js';
import { MapSources, buildRunPlan } from '../../src/plan/plan.js';
import type { FileEntry, PushEntry } from '../../src/plan/types.js';
import { Redactor } from '../../src/env/secrets.js';
import { renderPlan } from '../../src/report/dryrun.js';
import { loadHadesfile } from '../helpers/load.js';
import { action, hadesfile, host, job, plan, step } from '../helpers/model.js';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hades-gohades-'));
  temps.push(dir);
  for (const [k, v] of Object.entries(files)) {
    mkdirSync(join(dir, k, '..'), { recursive: true });
    writeFileSync(join(dir, k), v);
  }
  return dir;
}
function loadErrors(files: Record<string, string>): string {
  try {
    loadHadesfile({ cwd: project(files), files: ['hadesfile.yaml'] });
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  return '(loaded)';
}

const web = [host('web-1', 0), host('web-2', 1)];
const art = (path: string) => ({ path, pos: { file: 'hadesfile.yaml', line: 5, col: 7 } });

function planOf(
  jobs: ReturnType<typeof job>[],
  steps: ReturnType<typeof step>[],
  targets: Record<string, string[]> = { web: ['web-1', 'web-2'] },
) {
  const p = plan('release', steps);
  const hf = hadesfile({ hosts: web, targets, jobs, plans: [p] });
  const stepEnvs = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env: { NAME: 'bin' } }));
  return { hf, run: () => buildRunPlan({ hf, plan: p, stepEnvs, runId: 'RUN1', sources: new MapSources() }) };
}

describe("step names are optional (the Go tool's rule)", () => {
  it('an unnamed step is named after its job; the same job again gets JOB-2, JOB-3 ...; named steps count', () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  config: {actions: [{run: "true"}]}
  other: {actions: [{run: "true"}]}
plans:
  p:
    steps:
      - {job: config, targets: [localhost]}
      - {job: other, targets: [localhost]}
      - {job: config, targets: [localhost]}
      - {name: again, job: config, targets: [localhost]}
      - {job: config, targets: [localhost]}
`,
    });
    const hf = loadHadesfile({ cwd: dir, files: ['hadesfile.yaml'] });
    expect(hf.plans.get('p')!.steps.map((s) => s.name)).toEqual(['config', 'other', 'config-2', 'again', 'config-4']);
  });

  it('a default name that meets an explicit one, or another default, is an error at the unnamed step', () => {
    const out = loadErrors({
      'hadesfile.yaml': `jobs:
  a: {actions: [{run: "true"}]}
  a-2: {actions: [{run: "true"}]}
plans:
  p:
    steps:
      - {job: a, targets: [localhost]}
      - {job: a-2, targets: [localhost]}
      - {job: a, targets: [localhost]}
  q:
    steps:
      - {name: a, job: a-2, targets: [localhost]}
      - {job: a, targets: [localhost]}
`,
    });
    expect(out).toContain(
      'hadesfile.yaml:9:9: error: step 3 of plan "p" has no name, and its default name "a-2" is already the name of the step at line 8',
    );
    expect(out).toContain(
      'hadesfile.yaml:13:9: error: step 2 of plan "q" has no name, and its default name "a" is already the name of the step at line 12',
    );
    expect(out).toContain('give one of them an explicit name');
    expect(out).toContain('2 errors');
  });

  it('explicit names stay unique', () => {
    expect(
      loadErrors({
        'hadesfile.yaml': `jobs:\n  a: {actions: [{run: "true"}]}\nplans:\n  p:\n    steps:\n      - {name: s, job: a, targets: [localhost]}\n      - {name: s, job: a, targets: [localhost]}\n`,
      }),
    ).toContain('duplicate step name "s" in plan "p"');
  });
});

describe('artifacts are run-wide', () => {
  const build = (path = '/work/project/build/app') => job('build', [action('run', 'make')], { local: true, artifacts: { bin: art(path) } });
  const deploy = (a = 'bin', extra = {}) => job('deploy', [action('copy', { artifact: a, dst: '/opt/app/app' })], extra);

  it('a copy takes an artifact declared by the job of an earlier step; the dry-run says where it is declared', () => {
    const { run } = planOf([build(), deploy()], [step('build', 'build', ['localhost']), step('deploy', 'deploy', ['web'])]);
    const p = run();
    const e = p.steps[1]!.batches[0]!.hosts[0]!.actions[0] as FileEntry;
    expect(e.source).toEqual({
      type: 'file',
      path: '/work/project/build/app',
      from: 'artifact bin, declared by job build in step 1 (build)',
    });
    const text = renderPlan(p, new Redactor([]));
    expect(text).toContain(
      '/work/project/build/app (artifact bin, declared by job build in step 1 (build); sha256 taken when the step runs)',
    );
  });

  it("the job's own artifact wins a name clash; among earlier steps the nearest one wins", () => {
    const own = deploy('bin', { artifacts: { bin: art('/own/bin') } });
    const b2 = job('rebuild', [action('run', 'make')], { local: true, artifacts: { bin: art('/work/project/rebuilt') } });
    const { run } = planOf([build(), b2, own], [step('build', 'build', ['localhost']), step('deploy', 'deploy', ['web'])]);
    const src = (run().steps[1]!.batches[0]!.hosts[0]!.actions[0] as FileEntry).source;
    expect(src).toEqual({ type: 'file', path: '/own/bin' });
    const n = planOf(
      [build(), b2, deploy()],
      [step('build', 'build', ['localhost']), step('rebuild', 'rebuild', ['localhost']), step('deploy', 'deploy', ['web'])],
    );
    expect((n.run().steps[2]!.batches[0]!.hosts[0]!.actions[0] as FileEntry).source).toMatchObject({
      path: '/work/project/rebuilt',
      from: 'artifact bin, declared by job rebuild in step 2 (rebuild)',
    });
  });

  it('push resolves the same way', () => {
    const pub = job('publish', [action('push', { registry: 'prod', artifact: 'bin', name: 'app', tag: 'v1' })]);
    const { hf, run } = planOf([build(), pub], [step('build', 'build', ['localhost']), step('publish', 'publish', ['localhost'])]);
    hf.registries.set('prod', {
      name: 'prod',
      type: 'filesystem',
      path: '/work/project/registry',
      pos: { file: 'hadesfile.yaml', line: 1, col: 1 },
    });
    const e = run().steps[1]!.batches[0]!.hosts[0]!.actions[0] as PushEntry;
    expect(e).toMatchObject({ artifact: 'bin', path: '/work/project/build/app', from: 'declared by job build in step 1 (build)' });
  });

  it('an artifact declared only by a later step is refused: by the loader check for a literal, by the planner once expanded', () => {
    const { hf, run } = planOf(
      [build(), deploy('${NAME}', {})],
      [step('deploy', 'deploy', ['web']), step('build', 'build', ['localhost'])],
    );
    expect(() => run()).toThrow(/copy\.artifact: "bin" is not declared by job "deploy" nor by any earlier step of plan "release"/);
    const lit = planOf([build(), deploy()], [step('deploy', 'deploy', ['web']), step('build', 'build', ['localhost'])]);
    const problems: Problem[] = [];
    checkArtifactRefs(lit.hf, problems);
    expect(problems.map((p) => p.message)).toEqual([
      'artifact "bin" (copy in job "deploy") is not declared by that job nor by any earlier step of plan "release" (step 1, deploy)',
    ]);
    expect(problems[0]!.hint).toContain('job "build" declares it, but in step 2 (build), which runs after this one');
    void hf;
  });

  it('a job used by two plans is checked in each', () => {
    const ok = plan('ok', [step('build', 'build', ['localhost']), step('deploy', 'deploy', ['web'])]);
    const bad = plan('bad', [step('deploy', 'deploy', ['web'])]);
    const hf = hadesfile({ hosts: web, jobs: [build(), deploy()], plans: [ok, bad] });
    const problems: Problem[] = [];
    checkArtifactRefs(hf, problems);
    expect(problems.map((p) => p.message)).toEqual([
      'artifact "bin" (copy in job "deploy") is not declared by that job nor by any earlier step of plan "bad" (step 1, deploy)',
    ]);
  });

  it('through the loader, at the artifact field (file:line:col)', () => {
    const files = (order: string) => ({
      'hadesfile.yaml': `jobs:
  build:
    local: true
    artifacts: {bin: {path: build/app}}
    actions: [{run: make}]
  deploy:
    actions:
      - copy: {artifact: bin, dst: /opt/app}
plans:
  p:
    steps:
${order}`,
    });
    expect(loadErrors(files('      - {job: build, targets: [localhost]}\n      - {job: deploy, targets: [localhost]}\n'))).toBe('(loaded)');
    expect(loadErrors(files('      - {job: deploy, targets: [localhost]}\n      - {job: build, targets: [localhost]}\n'))).toContain(
      'hadesfile.yaml:8:26: error: artifact "bin" (copy in job "deploy") is not declared by that job nor by any earlier step of plan "p" (step 1, deploy)',
    );
  });
});

describe('a host and a target may share a name', () => {
  it('the loader accepts targets: {localhost: [localhost]} and {build-server: [build-server]}', () => {
    const dir = project({
      'hadesfile.yaml': `hosts:\n  build-server: {addr: 10.0.0.9}\n  web-1: {addr: 10.0.0.1}\ntargets:\n  build-server: [build-server]\n  localhost: [localhost]\n  web-1: [build-server, web-1]\n`,
    });
    const hf = loadHadesfile({ cwd: dir, files: ['hadesfile.yaml'] });
    expect([...hf.targets.keys()]).toEqual(['build-server', 'localhost', 'web-1']);
  });

  it("in a step's targets the target wins; a host that is no target is still named directly", () => {
    const hf = hadesfile({ hosts: [host('web-1', 0), host('web-2', 1), host('web-3', 2)], targets: { 'web-1': ['web-2', 'web-3'] } });
    expect(resolveTargets(hf, ['web-1']).hosts.map((h) => h.name)).toEqual(['web-2', 'web-3']);
    expect(resolveTargets(hf, ['web-2']).hosts.map((h) => h.name)).toEqual(['web-2']);
  });
});

describe('validate without a plan checks every literal', () => {
  const files = (extra: string) => ({
    'hadesfile.yaml': `registries:
  prod: {type: filesystem, path: ./registry}
jobs:
  deploy:
    actions:
      - pull: {registry: prod, name: app, tag: "../../etc", to: /opt/app}
      - pull: {registry: prod, name: app, tag: "\${VERSION}", to: "\${DIR}"}
      - template: {src: app.conf, dst: /etc/app/app.conf}
${extra}plans:
  p:
    steps:
      - {job: deploy, targets: [localhost]}
`,
    'app.conf': 'version={{ .Env.VERSION }}\n',
  });

  it('a literal mistake in a planned and an unplanned job; ${…} fields and what a template renders wait for env', async () => {
    const dir = project(files('  unplanned:\n    actions:\n      - copy: {src: app.conf, dst: relative/path}\n'));
    const problems = await lintHadesfile(loadHadesfile({ cwd: dir, files: ['hadesfile.yaml'] }));
    expect(problems.map((p) => `${p.pos!.line}:${p.pos!.col} ${p.message}`)).toEqual([
      '6:48 pull.tag: tag "../../etc" is invalid: tags are letters, digits, "_", "." and "-" (at most 128), and must not start with "." or "-"',
      '11:36 copy.dst: "relative/path" is not an absolute path',
    ]);
  });

  it('a clean file has no literal problems', async () => {
    const f = files('');
    f['hadesfile.yaml'] = f['hadesfile.yaml']!.replace('"../../etc"', 'v1');
    expect(await lintHadesfile(loadHadesfile({ cwd: project(f), files: ['hadesfile.yaml'] }))).toEqual([]);
  });
});
