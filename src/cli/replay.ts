/**
 * `--resume`, `--replay`, `hades rollback`, `--steps` / `--from-step`: which earlier run is
 * continued or replayed (read from its audit log), its env pinned onto the plan's steps,
 * its artifact digests pinned onto the planned pulls/promotes, the steps and (step, host)
 * pairs left out. Everything is decided before anything runs and recorded in the plan
 * (`plan.origin`), so dry-run prints it and the run executes exactly that.
 */
import { isAbsolute, join, resolve } from 'node:path';
import type { Hadesfile } from '../config/model.js';
import type { EnvSources, StepEnv } from '../env/resolve.js';
import { MASK } from '../env/secrets.js';
import { UserError, type Problems } from '../errors.js';
import {
  fingerprint,
  pinArtifacts,
  pinKey,
  planShape,
  selectSteps,
  shapeDiff,
  skipDone,
  splitList,
  type ShapeStep,
} from '../plan/select.js';
import type { RunOrigin, RunPlan } from '../plan/types.js';
import { findRun, listRuns, usable, type RunRecord } from '../report/history.js';

export interface SelectOptions {
  resume?: string;
  replay?: string;
  /** `hades rollback`: true = the last successful run before the latest one; a string = `--to`. */
  rollback?: string | true;
  force?: boolean;
  steps?: string[];
  fromStep?: string;
  logDir?: string;
}

export function logDirFor(hf: Hadesfile, logDir: string | undefined): string {
  return logDir ? (isAbsolute(logDir) ? logDir : resolve(process.cwd(), logDir)) : join(hf.baseDir, '.hades', 'runs');
}

export interface Origin {
  mode: RunOrigin['mode'];
  rec: RunRecord;
}

/** The run a --resume / --replay / rollback starts from (exit 2 when it is unusable). */
export function findOrigin(hf: Hadesfile, plan: string, o: SelectOptions): Origin | undefined {
  const given = [o.resume !== undefined && '--resume', o.replay !== undefined && '--replay', o.rollback !== undefined && 'rollback'].filter(
    Boolean,
  );
  if (given.length > 1)
    throw new UserError({
      message: `${given.join(' and ')} together`,
      hint: 'continue one run (--resume) or replay one (--replay / hades rollback)',
    });
  const dir = logDirFor(hf, o.logDir);
  if (o.resume !== undefined) return { mode: 'resume', rec: findRun(dir, o.resume, plan, '--resume') };
  if (o.replay !== undefined) return { mode: 'replay', rec: findRun(dir, o.replay, plan, '--replay') };
  if (o.rollback === undefined) return undefined;
  if (typeof o.rollback === 'string') return { mode: 'rollback', rec: findRun(dir, o.rollback, plan, 'rollback --to') };
  const runs = listRuns(dir).filter((r) => r.plan === plan);
  const latest = runs.pop();
  if (!latest)
    throw new UserError({
      message: `rollback: no run of plan "${plan}" in ${dir}`,
      hint: 'there is nothing to roll back to (--log-dir if the runs are recorded elsewhere)',
    });
  const target = runs.reverse().find((r) => r.status === 'ok');
  if (!target)
    throw new UserError({
      message: `rollback: no successful run of plan "${plan}" before the latest one (${latest.runId}, ${latest.status})`,
      hint: 'hades history lists the runs; give one with --to RUN-ID',
    });
  usable(target, plan, 'rollback');
  return { mode: 'rollback', rec: target };
}

/**
 * Before today's env is resolved: a var the replayed run had (non-secret) that nothing sets
 * today (no -e, env file or OS variable) is filled in from that run, so that a job's
 * required var need not be given again (pinEnv then sets every step's env exactly).
 */
export function fillFromOrigin(sources: EnvSources, rec: RunRecord): void {
  for (const s of rec.steps)
    for (const [k, v] of Object.entries(s.env)) {
      if (s.secrets.includes(k) || v === MASK) continue;
      if (k in sources.cliVars || k in sources.fileVars || sources.context[k] !== undefined) continue;
      sources.cliVars[k] = String(v);
      sources.context[k] = String(v);
    }
}

/**
 * The replayed run's env, step by step: its non-secret values as recorded; its secret vars
 * (names only in the log) take their values from the current environment / env files.
 * Returns the secret names taken from now. A step the run did not have keeps today's env.
 */
export function pinEnv(stepEnvs: StepEnv[], rec: RunRecord, problems: Problems): { fromNow: string[]; newSteps: string[] } {
  const fromNow = new Set<string>();
  const newSteps: string[] = [];
  for (const se of stepEnvs) {
    const was = rec.steps.find((s) => s.name === se.step.name);
    if (!was) {
      newSteps.push(se.step.name);
      continue;
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(was.env)) {
      if (was.secrets.includes(k) || v === MASK) {
        const now = se.env[k];
        if (now === undefined)
          problems.add(
            `run ${rec.runId}, step "${se.step.name}": secret ${k} is not set now`,
            se.step.pos,
            `the audit log keeps secret names only: set ${k} as for that run (env file, -e or the environment)`,
          );
        else env[k] = now;
        fromNow.add(k);
      } else env[k] = String(v);
    }
    se.env = env;
  }
  return { fromNow: [...fromNow], newSteps };
}

/**
 * After planning: --steps/--from-step, then for a resume the shape check (exit 2 unless
 * --force) and the finished pairs, for any origin the artifact pins.
 */
export function applyOrigin(
  hf: Hadesfile,
  plan: RunPlan,
  o: SelectOptions,
  origin: Origin | undefined,
  env: { fromNow: string[]; newSteps: string[] },
): ShapeStep[] {
  const shape = planShape(plan, hf);
  selectSteps(plan, splitList(o.steps ?? []), o.fromStep);
  if (!origin) return shape;
  const { rec, mode } = origin;
  const diff = rec.shape ? shapeDiff(rec.shape, shape) : ['that run recorded no plan fingerprint (an older Hades wrote its log)'];
  if (mode === 'resume' && diff.length && (!rec.fingerprint || rec.fingerprint !== fingerprint(shape)) && !o.force)
    throw new UserError({
      message: `--resume ${rec.runId}: the plan's shape changed since that run:\n  ${diff.join('\n  ')}`,
      hint: 'resume only the same plan; --force resumes anyway (pairs are matched by step and host name), or start a new run',
    });
  const done = mode === 'resume' ? skipDone(plan, rec.done, rec.runId) : new Map<string, string[]>();
  const pins = new Map<string, string>();
  for (const a of rec.artifacts) if (a.tag !== undefined) pins.set(pinKey(a.registry, a.name, a.tag), a.digest);
  const { used, unpinned } = pinArtifacts(plan, pins);
  plan.origin = {
    mode,
    runId: rec.runId,
    status: rec.status,
    ...(rec.startedAt ? { startedAt: rec.startedAt } : {}),
    pins: used,
    unpinned,
    secretsFromEnv: env.fromNow,
    ...(env.newSteps.length ? { newSteps: env.newSteps } : {}),
    done: [...done].flatMap(([step, hosts]) => hosts.map((h) => [step, h] as [string, string])),
    ...(diff.length ? { shapeChanged: diff } : {}),
  };
  return shape;
}
