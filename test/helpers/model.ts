/** Builds in-memory Hadesfile models for pure unit tests (planner, env) without the loader. */
import type { ActionSpec, Hadesfile, HostSpec, JobSpec, PlanSpec, StepSpec } from '../../src/config/model.js';

const pos = (line = 1, col = 1) => ({ file: 'hadesfile.yaml', line, col });

export function host(name: string, order: number, extra: Partial<HostSpec> = {}): HostSpec {
  return { name, addr: `10.0.0.${order + 1}`, local: false, order, pos: pos(order + 1), ...extra };
}

export function action(kind: string, spec: unknown, index = 0, extra: Partial<ActionSpec> = {}): ActionSpec {
  return { kind, spec, index, pos: pos(20 + index, 9), fieldPos: {}, ...extra };
}

export function job(name: string, actions: ActionSpec[], extra: Partial<JobSpec> = {}): JobSpec {
  return {
    name,
    local: false,
    artifacts: {},
    actions: actions.map((a, i) => ({ ...a, index: i })),
    baseDir: '/work/project',
    pos: pos(10),
    ...extra,
  };
}

export function step(name: string, jobName: string, targets: string[], extra: Partial<StepSpec> = {}): StepSpec {
  return { name, job: jobName, targets, env: {}, envPos: {}, pos: pos(40), ...extra };
}

export function plan(name: string, steps: StepSpec[], env: Record<string, string> = {}): PlanSpec {
  return { name, env, envPos: {}, steps, pos: pos(30) };
}

export function hadesfile(parts: {
  hosts?: HostSpec[];
  targets?: Record<string, string[]>;
  jobs?: JobSpec[];
  plans?: PlanSpec[];
}): Hadesfile {
  const hosts = new Map((parts.hosts ?? []).map((h) => [h.name, h]));
  if (!hosts.has('localhost'))
    hosts.set('localhost', { name: 'localhost', addr: 'localhost', local: true, builtin: true, order: hosts.size, pos: pos() });
  return {
    files: ['/work/project/hadesfile.yaml'],
    baseDir: '/work/project',
    hosts,
    targets: new Map(Object.entries(parts.targets ?? {}).map(([k, v]) => [k, { hosts: v, pos: pos() }])),
    jobs: new Map((parts.jobs ?? []).map((j) => [j.name, j])),
    plans: new Map((parts.plans ?? []).map((p) => [p.name, p])),
    registries: new Map(),
    knownHosts: [],
    secretPatterns: [],
  };
}
