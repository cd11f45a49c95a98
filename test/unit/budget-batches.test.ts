/** Progressive batches, failure budgets and `--limit` selection in the (pure) planner. */
import { describe, expect, it } from 'vitest';
import type { StepEnv } from '../../src/env/resolve.js';
import { Redactor } from '../../src/env/secrets.js';
import type { Problem } from '../../src/errors.js';
import { UserError } from '../../src/errors.js';
import { fileLines, resolveSelection, splitLimitArgs } from '../../src/inventory/selection.js';
import { batchSizes, failureBudget } from '../../src/inventory/targets.js';
import { MapSources, buildRunPlan } from '../../src/plan/plan.js';
import { renderPlan } from '../../src/report/dryrun.js';
import { action, hadesfile, host, job, plan, step } from '../helpers/model.js';

const names = Array.from({ length: 20 }, (_, i) => `web-${i + 1}`);
const hf0 = () =>
  hadesfile({
    hosts: [...names.map((n, i) => host(n, i)), host('db-1', 20), host('db-2', 21)],
    targets: { web: names, eu: ['web-2', 'web-4', 'db-1'], db: ['db-1', 'db-2'] },
    jobs: [job('deploy', [action('run', 'true')]), job('gate', [action('wait', { message: 'go?' })])],
  });

function build(steps: ReturnType<typeof step>[], selection?: { patterns: string[]; hosts: string[] }) {
  const hf = hf0();
  const p = plan('release', steps);
  hf.plans.set(p.name, p);
  const stepEnvs: StepEnv[] = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env: {} }));
  return buildRunPlan({ hf, plan: p, stepEnvs, runId: 'RUN1', sources: new MapSources(), ...(selection ? { selection } : {}) });
}

const count = (n: number) => ({ kind: 'count', n }) as const;
const pct = (percent: number) => ({ kind: 'percent', percent }) as const;

describe('progressive batches', () => {
  it('a list of sizes: one batch each, the last repeated until the hosts are done (percent of the step, rounded up)', () => {
    expect(batchSizes(20, [count(1), pct(10), pct(50), pct(100)])).toEqual([1, 2, 10, 7]);
    expect(batchSizes(20, [count(1), count(3)])).toEqual([1, 3, 3, 3, 3, 3, 3, 1]);
    expect(batchSizes(2, [count(1), pct(10), pct(50)])).toEqual([1, 1]);
    expect(batchSizes(5, [count(9)])).toEqual([5]);
    expect(batchSizes(5, count(2))).toEqual([2, 2, 1]);
    expect(batchSizes(5, undefined)).toEqual([5]);
    expect(batchSizes(0, [count(1)])).toEqual([]);
  });

  it('the planner batches in inventory order and dry-run shows every batch size', () => {
    const p = build([step('roll', 'deploy', ['web'], { parallelism: [count(1), pct(10), pct(50), pct(100)] })]);
    const s = p.steps[0]!;
    expect(s.batches.map((b) => b.hosts.map((h) => h.host))).toEqual([['web-1'], ['web-2', 'web-3'], names.slice(3, 13), names.slice(13)]);
    expect(s.batchSizes).toEqual([1, 2, 10, 7]);
    const text = renderPlan(p, new Redactor([]));
    expect(text).toContain(
      'step 1/1 "roll": job deploy, targets web → 20 of 20 host(s), batches of 1, 2, 10, 7 (parallelism 1, 10%, 50%, 100%); stops at the first failure',
    );
    expect(text).toContain('  batch 4/4: web-14, web-15');
  });
});

describe('max_failures', () => {
  it.each([
    // hosts, budget, tolerated failures: percent rounds down
    [1, pct(10), 0],
    [1, pct(50), 0],
    [1, pct(100), 1],
    [3, pct(10), 0],
    [3, pct(34), 1],
    [3, pct(66), 1],
    [3, pct(67), 2],
    [7, pct(10), 0],
    [7, pct(15), 1],
    [7, pct(50), 3],
    [7, pct(100), 7],
    [7, count(2), 2],
    [7, count(10), 10],
    [7, undefined, 0],
  ])('%i hosts, %j → %i failed host(s) tolerated', (n, b, want) => {
    expect(failureBudget(n, b)).toBe(want);
  });

  it('is resolved against the hosts the step runs on (after limit) and shown in dry-run', () => {
    const p = build([
      step('canary', 'deploy', ['web'], { limit: 7, maxFailures: pct(50) }),
      step('all', 'deploy', ['web'], { maxFailures: count(2) }),
    ]);
    expect(p.steps.map((s) => [s.maxFailures, s.maxFailuresAsWritten])).toEqual([
      [3, '50%'],
      [2, '2'],
    ]);
    const text = renderPlan(p, new Redactor([]));
    expect(text).toContain('→ 7 of 20 host(s) (limit 7), batches of 7; max_failures 3 host(s) (50% of 7, rounded down)');
    expect(text).toContain('→ 20 of 20 host(s), batches of 20; max_failures 2 host(s)');
  });
});

describe('--limit selection', () => {
  const hf = hf0();
  const sel = (args: string[]) => {
    const problems: Problem[] = [];
    const set = resolveSelection(
      hf,
      splitLimitArgs(args).map((pattern) => ({ pattern })),
      problems,
    );
    return { hosts: [...hf.hosts.keys()].filter((h) => set.has(h)), problems };
  };

  it('names, globs and target:NAME, comma-separated and repeatable, in inventory order', () => {
    expect(sel(['web-3,web-1?', 'target:db']).hosts).toEqual([
      'web-3',
      'web-10',
      'web-11',
      'web-12',
      'web-13',
      'web-14',
      'web-15',
      'web-16',
      'web-17',
      'web-18',
      'web-19',
      'db-1',
      'db-2',
    ]);
    expect(sel(['target:eu']).hosts).toEqual(['web-2', 'web-4', 'db-1']);
    expect(sel(['db-*', 'db-1']).hosts).toEqual(['db-1', 'db-2']);
  });

  it('a pattern matching nothing is a problem with a hint (did you mean, or target:)', () => {
    const { problems } = sel(['web-30', 'wbe-3', 'target:ue', 'eu', 'app-*']);
    expect(problems.map((p) => `${p.message} | ${p.hint}`)).toEqual([
      '--limit "web-30": no host "web-30" | did you mean "web-3"?',
      '--limit "wbe-3": no host "wbe-3" | did you mean "web-3"?',
      '--limit "target:ue": no target "ue" | did you mean "eu"?',
      '--limit "eu": no host "eu" (it is a target) | write target:eu to select the target\'s hosts',
      expect.stringMatching(/^--limit "app-\*": matches no host \| hosts: web-1, web-2, .*\(22 hosts\)$/),
    ]);
  });

  it('@file lines keep their position; blank lines and comments are ignored', () => {
    expect(fileLines('web-1\n\n  # note\n  web-2\r\n', 'failed.txt')).toEqual([
      { pattern: 'web-1', pos: { file: 'failed.txt', line: 1, col: 1 }, from: 'failed.txt' },
      { pattern: 'web-2', pos: { file: 'failed.txt', line: 4, col: 3 }, from: 'failed.txt' },
    ]);
  });

  it('every step intersects its hosts with the selection, then applies its own limit; a step left with none is skipped, not an error', () => {
    const selection = { patterns: ['web-5,web-2,db-1'], hosts: ['web-2', 'web-5', 'db-1'] };
    const p = build(
      [
        step('canary', 'deploy', ['web'], { limit: 1 }),
        step('web', 'deploy', ['web'], { parallelism: count(1) }),
        step('db', 'deploy', ['db-2']),
        step('gate', 'gate', ['web']),
      ],
      selection,
    );
    expect(p.selection).toEqual(selection);
    expect(p.steps.map((s) => s.batches.map((b) => b.hosts.map((h) => h.host)))).toEqual([
      [['web-2']],
      [['web-2'], ['web-5']],
      [],
      [['localhost']],
    ]);
    expect(p.steps[2]!.skipped).toBe('none of its hosts is selected by --limit');
    expect(p.steps[0]!.candidates).toHaveLength(20);
    const text = renderPlan(p, new Redactor([]));
    expect(text).toContain('--limit web-5,web-2,db-1: 3 host(s) selected: web-2, web-5, db-1');
    expect(text).toContain('step 1/4 "canary": job deploy, targets web → 1 of 20 host(s) (--limit) (limit 1), batches of 1');
    expect(text).toContain('step 3/4 "db": job deploy, targets db-2 → skipped: none of its hosts is selected by --limit (1 host(s): db-2)');
  });

  it('a step whose targets resolve to no hosts is still an error (a file mistake), with or without --limit', () => {
    const hf = hf0();
    hf.targets.set('empty', { hosts: [], pos: { file: 'f', line: 1, col: 1 } });
    const p = plan('release', [step('s', 'deploy', ['empty'])]);
    const stepEnvs: StepEnv[] = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env: {} }));
    expect(() =>
      buildRunPlan({ hf, plan: p, stepEnvs, runId: 'R', sources: new MapSources(), selection: { patterns: ['web-1'], hosts: ['web-1'] } }),
    ).toThrow(UserError);
  });
});
