/**
 * `hades validate` without a plan: every plan, and every job that no plan runs, is planned
 * with no env at all, one host per step, and the problems of fields that contain `${…}`
 * dropped — so a literal mistake (`tag: "../../etc"`, `mode: 0999`, a bad registry name, an
 * unsupported template construct) is an error without naming a plan. Fields with `${…}`
 * are checked once expanded, when a plan is named (`hades validate PLAN`, `hades run`).
 */
import type { Hadesfile, PlanSpec, StepSpec } from '../config/model.js';
import type { StepEnv } from '../env/resolve.js';
import { UserError, sortProblems, type Problem } from '../errors.js';
import { planWithSources } from './with-sources.js';

async function problemsOf(hf: Hadesfile, plan: PlanSpec, mode: 'plan' | 'job'): Promise<Problem[]> {
  const stepEnvs: StepEnv[] = [];
  for (const step of plan.steps) {
    const job = hf.jobs.get(step.job);
    if (!job) return []; // the loader reported the unknown job
    stepEnvs.push({ step, job, env: {} });
  }
  try {
    await planWithSources({ hf, plan, stepEnvs, runId: 'validate', literalsOnly: mode });
    return [];
  } catch (e) {
    if (e instanceof UserError) return e.problems;
    throw e;
  }
}

/** All literal problems of all plans and unplanned jobs (empty: none). */
export async function lintHadesfile(hf: Hadesfile): Promise<Problem[]> {
  const out: Problem[] = [];
  for (const plan of hf.plans.values()) out.push(...(await problemsOf(hf, plan, 'plan')));
  const planned = new Set([...hf.plans.values()].flatMap((p) => p.steps.map((s) => s.job)));
  const rest = [...hf.jobs.values()].filter((j) => !planned.has(j.name));
  if (rest.length) {
    const steps: StepSpec[] = rest.map((j) => ({ name: j.name, job: j.name, targets: ['localhost'], env: {}, envPos: {}, pos: j.pos }));
    out.push(...(await problemsOf(hf, { name: '(jobs no plan runs)', env: {}, envPos: {}, steps, pos: rest[0]!.pos }, 'job')));
  }
  const seen = new Set<string>();
  return sortProblems(out).filter((p) => {
    const k = `${p.pos ? `${p.pos.file}:${p.pos.line}:${p.pos.col}` : ''}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
