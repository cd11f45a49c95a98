/**
 * Failure budgets (`max_failures`), progressive batches and `--limit` on real OpenSSH hosts
 * (the lab's h9..h14), through the built CLI. Failures are forced on chosen hosts; what ran
 * where and when is measured on the hosts (start/end stamps in a shared directory).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUDGET_HOSTS, requireLab } from '../lab/helpers.js';
import type { LabInfo } from '../lab/lab.js';
import { jsonEvents, runCli } from '../helpers/cli.js';

let lab: LabInfo;
beforeAll(() => {
  lab = requireLab();
});

const hostsOf = () => BUDGET_HOSTS.map((n) => lab.hosts.find((h) => h.name === n)!);

function inventory(): string {
  return `hosts:
${hostsOf()
  .map((h) => `  ${h.name}: { addr: ${h.addr}, port: ${h.port}, user: ${lab.user}, identity_file: ${lab.clientKey} }`)
  .join('\n')}
targets:
  web: [${BUDGET_HOSTS.join(', ')}]
  even: [h10, h12, h14]
  odd: [h11, h13]
known_hosts: [${lab.knownHosts}]
`;
}

/**
 * A project whose job stamps `start`/`end` lines into a shared log (the hosts share the
 * orchestrator's /tmp) and fails (exit 7) on the hosts listed in `fail`.
 */
function budgetProject(steps: string, fail: string[] = [], sleep = '0.3') {
  const shared = mkdtempSync(join(tmpdir(), 'hades-budget-'));
  chmodSync(shared, 0o1777);
  const dir = mkdtempSync(join(tmpdir(), 'hades-budget-p-'));
  mkdirSync(join(dir, 'home'));
  const failing = fail.length ? fail.map((h) => `"$HADES_HOST_NAME" = ${h}`).join(' -o ') : 'x = y';
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    inventory() +
      `jobs:
  work:
    actions:
      - run: echo "start $(date +%s%N) $HADES_HOST_NAME $HADES_STEP" >> ${shared}/log; sleep ${sleep}; echo "end $(date +%s%N) $HADES_HOST_NAME $HADES_STEP" >> ${shared}/log; if [ ${failing} ]; then exit 7; fi
plans:
  p:
    steps:
${steps}`,
  );
  const stamps = () =>
    existsSync(join(shared, 'log'))
      ? readFileSync(join(shared, 'log'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .map(([kind, t, host, step]) => ({ kind: kind!, t: BigInt(t!), host: host!, step: step! }))
      : [];
  /** Hosts that ran the job in a step, in inventory order. */
  const ran = (step: string) => BUDGET_HOSTS.filter((h) => stamps().some((s) => s.kind === 'start' && s.host === h && s.step === step));
  return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' }, stamps, ran };
}

const summaryOf = (stdout: string) => jsonEvents(stdout).find((e) => e.type === 'run.end')!.summary;

describe('max_failures: counted across the whole step', () => {
  it('budget exactly reached (failures in two batches): the step goes on, ends ok, later steps skip the failed hosts and say so; exit 4; --failed-hosts-file', async () => {
    const p = budgetProject(
      `      - { name: canary, job: work, targets: web, parallelism: 2, max_failures: 2 }
      - { name: rollout, job: work, targets: web }
`,
      ['h13', 'h10'],
    );
    const failedFile = join(p.dir, 'failed.txt');
    const r = await runCli(['plan', 'p', '--output', 'json', '--failed-hosts-file', failedFile], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(p.ran('canary')).toEqual([...BUDGET_HOSTS]);
    expect(p.ran('rollout')).toEqual(['h9', 'h11', 'h12', 'h14']);
    const s = summaryOf(r.stdout);
    expect(s.status).toBe('partial');
    expect(s.failedHosts).toEqual(['h10', 'h13']);
    expect(s.steps.map((x: any) => [x.name, x.status, x.failed, x.maxFailures])).toEqual([
      ['canary', 'ok', ['h10', 'h13'], 2],
      ['rollout', 'ok', undefined, undefined],
    ]);
    const skipped = jsonEvents(r.stdout).filter((e) => e.type === 'host.end' && e.step === 'rollout' && e.status === 'skipped');
    expect(skipped.map((e) => [e.host, e.message])).toEqual([
      ['h10', 'failed in step "canary"'],
      ['h13', 'failed in step "canary"'],
    ]);
    expect(readFileSync(failedFile, 'utf8')).toBe('h10\nh13\n');

    // The same truth in plain output; the file feeds the next run's --limit.
    const p2 = budgetProject(
      `      - { name: canary, job: work, targets: web, parallelism: 2, max_failures: 2 }\n      - { name: rollout, job: work, targets: web }\n`,
      ['h13', 'h10'],
    );
    const plain = await runCli(['plan', 'p', '--output', 'plain'], { cwd: p2.dir, env: p2.env });
    expect(plain.code).toBe(4);
    expect(plain.stdout).toMatch(/COMPLETED WITH FAILURES \(2 host\(s\) failed within their step's max_failures: h10, h13\).*\(exit 4\)/);
    expect(plain.stdout).toContain('  step canary: ok (2 of max_failures 2 used)');
    expect(plain.stdout).toContain('[h10] skipped: failed in step "canary"');
    expect(plain.stdout).toContain('    h13: skipped — failed in step "canary"');
    const retry = budgetProject(`      - { name: canary, job: work, targets: web, parallelism: 2, max_failures: 2 }\n`);
    const again = await runCli(['plan', 'p', '--output', 'plain', '--limit', `@${failedFile}`], { cwd: retry.dir, env: retry.env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(retry.ran('canary')).toEqual(['h10', 'h13']);
  });

  it('budget exceeded by one failure per batch (a per-batch budget would not stop): no new batch starts, later steps do not run; exit 1', async () => {
    const p = budgetProject(
      `      - { name: roll, job: work, targets: web, parallelism: 2, max_failures: 1 }
      - { name: after, job: work, targets: web }
`,
      ['h10', 'h11'],
    );
    const failedFile = join(p.dir, 'failed.txt');
    const r = await runCli(['plan', 'p', '--output', 'json', '--failed-hosts-file', failedFile], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(p.ran('roll')).toEqual(['h9', 'h10', 'h11', 'h12']);
    expect(p.ran('after')).toEqual([]);
    const s = summaryOf(r.stdout);
    expect(s.status).toBe('failed');
    expect(s.steps.map((x: any) => [x.name, x.status])).toEqual([
      ['roll', 'failed'],
      ['after', 'not-run'],
    ]);
    expect(s.steps[0].hosts.map((h: any) => h.status)).toEqual(['ok', 'failed', 'failed', 'ok', 'not-started', 'not-started']);
    expect(readFileSync(failedFile, 'utf8')).toBe('h10\nh11\n');
  });

  it('a whole batch failing within the budget: the next batches still run', async () => {
    const p = budgetProject(`      - { name: roll, job: work, targets: web, parallelism: 3, max_failures: "50%" }\n`, ['h9', 'h10', 'h11']);
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(p.ran('roll')).toEqual([...BUDGET_HOSTS]);
    expect(summaryOf(r.stdout).steps[0]).toMatchObject({ status: 'ok', failed: ['h9', 'h10', 'h11'], maxFailures: 3 });
  });

  it('a whole batch failing beyond the budget: the hosts of that batch finish, no other batch starts', async () => {
    const p = budgetProject(`      - { name: roll, job: work, targets: web, parallelism: 3, max_failures: 2 }\n`, ['h9', 'h10', 'h11']);
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(p.ran('roll')).toEqual(['h9', 'h10', 'h11']);
    expect(p.stamps().filter((x) => x.kind === 'end')).toHaveLength(3); // running hosts finished their action
  });

  it('max_failures larger than the step: every host may fail, the step ends ok, the next step skips them all; exit 4', async () => {
    const p = budgetProject(
      `      - { name: roll, job: work, targets: web, max_failures: 10 }\n      - { name: after, job: work, targets: web }\n`,
      [...BUDGET_HOSTS],
    );
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(p.ran('after')).toEqual([]);
    const s = summaryOf(r.stdout);
    expect(s.failedHosts).toEqual([...BUDGET_HOSTS]);
    expect(s.steps.map((x: any) => x.status)).toEqual(['ok', 'ok']);
    expect(s.steps[1].hosts.every((h: any) => h.status === 'skipped')).toBe(true);
  });

  it.each([
    ['"34%"', 4], // of 3 selected hosts, rounded down: 1 tolerated
    ['"33%"', 1], // 0 tolerated
  ])('percent of the step hosts left by --limit: max_failures %s with one failure of 3 → exit %i', async (budget, code) => {
    const p = budgetProject(`      - { name: roll, job: work, targets: web, max_failures: ${budget} }\n`, ['h12'], '0.1');
    const r = await runCli(['plan', 'p', '--output', 'json', '--limit', 'h9,h12', '--limit', 'h14'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(code);
    expect(p.ran('roll')).toEqual(['h9', 'h12', 'h14']);
  });
});

describe('progressive batches', () => {
  it('parallelism [1, "50%", "100%"] on 6 hosts runs batches of 1, 3, 2 in inventory order, each after the previous one ended', async () => {
    const p = budgetProject(`      - { name: roll, job: work, targets: web, parallelism: [1, "50%", "100%"] }\n`, [], '0.4');
    const dry = await runCli(['plan', 'p', '--dry-run'], { cwd: p.dir, env: p.env });
    expect(dry.stdout).toContain('→ 6 of 6 host(s), batches of 1, 3, 2 (parallelism 1, 50%, 100%); stops at the first failure');
    const r = await runCli(['plan', 'p', '--output', 'plain'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const st = p.stamps();
    const at = (host: string, kind: string) => st.find((s) => s.host === host && s.kind === kind)!.t;
    const groups = [['h9'], ['h10', 'h11', 'h12'], ['h13', 'h14']];
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      // within a batch: all run at once (each starts before any of them ends)
      for (const a of group) for (const b of group) expect(at(a, 'start') < at(b, 'end')).toBe(true);
      // the next batch starts only after every host of this one ended
      for (const next of groups[g + 1] ?? []) for (const a of group) expect(at(next, 'start') > at(a, 'end')).toBe(true);
    }
    expect(r.stdout).toContain('-- step roll batch 2: h10, h11, h12');
  });
});

describe('--limit', () => {
  const steps = `      - { name: canary, job: work, targets: web, limit: 1 }
      - { name: rollout, job: work, targets: web }
      - { name: odd, job: work, targets: odd }
`;

  it('every step intersects its hosts with the selection (limit: applies after it); a step left with none is skipped; dry-run shows exactly the reduced plan; the summary and audit log record the selection', async () => {
    const p = budgetProject(steps, [], '0.05');
    const args = ['plan', 'p', '--limit', 'h12,target:even', '--limit', 'h1?'];
    const dry = await runCli([...args, '--dry-run'], { cwd: p.dir, env: p.env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(
      'this is exactly what `hades plan p --limit h12,target:even,h1?` runs\n--limit h12,target:even,h1?: 5 host(s) selected: h10, h11, h12, h13, h14',
    );
    expect(dry.stdout).toContain('step 1/3 "canary": job work, targets web → 1 of 6 host(s) (--limit) (limit 1), batches of 1');
    expect(dry.stdout).toContain('  batch 1/1: h10\n');
    expect(dry.stdout).toContain('  batch 1/1: h10, h11, h12, h13, h14\n');
    expect(dry.stdout).not.toContain('host h9 ');

    const logDir = join(p.dir, 'logs');
    const r = await runCli([...args, '--output', 'json', '--log-dir', logDir, '--limit', 'h10'], { cwd: p.dir, env: p.env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(p.ran('canary')).toEqual(['h10']);
    expect(p.ran('rollout')).toEqual(['h10', 'h11', 'h12', 'h13', 'h14']);
    expect(summaryOf(r.stdout).selection).toEqual({
      patterns: ['h12', 'target:even', 'h1?', 'h10'],
      hosts: ['h10', 'h11', 'h12', 'h13', 'h14'],
    });
    const audit = readFileSync(join(logDir, readdirSync(logDir)[0]!), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit[0].selection).toEqual(summaryOf(r.stdout).selection);

    const skipOdd = await runCli(['plan', 'p', '--output', 'plain', '--limit', 'target:even'], { cwd: p.dir, env: p.env });
    expect(skipOdd.code, skipOdd.stdout + skipOdd.stderr).toBe(0);
    expect(skipOdd.stdout).toContain('== step odd: skipped (none of its hosts is selected by --limit)');
    expect(skipOdd.stdout).toContain('  step odd: skipped — none of its hosts is selected by --limit');
  });

  it('a pattern matching nothing, an unreadable or empty @file → exit 2 with a hint, nothing runs', async () => {
    const p = budgetProject(steps, [], '0.05');
    const bad = await runCli(['plan', 'p', '--limit', 'h9,h91,target:evne,web'], { cwd: p.dir, env: p.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: --limit "h91": no host "h91"\n    hint: did you mean "h9"?');
    expect(bad.stderr).toContain('error: --limit "target:evne": no target "evne"\n    hint: did you mean "even"?');
    expect(bad.stderr).toContain('error: --limit "web": no host "web" (it is a target)\n    hint: write target:web');
    writeFileSync(join(p.dir, 'empty.txt'), '\n# nothing failed\n');
    writeFileSync(join(p.dir, 'names.txt'), 'h9\n  h0\n');
    const empty = await runCli(['plan', 'p', '--limit', '@empty.txt', '--limit', '@missing.txt', '--limit', '@names.txt'], {
      cwd: p.dir,
      env: p.env,
    });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('error: --limit @empty.txt: empty.txt lists no hosts');
    expect(empty.stderr).toContain('error: --limit @missing.txt: cannot read missing.txt: ENOENT');
    expect(empty.stderr).toContain('names.txt:2:3: error: --limit "h0": no host "h0"');
    expect(p.stamps()).toEqual([]);
  });
});
