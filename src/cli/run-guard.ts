/**
 * What `hades plan` wraps around the engine (issue 14): the host locks (taken before step 1,
 * released at the end — also on failure, a declined gate and Ctrl-C) and the plan's hooks
 * (on_start after the locks; on_success / on_failure after the last step, while the locks
 * are still held). Both are planned before anything runs (RunPlan.locks / .hooks), so
 * `--dry-run` prints exactly what runs.
 */
import { hostname, userInfo } from 'node:os';
import type { Hadesfile } from '../config/model.js';
import type { HadesEvent, RunSummary } from '../engine/events.js';
import { endHook, runHooks } from '../engine/hooks.js';
import { acquireLocks, describeHolder, lockRecordText, planLocks, releaseLocks, type LockEvents } from '../engine/lock.js';
import type { Redactor } from '../env/secrets.js';
import { EXIT } from '../errors.js';
import type { RunPlan } from '../plan/types.js';
import type { Transport } from '../transport/types.js';

/** Adds the lock and hook commands to the plan (before --dry-run prints it). */
export function addLocksAndHooks(hf: Hadesfile, plan: RunPlan, lock: boolean): void {
  if (lock) plan.locks = planLocks(hf, plan);
  const spec = hf.plans.get(plan.plan);
  if (spec?.hooks) plan.hooks = { cwd: spec.baseDir ?? hf.baseDir, ...spec.hooks };
}

export interface GuardOptions {
  plan: RunPlan;
  transportFor(host: string): Transport;
  emit(e: HadesEvent): void;
  redactor: Redactor;
  stopping(): boolean;
}

function whoAmI(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `${process.env.USER ?? 'unknown'}@${hostname()}`;
  }
}

/**
 * Runs `body` under the plan's locks and hooks; returns the exit code (the run's, or 5 / 1 /
 * 130 when it never started). `body` hands `beforeEnd` to the engine: the end hook and the
 * release run after the last step and before `run.end`, so the summary stays the last event.
 */
export async function guardedRun(
  o: GuardOptions,
  body: (beforeEnd: (s: RunSummary) => Promise<void>) => Promise<RunSummary>,
): Promise<{ exitCode: number; summary?: RunSummary }> {
  const { plan } = o;
  const emit = (e: Omit<HadesEvent, 'runId' | 'ts'>) => o.emit({ runId: plan.runId, ts: new Date().toISOString(), ...e } as HadesEvent);
  const ev: LockEvents = {
    acquired: (host, path) => emit({ type: 'lock.acquired', host, message: path }),
    held: (host, holder) => emit({ type: 'lock.held', host, message: holder }),
    failed: (host, message) => emit({ type: 'lock.failed', host, message }),
    released: (host) => emit({ type: 'lock.released', host }),
  };
  const locks = plan.locks ?? [];
  const fields = { run: plan.runId, plan: plan.plan, by: whoAmI(), pid: String(process.pid), started: new Date().toISOString() };
  const got = await acquireLocks(locks, o.transportFor, (state) => lockRecordText(fields, state), ev);
  const fatal = got.errors.filter((e) => !e.unreachable);
  if (got.held.length || fatal.length) {
    for (const h of got.held)
      process.stderr.write(o.redactor.text(`error: host ${h.host} is locked by another run: ${describeHolder(h.record)}\n`));
    for (const e of fatal) process.stderr.write(o.redactor.text(`error: cannot lock host ${e.host}: ${e.message}\n`));
    const names = got.held.map((h) => h.host).join(',');
    const hint = got.held.length
      ? `    hint: wait for that run to finish (or use --limit to leave the host out); a run killed with kill -9 leaves its lock: see it with \`hades lock status --limit ${names}\` and clear it with \`hades lock release --force --limit ${names}\`\n`
      : `    hint: the lock directory must be owned by root or the login user and not writable by others; set the host's lock_dir:, or run with --no-lock\n`;
    process.stderr.write(
      `${hint}no action was run: ${got.held.length ? `${got.held.length} host(s) locked by another run` : `${fatal.length} host(s) could not be locked`}\n`,
    );
    return { exitCode: got.held.length ? EXIT.locked : EXIT.failed };
  }
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await got.confirmed;
    const failed = await releaseLocks(got.taken, o.transportFor, ev);
    if (failed.length)
      process.stderr.write(
        `warning: the lock of ${failed.join(', ')} could not be released: see \`hades lock status --limit ${failed.join(',')}\`\n`,
      );
  };
  try {
    if (o.stopping()) {
      process.stderr.write('hades: interrupted before the first step; no action was run\n');
      return { exitCode: EXIT.interrupted };
    }
    const hookCtx = { plan: plan.plan, runId: plan.runId, redactor: o.redactor, emit };
    const hosts = locks.length
      ? locks.map((l) => l.host)
      : [...new Set(plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.map((h) => h.host))))];
    await runHooks(
      plan.hooks,
      'on_start',
      {
        runId: plan.runId,
        plan: plan.plan,
        status: 'started',
        ...(plan.selection ? { selection: plan.selection } : {}),
        hosts,
        locked: got.taken.map((l) => l.host),
        steps: plan.steps.map((s) => ({ name: s.name, job: s.job, hosts: s.batches.flatMap((b) => b.hosts.map((h) => h.host)) })),
      },
      hookCtx,
    );
    const summary = await body(async (s) => {
      await runHooks(plan.hooks, endHook(s.exitCode), { ...s }, hookCtx);
      await release();
    });
    return { exitCode: summary.exitCode, summary };
  } finally {
    await release();
  }
}
