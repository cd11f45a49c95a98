/** Shared by the commands: load the files, resolve a plan's env and plan it. */
import { randomBytes } from 'node:crypto';
import type { Hadesfile, OciRegistrySpec, PlanSpec } from '../config/model.js';
import { planWithSources } from '../plan/with-sources.js';
import { envRefs, loadEnvSources, resolvePlanEnv } from '../env/resolve.js';
import { DEFAULT_SECRET_PATTERNS, Redactor, setOutputRedactor } from '../env/secrets.js';
import { learnTemplateDigests } from '../report/hidden.js';
import { Problems, UserError } from '../errors.js';
import type { RunPlan } from '../plan/types.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';

export function findPlan(hf: Hadesfile, name: string): PlanSpec {
  const plan = hf.plans.get(name);
  if (!plan) {
    const names = [...hf.plans.keys()];
    throw new UserError({
      message: `unknown plan "${name}"`,
      hint: names.length ? `plans in ${hf.files.join(', ')}: ${names.join(', ')}` : `no plans are declared in ${hf.files.join(', ')}`,
    });
  }
  return plan;
}

/** A unique, sortable run id: UTC timestamp + random suffix. */
export function makeRunId(now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${randomBytes(3).toString('hex')}`;
}

export interface Prepared {
  hf: Hadesfile;
  plan: RunPlan;
  redactor: Redactor;
  envFiles: string[];
}

/** `hf`: the files when the caller has loaded them already. */
export async function preparePlan(name: string, opts: CommonOptions, hf: Hadesfile = loadFiles(opts)): Promise<Prepared> {
  const spec = findPlan(hf, name);
  // The redactor knows every secret before any message can carry one: the OS environment's
  // secret-named values, then the env files and -e, then each resolved map (also when
  // resolving fails) — with the vars built from a secret (tainted) counted as secrets.
  const redactor = new Redactor([...DEFAULT_SECRET_PATTERNS, ...hf.secretPatterns, ...opts.secretPattern]);
  setOutputRedactor(redactor);
  redactor.learn(process.env);
  const problems = new Problems();
  const sources = loadEnvSources(hf, { cliVars: opts.env, envFiles: opts.envFile, cwd: process.cwd(), osEnv: process.env }, problems);
  redactor.taint(envRefs(spec, sources));
  redactor.learn(sources.fileVars);
  redactor.learn(sources.cliVars);
  const stepEnvs = resolvePlanEnv(hf, spec, sources, problems, (env) => redactor.learn(env));
  const secretNames = [...new Set(stepEnvs.flatMap((s) => Object.keys(s.env)).filter((k) => redactor.isSecret(k)))];
  const plan = await planWithSources({ hf, plan: spec, stepEnvs, runId: makeRunId(), secretNames });
  learnTemplateDigests(plan, redactor);
  await checkRegistries(hf, plan, redactor);
  return { hf, plan, redactor, envFiles: sources.files };
}

/** The registries a plan's actions use, by name. */
export function registriesUsed(plan: RunPlan): Set<string> {
  const used = new Set<string>();
  for (const s of plan.steps)
    for (const b of s.batches)
      for (const h of b.hosts)
        for (const a of h.actions) {
          if (a.kind === 'push' || a.kind === 'pull') used.add(a.registry);
          if (a.kind === 'promote') used.add(a.from).add(a.to);
        }
  return used;
}

/**
 * Before anything runs: every OCI registry the plan uses has its credentials at hand
 * and a usable oras CLI is installed. All problems at once, at the registry's position.
 */
async function checkRegistries(hf: Hadesfile, plan: RunPlan, redactor: Redactor): Promise<void> {
  const oci = [...registriesUsed(plan)].map((n) => hf.registries.get(n)).filter((r): r is OciRegistrySpec => r?.type === 'oci');
  if (!oci.length) return;
  const problems = new Problems();
  const { resolveOciAuth } = await import('../registry/oci/auth.js');
  const { orasVersion } = await import('../registry/oci/oras.js');
  for (const spec of oci) {
    try {
      const auth = resolveOciAuth(spec, process.env);
      if (auth.kind === 'password') redactor.addValue(auth.password);
    } catch (e) {
      if (e instanceof UserError) problems.addAll(e.problems);
      else throw e;
    }
  }
  const oras = await orasVersion(process.env.HADES_ORAS || 'oras');
  if ('error' in oras) problems.add(`registry "${oci[0]!.name}" is an OCI registry, which needs the oras CLI: ${oras.error}`, oci[0]!.pos, 'hades doctor shows what was found');
  problems.throwIfAny();
}
