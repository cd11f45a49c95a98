/** Shared by the commands: load the files, resolve a plan's env and plan it. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Hadesfile, OciRegistrySpec, PlanSpec } from '../config/model.js';
import { planWithSources } from '../plan/with-sources.js';
import { envRefs, loadEnvSources, resolvePlanEnv } from '../env/resolve.js';
import { DEFAULT_SECRET_PATTERNS, Redactor, setOutputRedactor } from '../env/secrets.js';
import { learnTemplateDigests } from '../report/hidden.js';
import { Problems, UserError, type Problem } from '../errors.js';
import { fileLines, resolveSelection, splitLimitArgs, type LimitPattern, type Selection } from '../inventory/selection.js';
import type { RunPlan } from '../plan/types.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';
import { applyOrigin, fillFromOrigin, findOrigin, pinEnv, type SelectOptions } from './replay.js';
import type { ShapeStep } from '../plan/select.js';

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
  const ts = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${ts}-${randomBytes(3).toString('hex')}`;
}

export interface Prepared {
  hf: Hadesfile;
  plan: RunPlan;
  redactor: Redactor;
  envFiles: string[];
  /** The plan's shape (steps, jobs, action kinds): its fingerprint goes into the audit log. */
  shape: ShapeStep[];
  /** What the plan was planned from (`--check` plans it again with secret values masked). */
  planInput: Parameters<typeof planWithSources>[0];
}

/** `hf`: the files when the caller has loaded them already. */
export async function preparePlan(
  name: string,
  opts: CommonOptions & { limit?: string[]; offline?: boolean; cacheDir?: string; dryRun?: boolean } & SelectOptions,
  hf: Hadesfile = loadFiles(opts),
): Promise<Prepared> {
  const spec = findPlan(hf, name);
  const origin = findOrigin(hf, name, opts);
  const selection = opts.limit?.length ? readSelection(hf, opts.limit) : undefined;
  // The redactor knows every secret before any message can carry one: the OS environment's
  // secret-named values, then the env files and -e, then each resolved map (also when
  // resolving fails) — with the vars built from a secret (tainted) counted as secrets.
  const redactor = new Redactor([...DEFAULT_SECRET_PATTERNS, ...hf.secretPatterns, ...opts.secretPattern]);
  setOutputRedactor(redactor);
  redactor.learn(process.env);
  const problems = new Problems();
  const sources = loadEnvSources(hf, { cliVars: opts.env, envFiles: opts.envFile, cwd: process.cwd(), osEnv: process.env }, problems);
  if (origin) fillFromOrigin(sources, origin.rec);
  redactor.taint(envRefs(spec, sources));
  redactor.learn(sources.fileVars);
  redactor.learn(sources.cliVars);
  const stepEnvs = resolvePlanEnv(hf, spec, sources, problems, (env) => redactor.learn(env));
  const pinned = origin ? pinEnv(stepEnvs, origin.rec, problems) : { fromNow: [], newSteps: [] };
  problems.throwIfAny();
  const secretNames = [...new Set(stepEnvs.flatMap((s) => Object.keys(s.env)).filter((k) => redactor.isSecret(k)))];
  const planInput = { hf, plan: spec, stepEnvs, runId: makeRunId(), secretNames, ...(selection ? { selection } : {}) };
  const plan = await planWithSources(planInput);
  const shape = applyOrigin(hf, plan, opts, origin, pinned);
  learnTemplateDigests(plan, redactor);
  if (opts.offline) {
    // No registry is contacted (nor its credentials or oras needed): the cache must hold everything.
    const [{ checkOffline }, { defaultCacheDir }] = await Promise.all([import('./offline.js'), import('../engine/artifacts.js')]);
    await checkOffline(plan, opts.cacheDir ? resolve(process.cwd(), opts.cacheDir) : defaultCacheDir(), !opts.dryRun);
  } else await checkRegistries(hf, plan, redactor);
  return { hf, plan, redactor, envFiles: sources.files, shape, planInput };
}

/**
 * `--limit a,b --limit @file`: the patterns (an `@file` gives one per line), resolved against
 * the inventory. Every pattern must match a host: all mistakes at once, exit 2.
 */
export function readSelection(hf: Hadesfile, args: string[]): Selection {
  const problems: Problem[] = [];
  const patterns: LimitPattern[] = [];
  const given = splitLimitArgs(args);
  for (const g of given) {
    if (!g.startsWith('@')) {
      patterns.push({ pattern: g });
      continue;
    }
    const file = g.slice(1);
    let text: string;
    try {
      text = readFileSync(resolve(process.cwd(), file), 'utf8');
    } catch (e) {
      problems.push({
        message: `--limit ${g}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        hint: 'give a file with one host name per line (e.g. one written by --failed-hosts-file)',
      });
      continue;
    }
    const lines = fileLines(text, file);
    if (!lines.length)
      problems.push({
        message: `--limit ${g}: ${file} lists no hosts`,
        hint: 'an empty file selects nothing (a --failed-hosts-file is empty when no host failed): drop --limit to run on every host',
      });
    patterns.push(...lines);
  }
  if (!given.length) problems.push({ message: '--limit is empty', hint: 'give host names, globs (web-*), target:NAME or @FILE' });
  const selected = resolveSelection(hf, patterns, problems);
  if (problems.length) throw new UserError(problems);
  return { patterns: given, hosts: [...hf.hosts.keys()].filter((h) => selected.has(h)) };
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
  const { OciSettings } = await import('../registry/oci/settings.js');
  const { registryAuthSecrets } = await import('../registry/oci/env-auth.js');
  for (const s of registryAuthSecrets(process.env)) redactor.addValue(s);
  const { orasVersion } = await import('../registry/oci/oras.js');
  for (const spec of oci) {
    try {
      // url, mirrors (their ${VAR}s), timeouts and credentials, as the run will open them
      const { auth } = new OciSettings(spec);
      if (auth.kind === 'password') redactor.addValue(auth.password);
    } catch (e) {
      if (e instanceof UserError) problems.addAll(e.problems);
      else throw e;
    }
  }
  const oras = await orasVersion(process.env.HADES_ORAS || 'oras');
  if ('error' in oras)
    problems.add(
      `registry "${oci[0]!.name}" is an OCI registry, which needs the oras CLI: ${oras.error}`,
      oci[0]!.pos,
      'hades doctor shows what was found',
    );
  problems.throwIfAny();
}
