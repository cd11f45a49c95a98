import { describe, expect, it } from 'vitest';
import type { FileFact } from '../../src/actions/types.js';
import type { StepEnv } from '../../src/env/resolve.js';
import { Redactor } from '../../src/env/secrets.js';
import { UserError } from '../../src/errors.js';
import { batchSize } from '../../src/inventory/targets.js';
import { MapSources, buildRunPlan } from '../../src/plan/plan.js';
import type { FileEntry, RunEntry } from '../../src/plan/types.js';
import { renderPlan } from '../../src/report/dryrun.js';
import { action, hadesfile, host, job, plan, step } from '../helpers/model.js';

const hosts = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'].map((n, i) => host(n, i));

function build(
  steps: ReturnType<typeof step>[],
  jobs = [job('deploy', [action('run', 'echo "$VERSION"')])],
  facts: FileFact[] = [],
  env: Record<string, string> = { VERSION: 'v1' },
) {
  const p = plan('release', steps);
  // targets list web-5 first and web-1 twice: order must still be inventory order, de-duplicated
  const hf = hadesfile({
    hosts,
    targets: { web: ['web-5', 'web-3', 'web-1', 'web-2', 'web-4', 'web-1'], odd: ['web-2', 'web-4'] },
    jobs,
    plans: [p],
  });
  const stepEnvs: StepEnv[] = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env }));
  const sources = new MapSources(new Map(facts.map((f) => [f.path, f])));
  return { plan: buildRunPlan({ hf, plan: p, stepEnvs, runId: 'RUN1', sources }), sources };
}

const batchNames = (p: ReturnType<typeof build>['plan'], i = 0) => p.steps[i]!.batches.map((b) => b.hosts.map((h) => h.host));

describe('batching', () => {
  it.each([
    [5, undefined, 5],
    [5, { kind: 'count', n: 2 } as const, 2],
    [5, { kind: 'count', n: 9 } as const, 5],
    [5, { kind: 'percent', percent: 50 } as const, 3],
    [5, { kind: 'percent', percent: 1 } as const, 1],
    [5, { kind: 'percent', percent: 100 } as const, 5],
    [4, { kind: 'percent', percent: 50 } as const, 2],
    [3, { kind: 'percent', percent: 34 } as const, 2],
    [1, { kind: 'percent', percent: 10 } as const, 1],
  ])('%i hosts, %j → batches of %i', (n, p, want) => {
    expect(batchSize(n, p)).toBe(want);
  });

  it('hosts come in inventory order, de-duplicated', () => {
    const { plan: p } = build([step('all', 'deploy', ['web'])]);
    expect(batchNames(p)).toEqual([['web-1', 'web-2', 'web-3', 'web-4', 'web-5']]);
  });

  it('limit takes the first N in inventory order (the canary is always web-1)', () => {
    for (let i = 0; i < 3; i++) {
      const { plan: p } = build([step('canary', 'deploy', ['web'], { limit: 1 })]);
      expect(batchNames(p)).toEqual([['web-1']]);
      expect(p.steps[0]!.candidates).toHaveLength(5);
    }
  });

  it('parallelism count and percent', () => {
    expect(batchNames(build([step('s', 'deploy', ['web'], { parallelism: { kind: 'count', n: 2 } })]).plan)).toEqual([
      ['web-1', 'web-2'],
      ['web-3', 'web-4'],
      ['web-5'],
    ]);
    expect(batchNames(build([step('s', 'deploy', ['web'], { parallelism: { kind: 'percent', percent: 50 } })]).plan)).toEqual([
      ['web-1', 'web-2', 'web-3'],
      ['web-4', 'web-5'],
    ]);
  });

  it('a single host name works as a target; several targets merge', () => {
    expect(batchNames(build([step('s', 'deploy', ['web-4', 'odd'])]).plan)).toEqual([['web-2', 'web-4']]);
  });

  it('limit then parallelism', () => {
    expect(batchNames(build([step('s', 'deploy', ['web'], { limit: 3, parallelism: { kind: 'count', n: 2 } })]).plan)).toEqual([
      ['web-1', 'web-2'],
      ['web-3'],
    ]);
  });
});

describe('placement', () => {
  it('local jobs and jobs with wait run once on the orchestrator', () => {
    const jobs = [
      job('build', [action('run', 'make')], { local: true }),
      job('gate', [action('wait', { message: 'go?' })]),
      job('deploy', [action('run', 'x')]),
    ];
    const { plan: p } = build([step('b', 'build', ['web']), step('g', 'gate', ['web']), step('d', 'deploy', ['web'], { limit: 2 })], jobs);
    expect(p.steps.map((s) => [s.runsOn, batchNames(p, s.index)])).toEqual([
      ['orchestrator', [['localhost']]],
      ['orchestrator', [['localhost']]],
      ['hosts', [['web-1', 'web-2']]],
    ]);
    expect(p.steps[0]!.runsOnReason).toBe('job is local');
    expect(p.steps[1]!.runsOnReason).toContain('wait');
    expect(p.steps[0]!.batches[0]!.hosts[0]!.transport).toBe('local');
  });
});

describe('per-host entries', () => {
  it('built-in env per host; run keeps the command as written', () => {
    const { plan: p } = build([step('s', 'deploy', ['web'], { limit: 2 })]);
    const h = p.steps[0]!.batches[0]!.hosts[1]!;
    expect(h.env).toMatchObject({
      VERSION: 'v1',
      HADES_PLAN: 'release',
      HADES_RUN_ID: 'RUN1',
      HADES_STEP: 's',
      HADES_TARGET: 'web',
      HADES_HOST_NAME: 'web-2',
      HADES_HOST_ADDR: '10.0.0.2',
    });
    const run = h.actions[0] as RunEntry;
    expect(run.command).toBe('echo "$VERSION"');
    expect(run.exec).not.toContain('v1'); // env is never spliced into commands
  });

  it('structured fields expand per host and are quoted into commands', () => {
    const j = job('deploy', [action('mkdir', { path: '/opt/${APP}/${HADES_HOST_NAME}', mode: 0o750 })]);
    const { plan: p } = build([step('s', 'deploy', ['web'], { limit: 1 })], [j], [], { APP: "my app's" });
    const e = p.steps[0]!.batches[0]!.hosts[0]!.actions[0]!;
    expect(e).toMatchObject({ kind: 'mkdir', path: "/opt/my app's/web-1", mode: 0o750 });
    expect((e as { exec: string }).exec).toContain(`|| hades_walk '/opt/my app'\\''s' ''; x=\${c%/}/web-1; `);
  });

  it('missing vars in structured fields, relative paths and bad modes are all reported at once', () => {
    const j = job('deploy', [
      action('mkdir', { path: '/opt/${NOPE}' }),
      action('mkdir', { path: 'relative/dir' }),
      action('copy', { src: 'a', dst: '/x', mode: '644' }),
    ]);
    try {
      build([step('s', 'deploy', ['web'])], [j], []);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      const msgs = (e as UserError).problems.map((p) => p.message);
      expect(msgs).toEqual([
        'mkdir.path: ${NOPE} is not set in step "s"',
        'mkdir.path: "relative/dir" is not an absolute path',
        'copy.mode: ambiguous mode 644; write 0644',
      ]);
    }
  });

  it('templates render at plan time per host; an undefined variable is an error', () => {
    const tpl = {
      path: '/work/project/app.conf.njk',
      text: 'host={{ host.name }} v={{ env.VERSION }}\n{% for t in targets %}[{{ t }}]{% endfor %}\n',
    };
    const j = job('deploy', [action('template', { src: 'app.conf.njk', dst: '/etc/app.conf' })]);
    const { plan: p } = build([step('s', 'deploy', ['web'], { limit: 2 })], [j], [tpl]);
    const e = p.steps[0]!.batches[0]!.hosts[1]!.actions[0] as FileEntry;
    expect(e.source).toMatchObject({ type: 'inline', content: 'host=web-2 v=v1\n[web]' });

    const bad = { ...tpl, text: 'line one\nv={{ env.MISSING }}\n' };
    expect(() => build([step('s', 'deploy', ['web'])], [j], [bad])).toThrow(/app\.conf\.njk:2:\d+: .*undefined/);
  });

  it('asks for sources it does not have instead of reading them', () => {
    const j = job('deploy', [action('template', { src: 'app.conf.njk', dst: '/etc/app.conf' })]);
    const { sources } = build([step('s', 'deploy', ['web'])], [j], []);
    expect([...sources.needed]).toEqual(['/work/project/app.conf.njk']);
  });
});

describe('dry-run rendering', () => {
  it('shows steps, batches, hosts, exact commands and redacted env', () => {
    const jobs = [
      job('deploy', [
        action('mkdir', { path: '/opt/app' }),
        action('copy', { src: 'bin/app', dst: '/opt/app/app', mode: 0o755 }),
        action('run', 'systemctl restart app'),
      ]),
    ];
    const { plan: p } = build(
      [
        step('canary', 'deploy', ['web'], { limit: 1 }),
        step('rollout', 'deploy', ['web'], { parallelism: { kind: 'percent', percent: 50 } }),
      ],
      jobs,
      [],
      { VERSION: 'v1', API_TOKEN: 'sekrit-value' },
    );
    const r = new Redactor();
    r.learn({ API_TOKEN: 'sekrit-value' });
    const text = renderPlan(p, r);
    expect(text).not.toContain('sekrit-value');
    expect(text).toContain('API_TOKEN="***"');
    expect(text).toContain('step 1/2 "canary": job deploy, targets web → 1 of 5 host(s) (limit 1), batches of 1');
    expect(text).toContain('step 2/2 "rollout": job deploy, targets web → 5 of 5 host(s), batches of 3 (parallelism 50%)');
    expect(text).toContain('batch 2/2: web-4, web-5');
    expect(text).toContain('$ systemctl restart app');
    expect(text).toContain(`|| hades_walk /opt ''; x=\${c%/}/app; `);
    expect(text).toContain('mkdir -- "$t/d" && chmod 0755 "$t/d" && mv -T -- "$t/d" "$x"');
    expect(text).toContain('/work/project/bin/app (sha256 taken when the step runs) -> /opt/app/app mode 0755');
    // the printed command is the one that runs: the mktemp template is in it, the random part chosen on the host
    expect(text).toContain(`t=$(mktemp -d "\${c%/}"/.app.hades-tmp-XXXXXXXXXX)`);
    expect(text).toContain('mv -fT -- "$t/f" "$f"');
  });
});

describe('become', () => {
  it('most specific wins; an explicit become: false (undefined, present) overrides an outer one', async () => {
    const { effectiveBecome } = await import('../../src/plan/plan.js');
    expect(effectiveBecome({}, {}, { become: 'root' })).toBe('root');
    expect(effectiveBecome({}, { become: 'app' }, { become: 'root' })).toBe('app');
    expect(effectiveBecome({ become: 'root' }, { become: 'app' }, {})).toBe('root');
    expect(effectiveBecome({ become: undefined }, { become: 'app' }, { become: 'root' })).toBeUndefined();
    expect(effectiveBecome(undefined, {}, undefined)).toBeUndefined();
  });

  it('generated commands go through sudo -n; the guard too', () => {
    const h = hosts.map((x, i) => (i === 0 ? { ...x, become: 'root' } : x));
    const j = job('deploy', [action('mkdir', { path: '/opt/x' }), action('run', 'id -u', 1, { become: undefined })], {
      guard: { if: 'true', pos: { file: 'h', line: 1, col: 1 } },
    });
    const p = plan('release', [step('s', 'deploy', ['web-1'])]);
    const hf = hadesfile({ hosts: h, jobs: [j], plans: [p] });
    const rp = buildRunPlan({ hf, plan: p, stepEnvs: [{ step: p.steps[0]!, job: j, env: {} }], runId: 'R', sources: new MapSources() });
    const ph = rp.steps[0]!.batches[0]!.hosts[0]!;
    expect((ph.actions[0] as { exec: string }).exec.startsWith('sudo -n -- sh -c ')).toBe(true);
    expect((ph.actions[1] as { exec: string }).exec.startsWith('sudo')).toBe(false);
    expect(ph.guard!.exec.startsWith('sudo -n -- sh -c ')).toBe(true);
  });
});
