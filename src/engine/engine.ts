/**
 * Runs a RunPlan — the same object `--dry-run` prints. Steps in order; within a step,
 * batches in order; within a batch, hosts concurrently; per host, the guard then the
 * actions in order. A step's failure budget (`max_failures`, default 0) counts failed
 * hosts across all its batches: within it, a failed host stops only its own job; once
 * exceeded, no new host, batch or step starts, and hosts already running finish their
 * current action and stop. Later steps skip the hosts that failed in an earlier step. The
 * engine emits events and never imports a reporter.
 */
import { setMaxListeners } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import type { Redactor } from '../env/secrets.js';
import {
  ActionFailure,
  GateDeclined,
  type ActionRuntime,
  type ArtifactAccess,
  type Gatekeeper,
  type SourceFiles,
} from '../actions/types.js';
import { describeAction } from '../actions/index.js';
import type { PlannedHost, PlannedStep, RunPlan } from '../plan/types.js';
import { envScript } from '../shell/command.js';
import type { Transport } from '../transport/types.js';
import { AttemptsFailed, runAttempts } from './attempts.js';
import { ConnectionSchedule } from './connections.js';
import type { RunControl } from './control.js';
import { progressMeter } from './progress.js';
import type { ActionSummary, Emit, HadesEvent, HostSummary, RunStatus, RunSummary, StepSummary } from './events.js';
import { EXIT } from '../errors.js';

export interface EngineOptions {
  transportFor(host: PlannedHost): Transport;
  gate: Gatekeeper;
  emit: Emit;
  control: RunControl;
  /** Orchestrator-side files (digests cached for the run). */
  files: SourceFiles;
  artifacts: ArtifactAccess;
  /** Scrubs command output as a stream, before it is split into lines (the sinks' bus scrubs every event too). */
  redactor?: Redactor;
  /** Inventory order of a host (the summary lists failed hosts in it); default: order of appearance in the plan. */
  hostOrder?: (host: string) => number;
  /** Runs after the last step, before `run.end` (the end hooks, the host locks' release): run.end stays the last event. */
  beforeEnd?: (summary: RunSummary) => Promise<void>;
}

type Halt = 'failed' | 'declined' | undefined;

/**
 * Splits output chunks into whole lines per stream (so prefixes see lines). With a
 * redactor, the bytes are scrubbed as a stream first: UTF-8 decoded across chunks, a
 * secret split across chunks or lines still caught.
 */
class LineSplitter {
  private rest = '';
  private readonly scrub: { push(c: Buffer): string; end(): string };
  constructor(
    private readonly onLine: (line: string) => void,
    redactor: Redactor | undefined,
  ) {
    if (redactor) this.scrub = redactor.stream();
    else {
      const decoder = new StringDecoder('utf8');
      this.scrub = { push: (c) => decoder.write(c), end: () => decoder.end() };
    }
  }
  push(chunk: Buffer): void {
    this.lines(this.scrub.push(chunk));
  }
  private lines(text: string): void {
    const lines = (this.rest + text).split('\n');
    this.rest = lines.pop()!;
    for (const l of lines) this.onLine(l.endsWith('\r') ? l.slice(0, -1) : l);
  }
  flush(): void {
    this.lines(this.scrub.end());
    if (this.rest) this.onLine(this.rest);
    this.rest = '';
  }
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export async function runPlan(plan: RunPlan, opts: EngineOptions): Promise<RunSummary> {
  const started = Date.now();
  const { control } = opts;
  let halt: Halt;
  const emit = (e: Omit<HadesEvent, 'runId' | 'ts'>) => opts.emit({ runId: plan.runId, ts: new Date().toISOString(), ...e } as HadesEvent);
  const halted = () => halt !== undefined || control.stopping;
  /** The current step's failure budget: failed hosts counted across all its batches. */
  let budget = { max: 0, failures: 0 };
  const hostFailed = () => {
    if (++budget.failures > budget.max) halt ??= 'failed';
  };

  // Every running command listens on these signals (one listener per in-flight exec):
  // with more than 10 hosts at once that is expected, not a leak — no warning on stderr.
  setMaxListeners(0, control.stopSignal, control.abortSignal);
  const onStop = () =>
    emit({ type: 'run.stopping', message: 'interrupt: no new work starts; waiting for running actions (interrupt again to abort them)' });
  control.stopSignal.addEventListener('abort', onStop, { once: true });

  emit({
    type: 'run.start',
    message: `plan ${plan.plan}`,
    hosts: [...new Set(plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.map((h) => h.host))))],
  });

  async function runHost(step: PlannedStep, batch: number, ph: PlannedHost): Promise<HostSummary> {
    const t0 = Date.now();
    const actions: ActionSummary[] = [];
    const base = { step: step.name, stepIndex: step.index, batch, host: ph.host };
    emit({ type: 'host.start', ...base });
    const done = (status: HostSummary['status'], error?: string): HostSummary => {
      const durationMs = Date.now() - t0;
      emit({ type: 'host.end', ...base, status, durationMs, ...(error ? { message: error } : {}) });
      return { host: ph.host, status, actions, durationMs, ...(error ? { error } : {}) };
    };
    const transport = opts.transportFor(ph);
    try {
      await transport.connect();
    } catch (e) {
      hostFailed();
      return done('failed', errorMessage(e));
    }

    if (ph.guard) {
      try {
        const res = await transport.exec(ph.guard.exec, { stdin: envScript(ph.env), signal: control.abortSignal });
        if (res.exitCode !== 0) return done('skipped', `guard exited ${res.exitCode ?? res.signal}: ${ph.guard.command}`);
      } catch (e) {
        hostFailed();
        return done('failed', `guard could not run: ${errorMessage(e)}`);
      }
    }

    const env = { ...ph.env };
    for (const entry of ph.actions) {
      if (halted()) return done('stopped', control.stopping ? 'interrupted before this action' : 'stopped: another host failed');
      const a = { ...base, action: entry.title, actionIndex: entry.index, kind: entry.kind };
      emit({ type: 'action.start', ...a, command: describeAction(entry).join('\n') });
      const splitters = {
        stdout: new LineSplitter((data) => emit({ type: 'action.output', ...a, stream: 'stdout', data }), opts.redactor),
        stderr: new LineSplitter((data) => emit({ type: 'action.output', ...a, stream: 'stderr', data }), opts.redactor),
      };
      const meter = progressMeter((p) => emit({ ...p, ...a }));
      const rt: ActionRuntime = {
        transport,
        host: ph,
        step: step.name,
        signal: control.abortSignal,
        stopSignal: control.stopSignal,
        output: (stream, chunk) => splitters[stream].push(chunk),
        gate: opts.gate,
        files: opts.files,
        artifacts: opts.artifacts,
        env,
        attempt: (r) =>
          emit({
            type: 'action.attempt',
            ...a,
            attempt: r.attempt,
            status: r.ok ? 'ok' : 'failed',
            message: r.message,
            durationMs: r.durationMs,
          }),
        progress: (bytes, total) => meter.report(bytes, total),
      };
      const ta = Date.now();
      const flush = () => {
        splitters.stdout.flush();
        splitters.stderr.flush();
        meter.finish();
      };
      const onRetry: Parameters<typeof runAttempts>[2]['onRetry'] = (f) => {
        flush();
        const why = errorMessage(f.error);
        emit({
          type: 'action.retry',
          ...a,
          attempt: f.attempt,
          attempts: f.attempts,
          delayMs: f.delayMs,
          message: why,
          ...(f.exitCode !== undefined ? { exitCode: f.exitCode } : {}),
        });
      };
      try {
        const { outcome: out, attempts } = await runAttempts(entry, rt, { control, onRetry });
        if (out.env) Object.assign(env, out.env);
        flush();
        const durationMs = Date.now() - ta;
        const tries = entry.retry ? { attempts } : {};
        const detail = [out.detail, attempts > 1 ? `${out.status} after ${attempts} attempts` : undefined].filter(Boolean).join('; ');
        actions.push({ index: entry.index, title: entry.title, kind: entry.kind, status: out.status, durationMs, ...tries });
        emit({ type: 'action.end', ...a, status: out.status, durationMs, ...(detail ? { message: detail } : {}), ...tries });
      } catch (thrown) {
        flush();
        const e = thrown instanceof AttemptsFailed ? thrown.error : thrown;
        const attempts = thrown instanceof AttemptsFailed ? thrown.attempts : 1;
        const tries = entry.retry ? { attempts } : {};
        const durationMs = Date.now() - ta;
        const declined = e instanceof GateDeclined;
        const base = control.abortSignal.aborted && !(e instanceof ActionFailure) ? `aborted: ${errorMessage(e)}` : errorMessage(e);
        const msg = attempts > 1 ? `failed after ${attempts} attempts: ${base}` : base;
        const exitCode = e instanceof ActionFailure ? e.exitCode : undefined;
        actions.push({
          index: entry.index,
          title: entry.title,
          kind: entry.kind,
          status: declined ? 'declined' : 'failed',
          durationMs,
          error: msg,
          ...(exitCode !== undefined ? { exitCode } : {}),
          ...tries,
        });
        emit({
          type: 'action.end',
          ...a,
          status: declined ? 'declined' : 'failed',
          durationMs,
          message: msg,
          ...(exitCode !== undefined ? { exitCode } : {}),
          ...tries,
        });
        if (declined) halt ??= 'declined';
        else hostFailed();
        return done('failed', msg);
      }
    }
    return done('ok');
  }

  /** A host that failed in an earlier step: skipped here, and says so. */
  function skipFailed(step: PlannedStep, batch: number, ph: PlannedHost, earlier: string): HostSummary {
    const why = `failed in step "${earlier}"`;
    emit({
      type: 'host.end',
      step: step.name,
      stepIndex: step.index,
      batch,
      host: ph.host,
      status: 'skipped',
      durationMs: 0,
      message: why,
    });
    return { host: ph.host, status: 'skipped', actions: [], error: why };
  }

  /** When connections open and close (--max-connections): holds, prefetch, close after a host's last work. */
  const conns = new ConnectionSchedule(plan, opts.transportFor);
  const steps: StepSummary[] = [];
  /** Host → the step it failed in (steps on hosts only; an orchestrator step has no host to skip later). */
  const failedIn = new Map<string, string>();
  for (const step of plan.steps) {
    const allHosts = step.batches.flatMap((b) => b.hosts);
    if (halted()) {
      steps.push({
        name: step.name,
        status: 'not-run',
        hosts: allHosts.map((h) => ({ host: h.host, status: 'not-started', actions: [] })),
      });
      continue;
    }
    if (step.skipped) {
      emit({ type: 'step.start', step: step.name, stepIndex: step.index, hosts: [], message: `skipped: ${step.skipped}` });
      steps.push({ name: step.name, status: 'skipped', hosts: [], reason: step.skipped });
      emit({ type: 'step.end', step: step.name, stepIndex: step.index, status: 'skipped', message: step.skipped });
      continue;
    }
    budget = { max: step.maxFailures ?? 0, failures: 0 };
    emit({
      type: 'step.start',
      step: step.name,
      stepIndex: step.index,
      hosts: allHosts.map((h) => h.host),
      message: step.runsOn === 'orchestrator' ? step.runsOnReason : undefined,
    });
    const hostResults: HostSummary[] = [];
    for (const batch of step.batches) {
      if (halted()) {
        hostResults.push(...batch.hosts.map((h) => ({ host: h.host, status: 'not-started' as const, actions: [] })));
        continue;
      }
      emit({ type: 'batch.start', step: step.name, stepIndex: step.index, batch: batch.index, hosts: batch.hosts.map((h) => h.host) });
      const jobs = batch.hosts.map((h) => {
        const earlier = step.runsOn === 'hosts' ? failedIn.get(h.host) : undefined;
        return earlier !== undefined
          ? skipFailed(step, batch.index, h, earlier)
          : conns.job(step.index, batch.index, h, () => runHost(step, batch.index, h));
      });
      conns.batchStarted(step.index, batch.index); // after this batch's hosts asked for their connections
      const results = await Promise.all(jobs);
      hostResults.push(...results);
      emit({
        type: 'batch.end',
        step: step.name,
        stepIndex: step.index,
        batch: batch.index,
        status: results.every((r) => r.status === 'ok' || r.status === 'skipped') ? 'ok' : 'failed',
      });
    }
    const failed = hostResults.filter((h) => h.status === 'failed').map((h) => h.host);
    if (step.runsOn === 'hosts') for (const h of failed) if (!failedIn.has(h)) failedIn.set(h, step.name);
    const declined = hostResults.some((h) => h.actions.some((a) => a.status === 'declined'));
    const status: StepSummary['status'] = declined
      ? 'declined'
      : failed.length > budget.max
        ? 'failed'
        : hostResults.some((h) => h.status === 'stopped' || h.status === 'not-started')
          ? 'stopped'
          : 'ok';
    steps.push({
      name: step.name,
      status,
      hosts: hostResults,
      ...(failed.length ? { failed } : {}),
      ...(step.maxFailures !== undefined ? { maxFailures: step.maxFailures } : {}),
    });
    const within =
      status === 'ok' && failed.length
        ? `${failed.length} host(s) failed, within max_failures ${step.maxFailures}: ${failed.join(', ')}`
        : undefined;
    emit({ type: 'step.end', step: step.name, stepIndex: step.index, status, ...(within ? { message: within } : {}) });
  }

  control.stopSignal.removeEventListener('abort', onStop);
  const seen = [...new Set(plan.steps.flatMap((st) => st.batches.flatMap((b) => b.hosts.map((h) => h.host))))];
  const rank = opts.hostOrder ?? ((h: string) => seen.indexOf(h));
  const failedHosts = [...failedIn.keys()].sort((a, b) => rank(a) - rank(b));
  const anyFailed = steps.some((s) => s.failed?.length);
  const status: RunStatus = control.stopping
    ? 'interrupted'
    : halt === 'declined'
      ? 'declined'
      : halt === 'failed'
        ? 'failed'
        : anyFailed
          ? 'partial'
          : 'ok';
  const exitCode = { ok: EXIT.ok, partial: EXIT.partial, failed: EXIT.failed, declined: EXIT.declined, interrupted: EXIT.interrupted }[
    status
  ];
  const summary: RunSummary = {
    runId: plan.runId,
    plan: plan.plan,
    status,
    exitCode,
    durationMs: Date.now() - started,
    failedHosts,
    ...(plan.selection ? { selection: plan.selection } : {}),
    ...(plan.origin ? { origin: { mode: plan.origin.mode, runId: plan.origin.runId, pins: plan.origin.pins } } : {}),
    steps,
  };
  await opts.beforeEnd?.(summary);
  emit({ type: 'run.end', status, exitCode, durationMs: summary.durationMs, summary });
  return summary;
}
