/** The pure parts of history/resume/replay: step selection, resume skipping, digest pinning, shape diffs, the audit-log reader. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StepEnv } from '../../src/env/resolve.js';
import { UserError } from '../../src/errors.js';
import { MapSources, buildRunPlan } from '../../src/plan/plan.js';
import { fingerprint, pairKey, pinArtifacts, pinKey, planShape, selectSteps, shapeDiff, skipDone } from '../../src/plan/select.js';
import type { PullEntry } from '../../src/plan/types.js';
import { readRun } from '../../src/report/history.js';
import { action, hadesfile, host, job, plan, step } from '../helpers/model.js';

const hosts = ['web-1', 'web-2', 'web-3'].map((n, i) => host(n, i));

function build() {
  const p = plan('release', [
    step('build', 'build', ['web-1']),
    step('canary', 'deploy', ['web'], { limit: 1 }),
    step('rollout', 'deploy', ['web'], { parallelism: { kind: 'count', n: 2 } }),
  ]);
  const hf = hadesfile({
    hosts,
    targets: { web: ['web-1', 'web-2', 'web-3'] },
    jobs: [
      job('build', [action('run', 'make')]),
      job('deploy', [
        action('pull', { registry: 'reg', name: 'app', tag: 'v1', to: '/opt/app' }),
        action('run', 'restart', 1, { name: 'restart' }),
      ]),
    ],
    plans: [p],
  });
  hf.registries.set('reg', { name: 'reg', type: 'filesystem', path: '/r', pos: { file: 'f', line: 1, col: 1 } });
  const stepEnvs: StepEnv[] = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env: {} }));
  return { hf, plan: buildRunPlan({ hf, plan: p, stepEnvs, runId: 'RUN2', sources: new MapSources() }) };
}

const thrown = (f: () => void): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  throw new Error('did not throw');
};

describe('--steps / --from-step', () => {
  it('skips the other steps, says why', () => {
    const { plan: p } = build();
    selectSteps(p, ['canary', 'rollout'], undefined);
    expect(p.steps.map((s) => s.skipped)).toEqual(['not selected by --steps canary,rollout', undefined, undefined]);
    const { plan: q } = build();
    selectSteps(q, [], 'rollout');
    expect(q.steps.map((s) => s.skipped)).toEqual(['before --from-step rollout', 'before --from-step rollout', undefined]);
  });
  it('an unknown step: did you mean; both flags: refused', () => {
    const { plan: p } = build();
    expect(thrown(() => selectSteps(p, ['canray'], undefined))).toContain('--steps: plan "release" has no step "canray"');
    expect(thrown(() => selectSteps(p, ['canray'], undefined))).toContain('did you mean "canary"?');
    expect(thrown(() => selectSteps(p, ['build'], 'rollout'))).toContain('--steps and --from-step together');
  });
});

describe('--resume skipping', () => {
  it('takes out the pairs that ended ok, drops empty batches, skips a step left empty', () => {
    const { plan: p } = build();
    const taken = skipDone(
      p,
      new Set([pairKey('build', 'web-1'), pairKey('canary', 'web-1'), pairKey('rollout', 'web-1'), pairKey('rollout', 'web-2')]),
      'RUN1',
    );
    expect(Object.fromEntries(taken)).toEqual({ build: ['web-1'], canary: ['web-1'], rollout: ['web-1', 'web-2'] });
    expect(p.steps[0]!.skipped).toBe('every host ended ok in run RUN1');
    expect(p.steps[2]!.batches.map((b) => [b.index, b.hosts.map((h) => h.host)])).toEqual([[0, ['web-3']]]);
  });
});

describe('digest pinning', () => {
  it('a pull by a tag the run resolved becomes a pull by its digest; others are listed as unpinned', () => {
    const { plan: p } = build();
    const d = `sha256:${'a'.repeat(64)}`;
    const { used, unpinned } = pinArtifacts(p, new Map([[pinKey('reg', 'app', 'v1'), d]]));
    expect(used).toEqual([{ registry: 'reg', name: 'app', tag: 'v1', digest: d }]);
    expect(unpinned).toEqual([]);
    const pull = p.steps[1]!.batches[0]!.hosts[0]!.actions[0] as PullEntry;
    expect([pull.digest, pull.tag, pull.pinnedTag]).toEqual([d, undefined, 'v1']);
    const { plan: q } = build();
    expect(pinArtifacts(q, new Map()).unpinned).toEqual(['reg/app:v1']);
  });
});

describe('plan shape', () => {
  it("names what differs: steps, a step's job, a job's actions", () => {
    const { hf, plan: p } = build();
    const shape = planShape(p, hf);
    expect(shape[1]).toEqual({ step: 'canary', job: 'deploy', actions: ['pull', 'run "restart"'] });
    expect(shapeDiff(shape, shape)).toEqual([]);
    expect(fingerprint(shape)).toMatch(/^sha256:[0-9a-f]{64}$/);
    const changed = structuredClone(shape);
    changed.pop();
    changed[0]!.job = 'compile';
    changed[1]!.actions.push('wait');
    expect(shapeDiff(shape, changed)).toEqual([
      'steps: were [build, canary, rollout], now [build, canary]',
      'step "build": job was "build", now "compile"',
      'step "canary" (job "deploy"): actions were [pull, run "restart"], now [pull, run "restart", wait]',
    ]);
    expect(fingerprint(changed)).not.toBe(fingerprint(shape));
  });
});

describe('audit log reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hades-history-unit-'));
  const meta = {
    type: 'run.meta',
    runId: 'R1',
    ts: '2026-01-01T00:00:00.000Z',
    plan: 'release',
    user: 'ops',
    steps: [{ name: 'rollout', env: { A: '1', T: '***' }, secrets: ['T'], hosts: ['web-1', 'web-2'] }],
  };
  const lines = [
    meta,
    { type: 'host.end', step: 'rollout', host: 'web-1', status: 'ok', ts: '2026-01-01T00:00:01.000Z' },
    { type: 'artifact', registry: 'reg', name: 'app', tag: 'v1', digest: 'sha256:x', kind: 'pull' },
    { type: 'host.end', step: 'rollout', host: 'web-2', status: 'failed', ts: '2026-01-01T00:00:02.000Z' },
    { type: 'run.end', status: 'failed', durationMs: 2000 },
  ].map((l) => JSON.stringify(l));

  it('a whole log: status, hosts, done pairs, artifacts, env with secret names', () => {
    writeFileSync(join(dir, 'R1.jsonl'), `${lines.join('\n')}\n`);
    const r = readRun(join(dir, 'R1.jsonl'));
    expect([r.status, r.durationMs, r.hosts, [...r.done], r.problems]).toEqual([
      'failed',
      2000,
      { 'web-1': 'ok', 'web-2': 'failed' },
      [pairKey('rollout', 'web-1')],
      [],
    ]);
    expect(r.artifacts).toEqual([{ registry: 'reg', name: 'app', tag: 'v1', digest: 'sha256:x', kind: 'pull' }]);
    expect(r.steps[0]!.secrets).toEqual(['T']);
  });
  it('truncated (killed mid-write), corrupt lines, no header, empty: records that say so', () => {
    writeFileSync(join(dir, 'R2.jsonl'), `${lines.slice(0, 3).join('\n')}\n${lines[3]!.slice(0, 15)}`);
    const t = readRun(join(dir, 'R2.jsonl'));
    expect(t.status).toBe('incomplete');
    expect(t.durationMs).toBe(1000);
    expect(t.problems).toEqual([
      'line 4 is truncated (the run was killed mid-write?)',
      'no end recorded (the run was killed, or is still running)',
    ]);
    writeFileSync(join(dir, 'R3.jsonl'), `${[lines[0], '{oops', lines[4]].join('\n')}\n`);
    expect(readRun(join(dir, 'R3.jsonl')).problems).toEqual(['1 corrupt line(s) skipped']);
    writeFileSync(join(dir, 'R4.jsonl'), `${lines.slice(1).join('\n')}\n`);
    expect(readRun(join(dir, 'R4.jsonl')).status).toBe('corrupt');
    writeFileSync(join(dir, 'R5.jsonl'), '\n');
    expect(readRun(join(dir, 'R5.jsonl')).status).toBe('empty');
    // The log of a command (hades registry rm --force, registry gc, lock release --force): no plan, no end.
    writeFileSync(
      join(dir, 'R6.jsonl'),
      `${JSON.stringify({ type: 'run.meta', runId: 'R6', ts: '2026-01-01T00:00:00.000Z', command: 'registry rm --force' })}\n` +
        `${JSON.stringify({ type: 'registry.removed', runId: 'R6', ts: '2026-01-01T00:00:00.001Z', message: 'removed tag app:v1' })}\n`,
    );
    expect(readRun(join(dir, 'R6.jsonl'))).toMatchObject({ status: 'command', command: 'registry rm --force', problems: [] });
  });
});
