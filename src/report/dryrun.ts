/**
 * `--dry-run`: the RunPlan as text — every step, batch, host and action with the exact
 * commands and the env each gets (secrets redacted). Touches nothing.
 */
import { describeAction } from '../actions/index.js';
import type { Redactor } from '../env/secrets.js';
import type { PlannedHooks, RunPlan } from '../plan/types.js';
import { TRUSTED_WALK } from '../shell/delivery.js';
import { hiddenNote, secretUses } from './hidden.js';
import { originLines } from './origin.js';

/** How the dry-run writes the trusted-directory prelude that every write command begins with (printed once, in full, at the top). */
export const PRELUDE_MARK = '«trusted-dir prelude» ';

function envLine(env: Record<string, string>, redactor: Redactor): string {
  const shown = redactor.env(env);
  return Object.entries(shown)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
}

export function renderPlan(plan: RunPlan, redactor: Redactor): string {
  const out: string[] = [];
  out.push(`plan ${plan.plan} (run ${plan.runId}) from ${plan.files.join(', ')}`);
  const o = plan.origin;
  const st = plan.stepSelection;
  const flags = `${plan.selection ? ` --limit ${plan.selection.patterns.join(',')}` : ''}${o ? ` --${o.mode === 'resume' ? 'resume' : 'replay'} ${o.runId}` : ''}${st?.steps ? ` --steps ${st.steps.join(',')}` : st?.fromStep ? ` --from-step ${st.fromStep}` : ''}${plan.offline ? ' --offline' : ''}`;
  out.push(`dry run: nothing is executed; this is exactly what \`hades plan ${plan.plan}${flags}\` runs`);
  if (plan.selection)
    out.push(
      `--limit ${plan.selection.patterns.join(',')}: ${plan.selection.hosts.length} host(s) selected: ${plan.selection.hosts.join(', ')}`,
    );
  if (plan.origin) out.push(...originLines(plan.origin));
  if (plan.offline)
    out.push(
      `offline: from cache ${plan.offline.cacheDir} (no registry is contacted; ${plan.offline.artifacts} artifact digest(s), each found and verified there)`,
    );
  const total = plan.steps.length;
  const preludeAt = out.length;
  let prelude = false;
  // The one long piece every write command starts with: shown once, then by name (the commands run are unchanged).
  const shorten = (line: string): string => {
    if (!line.includes(TRUSTED_WALK)) return line;
    prelude = true;
    return line.split(TRUSTED_WALK).join(PRELUDE_MARK);
  };
  out.push('', ...lockLines(plan).map((l) => shorten(redactor.text(l))));
  for (const s of plan.steps) {
    out.push('');
    const sizes = s.batchSizes ? s.batchSizes.join(', ') : String(s.batchSize);
    const budget =
      s.maxFailures !== undefined
        ? `; max_failures ${s.maxFailures} host(s)${s.maxFailuresAsWritten?.endsWith('%') ? ` (${s.maxFailuresAsWritten} of ${s.batches.reduce((n, b) => n + b.hosts.length, 0)}, rounded down)` : ''}`
        : '; stops at the first failure';
    const sel = s.skipped
      ? `skipped: ${s.skipped} (${s.candidates.length} host(s): ${s.candidates.join(', ')})`
      : s.runsOn === 'orchestrator'
        ? `once on the orchestrator (${s.runsOnReason})`
        : `${s.batches.reduce((n, b) => n + b.hosts.length, 0)} of ${s.candidates.length} host(s)${plan.selection ? ' (--limit)' : ''}${s.limit !== undefined ? ` (limit ${s.limit})` : ''}, batches of ${sizes}${s.parallelism ? ` (parallelism ${s.parallelism})` : ''}${budget}`;
    out.push(`step ${s.index + 1}/${total} "${s.name}": job ${s.job}, targets ${s.targets.join(', ')} → ${sel}`);
    out.push(`  env: ${envLine(s.env, redactor) || '(none)'}`);
    for (const b of s.batches) {
      out.push(`  batch ${b.index + 1}/${s.batches.length}: ${b.hosts.map((h) => h.host).join(', ')}`);
      for (const h of b.hosts) {
        const where = h.transport === 'local' ? 'local shell' : `ssh ${h.user ? `${h.user}@` : ''}${h.addr}${h.port ? `:${h.port}` : ''}`;
        out.push(`    host ${h.host} (${where})`);
        const builtins = Object.fromEntries(Object.entries(h.env).filter(([k]) => k.startsWith('HADES_HOST_')));
        out.push(`      env +: ${envLine(builtins, redactor)}`);
        if (h.guard) out.push(`      guard (skip this host unless it exits 0): $ ${h.guard.command}`);
        h.actions.forEach((a, i) => {
          out.push(`      ${i + 1}. [${a.kind}] ${a.title}${a.become ? `  (become ${a.become} via sudo -n)` : ''}`);
          for (const line of describeAction(a)) out.push(`         ${shorten(redactor.text(line)).replace(/\n/g, '\n           ')}`);
          const uses = a.kind === 'template' || a.kind === 'copy' ? secretUses(a.source, redactor) : [];
          if (uses.length) out.push(`         (${hiddenNote(uses)}; its sha256 is not shown either)`);
        });
      }
    }
  }
  if (plan.hooks) out.push('', ...hookLines(plan.hooks).map((l) => redactor.text(l)));
  if (prelude) {
    out.splice(
      preludeAt,
      0,
      '',
      `every write command below (mkdir, copy, template, pull, the host locks) begins with this check that no directory on its path can be changed by another user; it is written ${PRELUDE_MARK.trim()} there:`,
      `  ${TRUSTED_WALK.trim()}`,
    );
  }
  return out.join('\n');
}

/** The host locks: taken in this order before step 1, released at the end (src/engine/lock.ts). */
function lockLines(plan: RunPlan): string[] {
  if (!plan.locks) return ['host locks: none (--no-lock)'];
  if (!plan.locks.length) return ['host locks: none (the plan touches no host)'];
  const out = [
    `host locks: taken before step 1, all hosts at once (record state: trying), then confirmed (state: held); when another run holds one, given back and (only if that run is itself still taking its locks) taken again one host after another in this order; as the login user (never become); another run holding one stops this run (exit 5) before anything runs; released at the end (also on failure, a declined gate, Ctrl-C):`,
  ];
  for (const l of plan.locks) {
    out.push(`  lock ${l.host} (${l.transport === 'local' ? 'local shell' : 'ssh'}): ${l.path}`);
    out.push(`    take: $ HADES_LOCK_RECORD=<the lock record: run, plan, by user@machine, pid, started, state>; ${l.acquire}`);
    out.push(`    confirm: $ HADES_LOCK_RECORD=<the same record, state: held>; ${l.confirm}`);
    out.push(`    release: $ ${l.release}`);
  }
  return out;
}

/** The plan's hooks, in the order they would run. */
function hookLines(h: PlannedHooks): string[] {
  const out = [
    `hooks: local commands run by /bin/sh -c on the orchestrator in ${h.cwd}, the run summary as JSON on stdin; a failing hook does not change the run's outcome or exit code:`,
  ];
  const name = {
    on_start: 'on_start (after the locks, before step 1)',
    on_success: 'on_success (when the run exits 0)',
    on_failure: 'on_failure (any other outcome)',
  } as const;
  for (const k of ['on_start', 'on_success', 'on_failure'] as const) for (const c of h[k]) out.push(`  ${name[k]}: $ ${c}`);
  return out;
}
