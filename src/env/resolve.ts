/**
 * Env layering, expansion and job contracts.
 *
 * Layers, lowest first: job defaults < plan env < step env < env files (.env beside the
 * hadesfile, then --env-file in order) < -e KEY=VALUE.
 * `${VAR}` / `${VAR:-default}` in plan, step and -e values expand once, from the OS
 * environment, the env files and -e (a step value may also use the plan's vars).
 * Everything is checked before anything runs; all problems are reported together.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import dotenv from 'dotenv';
import { expand as dotenvExpand } from 'dotenv-expand';
import type { Hadesfile, JobSpec, PlanSpec, StepSpec } from '../config/model.js';
import { BUILTIN_ENV } from '../config/model.js';
import { Problems, type Position } from '../errors.js';
import { expand } from './expand.js';
import { ENV_NAME } from '../shell/command.js';

export interface EnvInputs {
  /** `-e KEY=VALUE` flags as given. */
  cliVars: string[];
  /** `--env-file` paths as given (resolved against cwd). */
  envFiles: string[];
  cwd: string;
  /** The OS environment (process.env), used only as an expansion source. */
  osEnv: Record<string, string | undefined>;
}

export interface EnvSources {
  /** Vars from env files (dotenv), in layer order, already expanded by dotenv-expand. */
  fileVars: Record<string, string>;
  /** -e vars, expanded. */
  cliVars: Record<string, string>;
  /** Which files were read (for the audit log). */
  files: string[];
  /** Expansion context: OS env < files < -e. */
  context: Record<string, string | undefined>;
  /** For each file and -e var, the names its value was expanded from (secret taint). */
  refs: Map<string, Set<string>>;
}

/** Every name a value refers to: `${A}`, `${A:-x}` and (dotenv files) `$A`. */
const ANY_REF = /\$\{?([A-Za-z_][A-Za-z0-9_]*)/g;
function addRefs(refs: Map<string, Set<string>>, name: string, raw: string): void {
  for (const m of raw.matchAll(ANY_REF)) {
    let set = refs.get(name);
    if (!set) {
      set = new Set();
      refs.set(name, set);
    }
    set.add(m[1]!);
  }
}

/**
 * What each var of the plan is built from (files, -e, plan and step env): a var whose
 * value came from a secret is itself secret (Redactor.taint).
 */
export function envRefs(plan: PlanSpec, sources: EnvSources): Map<string, Set<string>> {
  const refs = new Map([...sources.refs].map(([k, v]) => [k, new Set(v)]));
  for (const [k, v] of Object.entries(plan.env)) addRefs(refs, k, v);
  for (const step of plan.steps) for (const [k, v] of Object.entries(step.env)) addRefs(refs, k, v);
  return refs;
}

export interface StepEnv {
  step: StepSpec;
  job: JobSpec;
  /** Exactly the env the job receives in this step (without per-host built-ins). */
  env: Record<string, string>;
}

const isBuiltin = (k: string) => (BUILTIN_ENV as readonly string[]).includes(k);

function parseCliVar(raw: string, problems: Problems): [string, string] | undefined {
  const eq = raw.indexOf('=');
  if (eq <= 0) {
    problems.add(`-e ${JSON.stringify(raw)}: expected KEY=VALUE`, undefined, 'write -e NAME=value (the value may contain = and ,)');
    return undefined;
  }
  const k = raw.slice(0, eq);
  if (!ENV_NAME.test(k)) {
    problems.add(
      `-e ${JSON.stringify(raw)}: invalid variable name ${JSON.stringify(k)}`,
      undefined,
      'names are letters, digits and _, not starting with a digit',
    );
    return undefined;
  }
  if (isBuiltin(k)) {
    problems.add(`-e ${k}: ${k} is a read-only built-in variable`, undefined, 'choose another name; HADES_* built-ins are set by Hades');
    return undefined;
  }
  return [k, raw.slice(eq + 1)];
}

/** Reads env files and -e flags. Problems (bad -e, unreadable file) are reported together. */
export function loadEnvSources(hf: Hadesfile, inputs: EnvInputs, problems = new Problems()): EnvSources {
  const files: string[] = [];
  const dotenvBeside = join(hf.baseDir, '.env');
  if (existsSync(dotenvBeside)) files.push(dotenvBeside);
  for (const f of inputs.envFiles) {
    const p = resolvePath(inputs.cwd, f);
    if (!existsSync(p)) problems.add(`--env-file ${f}: no such file`, undefined, `looked for ${p}`);
    else files.push(p);
  }
  const fileVars: Record<string, string> = {};
  const refs = new Map<string, Set<string>>();
  for (const f of files) {
    let parsed: Record<string, string>;
    try {
      parsed = dotenv.parse(readFileSync(f));
    } catch (e) {
      problems.add(`cannot read env file ${f}: ${(e as Error).message}`);
      continue;
    }
    // dotenv conventions: ${VAR} inside a file expands from the OS env and earlier files.
    const processEnv: Record<string, string> = { ...(inputs.osEnv as Record<string, string>), ...fileVars };
    for (const [k, v] of Object.entries(parsed)) addRefs(refs, k, v);
    dotenvExpand({ parsed, processEnv });
    for (const [k, v] of Object.entries(parsed)) {
      if (isBuiltin(k)) {
        problems.add(`${f}: ${k} is a read-only built-in variable`, undefined, 'remove it from the env file');
        continue;
      }
      fileVars[k] = v;
    }
  }
  const rawCli: Record<string, string> = {};
  for (const raw of inputs.cliVars) {
    const kv = parseCliVar(raw, problems);
    if (kv) {
      rawCli[kv[0]] = kv[1];
      addRefs(refs, kv[0], kv[1]);
    }
  }
  const base = { ...inputs.osEnv, ...fileVars };
  const cliVars: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawCli)) {
    const r = expand(v, base);
    for (const m of r.missing)
      problems.add(`-e ${k}: \${${m}} is not set`, undefined, `set ${m} in the environment or an env file, or write \${${m}:-default}`);
    cliVars[k] = r.value;
  }
  return { fileVars, cliVars, files, context: { ...base, ...cliVars }, refs };
}

function expandMap(
  map: Record<string, string>,
  posOf: Record<string, Position>,
  context: Record<string, string | undefined>,
  where: string,
  problems: Problems,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map)) {
    const r = expand(v, context);
    for (const m of r.missing)
      problems.add(
        `${where} ${k}: \${${m}} is not set`,
        posOf[k],
        `set ${m} in the environment, an env file or with -e ${m}=..., or write \${${m}:-default}`,
      );
    out[k] = r.value;
  }
  return out;
}

/**
 * Resolves the env every step's job receives. Throws UserError with every problem.
 * `learn` sees every resolved map first (also when problems follow), so that the secrets
 * in it are known to the redactor before any message is printed.
 */
export function resolvePlanEnv(
  hf: Hadesfile,
  plan: PlanSpec,
  sources: EnvSources,
  problems = new Problems(),
  learn?: (env: Record<string, string>) => void,
): StepEnv[] {
  const planEnv = expandMap(plan.env, plan.envPos, sources.context, `plan "${plan.name}" env`, problems);
  learn?.(planEnv);
  const out: StepEnv[] = [];
  for (const step of plan.steps) {
    const job = hf.jobs.get(step.job);
    if (!job) {
      problems.add(`step "${step.name}" uses unknown job "${step.job}"`, step.pos);
      continue;
    }
    const stepEnv = expandMap(step.env, step.envPos, { ...sources.context, ...planEnv }, `step "${step.name}" env`, problems);
    const defaults: Record<string, string> = {};
    if (job.env) for (const [k, c] of Object.entries(job.env)) if (c.default !== undefined) defaults[k] = c.default;
    const merged: Record<string, string> = { ...defaults, ...planEnv, ...stepEnv, ...sources.fileVars, ...sources.cliVars };
    learn?.(merged);
    let env: Record<string, string>;
    if (job.env) {
      env = {};
      const missing: string[] = [];
      for (const [k, c] of Object.entries(job.env)) {
        if (merged[k] !== undefined) env[k] = merged[k];
        else if (c.required) missing.push(k);
      }
      if (missing.length)
        problems.add(
          `step "${step.name}": job "${job.name}" requires ${missing.map((m) => JSON.stringify(m)).join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not set`,
          step.pos,
          `set ${missing.join(', ')} in the step's or plan's env, an env file, or with -e ${missing[0]}=...`,
        );
      // (a step var the contract doesn't declare is rejected by the loader: the typo guard)
    } else {
      env = merged;
    }
    out.push({ step, job, env });
  }
  problems.throwIfAny();
  return out;
}
