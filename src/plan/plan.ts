/**
 * The planner: pure. Plan → steps → hosts (inventory order, de-duplicated) → `limit` →
 * batches by `parallelism` → per-host action lists with every command already built.
 * It reads nothing: orchestrator-side file facts come in through `Sources`; when a source
 * is missing the planner records the need and the caller plans again with it.
 */
import { meta, visibleArtifacts } from '../config/artifact-refs.js';
import type { ActionSpec, Hadesfile, HostSpec, JobSpec, PlanSpec } from '../config/model.js';
import { builtinEnv } from '../env/builtin.js';
import type { StepEnv } from '../env/resolve.js';
import { expand } from '../env/expand.js';
import { Problems, type Position, type Problem } from '../errors.js';
import { asWritten, batchSize, batchSizes, failureBudget, ORCHESTRATOR_HOST, resolveTargets, slices } from '../inventory/targets.js';
import type { Selection } from '../inventory/selection.js';
import { actionModule, ORCHESTRATOR_KINDS, planAction } from '../actions/index.js';
import type { FileFact, PlanContext, Sources } from '../actions/types.js';
import { runWithEnv } from '../shell/command.js';
import type { ActionEntry, PlannedHost, PlannedStep, RunPlan } from './types.js';
import { type SecretFinder, secretFinder } from './secret-refs.js';

/** Sources backed by a map the caller filled. Pure. */
export class MapSources implements Sources {
  readonly needed = new Set<string>();
  constructor(readonly facts: Map<string, FileFact> = new Map()) {}
  get(path: string): FileFact | undefined {
    return this.facts.get(path);
  }
  need(path: string): void {
    this.needed.add(path);
  }
  pending(): boolean {
    return this.needed.size > 0;
  }
}

export interface PlanInput {
  hf: Hadesfile;
  plan: PlanSpec;
  stepEnvs: StepEnv[];
  runId: string;
  sources: Sources;
  secretNames?: string[];
  /** `--limit`: every step runs on its hosts that are selected here (before its own `limit`). */
  selection?: Selection;
  /**
   * `hades validate` without a plan (see lint.ts): plan one host per step, and drop the
   * problems of fields that contain `${…}` (they depend on env: checked once expanded).
   * 'job': a synthetic plan of the jobs no plan runs — any job's artifact may be named.
   */
  literalsOnly?: 'plan' | 'job';
}

/** Why a job runs once per step on the orchestrator, or undefined when it runs on hosts. */
export function orchestratorReason(job: JobSpec): string | undefined {
  if (job.local) return 'job is local';
  const kinds = [...new Set(job.actions.filter((a) => ORCHESTRATOR_KINDS.has(a.kind)).map((a) => a.kind))];
  return kinds.length ? `job has ${kinds.join('/')}` : undefined;
}

/**
 * Most specific wins: action, then job, then host. A `become` key that is present decides,
 * even when it says "no privilege change" (`become: false` → undefined); absent → inherit.
 */
export function effectiveBecome(
  action: Pick<ActionSpec, 'become'> | undefined,
  job: Pick<JobSpec, 'become'>,
  host: Pick<HostSpec, 'become'> | undefined,
): string | undefined {
  for (const level of [action, job, host]) if (level && Object.hasOwn(level, 'become')) return level.become;
  return undefined;
}

/**
 * The attempt policy an entry runs under: its own `timeout`, else the job's, else the plan's
 * `default_timeout` (a gate keeps its own timeout and takes neither); `retries` as written.
 */
export function withAttempts<E extends ActionEntry>(entry: E, action: ActionSpec, job: JobSpec, plan: PlanSpec): E {
  const attemptTimeoutMs = actionModule(action.kind)?.noTimeout
    ? undefined
    : (action.timeoutMs ?? job.defaultTimeoutMs ?? plan.defaultTimeoutMs);
  return { ...entry, ...(attemptTimeoutMs !== undefined ? { attemptTimeoutMs } : {}), ...(action.retry ? { retry: action.retry } : {}) };
}

/**
 * literalsOnly: the env is not known yet, so every variable reads as set (to ""): what a
 * template renders depends on env and is checked once a plan is named; its syntax is not.
 */
function anyVarSet(env: Record<string, string>): Record<string, string> {
  return new Proxy(env, {
    get: (t, k) => (typeof k === 'string' && !Object.hasOwn(t, k) && !(k in Object.prototype) ? '' : Reflect.get(t, k)),
    has: (t, k) => typeof k === 'string' || Reflect.has(t, k),
    getOwnPropertyDescriptor: (t, k) =>
      Reflect.getOwnPropertyDescriptor(t, k) ??
      (typeof k === 'string' ? { value: '', writable: true, enumerable: false, configurable: true } : undefined),
  });
}

/** The problems of one action, less those at the position of a field that depends on env. */
function literalProblems(all: Problems, dynamic: Set<string>): Problems {
  return new (class extends Problems {
    override add(message: string, pos?: Position, hint?: string): void {
      if (pos && dynamic.has(`${pos.file}:${pos.line}:${pos.col}`)) return;
      all.add(message, pos, hint);
    }
    override addAll(ps: Problem[]): void {
      for (const p of ps) this.add(p.message, p.pos, p.hint);
    }
  })();
}

/** Dedupes problems (the same mistake on 2,000 hosts is one error). */
class DedupProblems extends Problems {
  private readonly seen = new Set<string>();
  override add(message: string, pos?: Position, hint?: string): void {
    const key = `${pos?.file}:${pos?.line}:${pos?.col}:${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    super.add(message, pos, hint);
  }
}

export function buildRunPlan(input: PlanInput): RunPlan {
  const { hf, plan, runId, sources } = input;
  const problems = new DedupProblems();
  const steps: PlannedStep[] = [];
  const selection = input.selection ? new Set(input.selection.hosts) : undefined;

  input.stepEnvs.forEach(({ step, job, env: stepEnv }, stepIndex) => {
    const reason = orchestratorReason(job);
    const artifacts = visibleArtifacts(hf.jobs, plan, stepIndex);
    if (input.literalsOnly === 'job') {
      for (const j of hf.jobs.values())
        for (const [n, a] of Object.entries(j.artifacts))
          if (!artifacts.has(n)) artifacts.set(n, { ...meta(a), path: a.path, job: j.name, baseDir: j.baseDir });
    }
    const resolved = resolveTargets(hf, step.targets);
    for (const u of resolved.unknown) problems.add(`step "${step.name}": unknown target or host "${u}"`, step.pos);
    const candidates = resolved.hosts;
    let hosts: HostSpec[];
    if (reason) hosts = [ORCHESTRATOR_HOST];
    else {
      const selected = selection ? candidates.filter((h) => selection.has(h.name)) : candidates;
      hosts = step.limit !== undefined ? selected.slice(0, step.limit) : selected;
      if (input.literalsOnly) hosts = hosts.slice(0, 1);
    }
    if (!reason && candidates.length === 0 && resolved.unknown.length === 0)
      problems.add(`step "${step.name}" targets no hosts`, step.pos, 'list at least one host in its targets');
    const deselected = !reason && selection !== undefined && candidates.length > 0 && hosts.length === 0;
    const firstPar = Array.isArray(step.parallelism) ? step.parallelism[0] : step.parallelism;
    const size = reason ? 1 : batchSize(hosts.length, firstPar);
    const sizes = reason ? [1] : batchSizes(hosts.length, step.parallelism);

    const plannedHosts: PlannedHost[] = hosts.map((host) => {
      const written = {
        ...stepEnv,
        ...builtinEnv({
          plan: plan.name,
          runId,
          step: step.name,
          target: step.targets.join(','),
          hostName: host.name,
          hostAddr: host.addr,
        }),
      };
      const env = input.literalsOnly ? anyVarSet(written) : written;
      // `hades validate` without a plan knows names only (the env is a stand-in). Built on first
      // use: only a push asks, and planning thousands of hosts must not pay for it per host.
      let finder: SecretFinder | undefined;
      const secretIn: SecretFinder = (raw, text) => {
        finder ??= input.literalsOnly
          ? secretFinder(input.hf.secretPatterns, [], undefined)
          : secretFinder(input.hf.secretPatterns, input.secretNames ?? [], written);
        return finder(raw, text);
      };
      const actions: ActionEntry[] = [];
      for (const action of job.actions) {
        if (!actionModule(action.kind)) {
          problems.add(`action "${action.kind}" is not supported by this version of Hades`, action.pos);
          continue;
        }
        const fieldPos = (f: string) => action.fieldPos[f] ?? action.pos;
        const dynamic = new Set<string>(); // literalsOnly: positions of the fields that contain ${…}
        const actionProblems = input.literalsOnly ? literalProblems(problems, dynamic) : problems;
        const ctx: PlanContext = {
          plan: plan.name,
          runId,
          step: { name: step.name, index: stepIndex },
          targets: step.targets,
          job,
          action,
          host,
          env,
          become: effectiveBecome(action, job, reason ? undefined : host),
          sources,
          artifacts,
          registries: input.hf.registries,
          problems: actionProblems,
          fieldPos,
          secretIn,
          expand(value: string, field: string): string {
            if (input.literalsOnly && value.includes('${')) {
              const p = fieldPos(field);
              dynamic.add(`${p.file}:${p.line}:${p.col}`);
              return value;
            }
            const r = expand(value, env);
            for (const m of r.missing)
              problems.add(
                `${action.kind}.${field}: \${${m}} is not set in step "${step.name}"`,
                fieldPos(field),
                job.env && !(m in job.env)
                  ? `job "${job.name}" declares env, so it receives only the vars it declares: add ${m} to its env`
                  : `set ${m} in the step's or plan's env, an env file, or with -e ${m}=...`,
              );
            return r.value;
          },
        };
        const entry = planAction(action.kind, action.spec, ctx);
        if (entry) actions.push(withAttempts(entry, action, job, plan));
      }
      const guard = job.guard
        ? { command: job.guard.if, exec: runWithEnv(job.guard.if, effectiveBecome(undefined, job, reason ? undefined : host)) }
        : undefined;
      return {
        host: host.name,
        addr: host.addr,
        ...(host.user ? { user: host.user } : {}),
        ...(host.port ? { port: host.port } : {}),
        transport: host.local ? 'local' : 'ssh',
        env,
        ...(guard ? { guard } : {}),
        actions,
      };
    });

    steps.push({
      index: stepIndex,
      name: step.name,
      job: job.name,
      targets: step.targets,
      runsOn: reason ? 'orchestrator' : 'hosts',
      ...(reason ? { runsOnReason: reason } : {}),
      ...(step.limit !== undefined ? { limit: step.limit } : {}),
      ...(step.parallelism ? { parallelism: asWritten(step.parallelism) } : {}),
      batchSize: size,
      ...(Array.isArray(step.parallelism) ? { batchSizes: sizes } : {}),
      ...(step.maxFailures
        ? {
            maxFailures: reason ? failureBudget(1, step.maxFailures) : failureBudget(hosts.length, step.maxFailures),
            maxFailuresAsWritten: asWritten(step.maxFailures),
          }
        : {}),
      candidates: candidates.map((h) => h.name),
      ...(deselected ? { skipped: 'none of its hosts is selected by --limit' } : {}),
      batches: slices(plannedHosts, sizes).map((hs, i) => ({ index: i, hosts: hs })),
      env: stepEnv,
      pos: step.pos,
    });
  });

  // With sources still to read, the caller reads them and plans again; report problems then.
  if (!sources.pending()) problems.throwIfAny();
  return {
    version: 1,
    runId,
    plan: plan.name,
    files: hf.files,
    ...(input.selection ? { selection: input.selection } : {}),
    steps,
    secretNames: input.secretNames ?? [],
  };
}
