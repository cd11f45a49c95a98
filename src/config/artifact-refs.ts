/**
 * Artifacts are run-wide (as in the Go tool): a `copy`/`push` names an artifact of its own
 * job, or of the job of an EARLIER step of the plan (an earlier step built it; its bytes and
 * digest are taken when the action runs). The job's own artifacts win a name clash; among
 * earlier steps the nearest one wins (it built the file last). Pure.
 */
import type { Position, Problem } from '../errors.js';
import type { ArtifactSpec, Hadesfile, JobSpec, PlanSpec } from './model.js';
import { didYouMean } from './suggest.js';

export interface VisibleArtifact {
  /** As declared (absolute, or `${…}` still unexpanded). */
  path: string;
  /** The declaring job and the directory its file is in (a relative path resolves there). */
  job: string;
  baseDir: string;
  /** A multi-platform artifact: one path per platform (path is then ''). */
  platforms?: { platform: string; path: string }[];
  config?: ArtifactSpec['config'];
  configMediaType?: string;
  /** Undefined: the running job's own artifact. Else the earlier step that declares it. */
  step?: { index: number; name: string };
}

/** The actions that name an artifact. */
export const ARTIFACT_KINDS = new Set(['copy', 'push']);

/** What a step's job may name: its own artifacts, else the nearest earlier step's. */
export function visibleArtifacts(jobs: Map<string, JobSpec>, plan: PlanSpec, stepIndex: number): Map<string, VisibleArtifact> {
  const out = new Map<string, VisibleArtifact>();
  const own = jobs.get(plan.steps[stepIndex]?.job ?? '');
  if (own)
    for (const [n, a] of Object.entries(own.artifacts)) out.set(n, { ...meta(a), path: a.path, job: own.name, baseDir: own.baseDir });
  for (let i = stepIndex - 1; i >= 0; i--) {
    const st = plan.steps[i]!;
    const j = jobs.get(st.job);
    if (!j) continue;
    for (const [n, a] of Object.entries(j.artifacts)) {
      if (!out.has(n)) out.set(n, { ...meta(a), path: a.path, job: j.name, baseDir: j.baseDir, step: { index: i, name: st.name } });
    }
  }
  return out;
}

/** What an artifact carries besides its path. */
export function meta(a: ArtifactSpec): Pick<VisibleArtifact, 'platforms' | 'config' | 'configMediaType'> {
  return {
    ...(a.platforms ? { platforms: a.platforms } : {}),
    ...(a.config ? { config: a.config } : {}),
    ...(a.configMediaType ? { configMediaType: a.configMediaType } : {}),
  };
}

/** "declared by job build in step 1 (build)" — for dry-run and messages. */
export function declaredBy(a: VisibleArtifact): string {
  return a.step ? `declared by job ${a.job} in step ${a.step.index + 1} (${a.step.name})` : `declared by job ${a.job}`;
}

/** Where a later step of the plan declares `name` (for the hint), if one does. */
function laterDeclaration(jobs: Map<string, JobSpec>, plan: PlanSpec, stepIndex: number, name: string): string | undefined {
  for (let i = stepIndex + 1; i < plan.steps.length; i++) {
    const st = plan.steps[i]!;
    if (jobs.get(st.job)?.artifacts[name])
      return `job ${JSON.stringify(st.job)} declares it, but in step ${i + 1} (${st.name}), which runs after this one: move that step before step ${stepIndex + 1}, or declare the artifact in a job that runs earlier`;
  }
  return undefined;
}

interface Ref {
  kind: string;
  name: string;
  pos: Position;
}

function refsOf(job: JobSpec): Ref[] {
  const out: Ref[] = [];
  for (const a of job.actions) {
    if (!ARTIFACT_KINDS.has(a.kind) || !a.spec || typeof a.spec !== 'object') continue;
    const name = (a.spec as Record<string, unknown>).artifact;
    // A `${…}` name depends on env: the planner checks it once expanded.
    if (typeof name !== 'string' || name.includes('${')) continue;
    out.push({ kind: a.kind, name, pos: a.fieldPos.artifact ?? a.pos });
  }
  return out;
}

/**
 * Loader check (merged model): every literal `artifact:` resolves in every plan that runs its
 * job; a job no plan runs must name an artifact that some job declares.
 */
export function checkArtifactRefs(hf: Pick<Hadesfile, 'jobs' | 'plans'>, problems: Problem[]): void {
  const used = new Set<string>();
  for (const plan of hf.plans.values()) {
    plan.steps.forEach((st, i) => {
      const job = hf.jobs.get(st.job);
      if (!job) return;
      used.add(job.name);
      const refs = refsOf(job);
      if (!refs.length) return;
      const visible = visibleArtifacts(hf.jobs, plan, i);
      for (const r of refs) {
        if (visible.has(r.name)) continue;
        problems.push({
          pos: r.pos,
          message: `artifact ${JSON.stringify(r.name)} (${r.kind} in job ${JSON.stringify(job.name)}) is not declared by that job nor by any earlier step of plan ${JSON.stringify(plan.name)} (step ${i + 1}, ${st.name})`,
          hint:
            laterDeclaration(hf.jobs, plan, i, r.name) ??
            didYouMean(r.name, [...visible.keys()]) ??
            (visible.size
              ? `artifacts this step can use: ${[...visible.keys()].join(', ')}`
              : `declare it under the artifacts: of job ${JSON.stringify(job.name)}, or of the job of an earlier step (${r.name}: {path: ./file})`),
        });
      }
    });
  }
  const all = [...hf.jobs.values()].flatMap((j) => Object.keys(j.artifacts));
  for (const job of hf.jobs.values()) {
    if (used.has(job.name)) continue;
    for (const r of refsOf(job)) {
      if (job.artifacts[r.name] || all.includes(r.name)) continue;
      problems.push({
        pos: r.pos,
        message: `job ${JSON.stringify(job.name)} has no artifact ${JSON.stringify(r.name)} (used by ${r.kind}), and no other job declares one`,
        hint:
          didYouMean(r.name, all) ??
          `declare it under the job's artifacts: (${r.name}: {path: ./file}), or under those of a job that runs in an earlier step`,
      });
    }
  }
}
