/** `hades validate`, `hades list`, `hades schema`. */
import { loadSchema } from '../config/load.js';
import { EXIT, UserError } from '../errors.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';

export async function validateCommand(plan: string | undefined, opts: CommonOptions): Promise<number> {
  const hf = loadFiles(opts);
  let detail = '';
  if (plan) {
    const { preparePlan } = await import('./context.js');
    const p = await preparePlan(plan, opts, hf);
    const hosts = new Set(p.plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.map((h) => h.host))));
    detail = `; plan "${plan}" resolves: ${p.plan.steps.length} step(s) on ${hosts.size} host(s)`;
  } else {
    // No plan named: every literal of every plan and job is still checked (fields with ${…} need a plan's env).
    const { lintHadesfile } = await import('../plan/lint.js');
    const problems = await lintHadesfile(hf);
    if (problems.length) throw new UserError(problems);
  }
  process.stdout.write(
    `ok: ${hf.files.length} file(s), ${hf.plans.size} plan(s), ${hf.jobs.size} job(s), ${[...hf.hosts.values()].filter((h) => !h.builtin).length} host(s), ${hf.targets.size} target(s), ${hf.registries.size} registr${hf.registries.size === 1 ? 'y' : 'ies'}${detail}\n`,
  );
  return EXIT.ok;
}

export async function listCommand(opts: CommonOptions): Promise<number> {
  const hf = loadFiles(opts);
  const { asWritten, resolveTargets } = await import('../inventory/targets.js');
  const { orchestratorReason } = await import('../plan/plan.js');
  const out: string[] = [];
  out.push('plans:');
  for (const p of hf.plans.values()) {
    out.push(`  ${p.name}`);
    for (const s of p.steps) {
      const job = hf.jobs.get(s.job);
      const where =
        job && orchestratorReason(job)
          ? 'orchestrator'
          : resolveTargets(hf, s.targets)
              .hosts.map((h) => h.name)
              .join(', ');
      const extra = [
        s.limit !== undefined ? `limit ${s.limit}` : '',
        s.parallelism ? `parallelism ${asWritten(s.parallelism)}` : '',
        s.maxFailures ? `max_failures ${asWritten(s.maxFailures)}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      out.push(`    - ${s.name}: job ${s.job} on ${s.targets.join(', ')} (${where})${extra ? ` [${extra}]` : ''}`);
    }
  }
  out.push('jobs:');
  for (const j of hf.jobs.values())
    out.push(
      `  ${j.name}: ${j.actions.map((a) => a.kind).join(', ')}${j.local ? ' (local)' : ''}${j.env ? ` env: ${Object.keys(j.env).join(', ')}` : ''}`,
    );
  out.push('targets:');
  for (const [name, t] of hf.targets) out.push(`  ${name}: ${t.hosts.join(', ')}`);
  out.push('hosts:');
  for (const h of hf.hosts.values())
    out.push(
      `  ${h.name}: ${h.local ? 'local' : `${h.user ? `${h.user}@` : ''}${h.addr}${h.port ? `:${h.port}` : ''}`}${h.builtin ? ' (built-in)' : ''}`,
    );
  out.push('registries:');
  for (const r of hf.registries.values()) out.push(`  ${r.name}: ${r.type} ${r.type === 'filesystem' ? r.path : r.url}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return EXIT.ok;
}

export async function schemaCommand(): Promise<number> {
  process.stdout.write(`${JSON.stringify(loadSchema(), null, 2)}\n`);
  return EXIT.ok;
}
