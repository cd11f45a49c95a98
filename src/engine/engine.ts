/**
 * Runs a RunPlan — the same object `--dry-run` prints. Steps in order; within a step,
 * batches in order; within a batch, hosts concurrently; per host, the guard then the
 * actions in order. First failure: no new host, batch or step starts; hosts already
 * running finish their current action and stop. The engine emits events and never
 * imports a reporter.
 */
import { setMaxListeners } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import type { Redactor } from '../env/secrets.js';
import { ActionFailure, GateDeclined, type ActionRuntime, type ArtifactAccess, type Gatekeeper, type SourceFiles } from '../actions/types.js';
import { describeAction } from '../actions/index.js';
import type { PlannedHost, PlannedStep, RunPlan } from '../plan/types.js';
import { envScript } from '../transport/shell.js';
import type { Transport } from '../transport/types.js';
import { AttemptsFailed, runAttempts } from './attempts.js';
import type { RunControl } from './control.js';
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

  // Every running command listens on these signals (one listener per in-flight exec):
  // with more than 10 hosts at once that is expected, not a leak — no warning on stderr.
  setMaxListeners(0, control.stopSignal, control.abortSignal);
  const onStop = () => emit({ type: 'run.stopping', message: 'interrupt: no new work starts; waiting for running actions (interrupt again to abort them)' });
  control.stopSignal.addEventListener('abort', onStop, { once: true });

  emit({ type: 'run.start', message: `plan ${plan.plan}`, hosts: [...new Set(plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.map((h) => h.host))))] });

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
      halt ??= 'failed';
      return done('failed', errorMessage(e));
    }

    if (ph.guard) {
      try {
        const res = await transport.exec(ph.guard.exec, { stdin: envScript(ph.env), signal: control.abortSignal });
        if (res.exitCode !== 0) return done('skipped', `guard exited ${res.exitCode ?? res.signal}: ${ph.guard.command}`);
      } catch (e) {
        halt ??= 'failed';
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
      };
      const ta = Date.now();
      const flush = () => {
        splitters.stdout.flush();
        splitters.stderr.flush();
      };
      const onRetry: Parameters<typeof runAttempts>[2]['onRetry'] = (f) => {
        flush();
        const why = errorMessage(f.error);
        emit({ type: 'action.retry', ...a, attempt: f.attempt, attempts: f.attempts, delayMs: f.delayMs, message: why, ...(f.exitCode !== undefined ? { exitCode: f.exitCode } : {}) });
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
        actions.push({ index: entry.index, title: entry.title, kind: entry.kind, status: declined ? 'declined' : 'failed', durationMs, error: msg, ...(exitCode !== undefined ? { exitCode } : {}), ...tries });
        emit({ type: 'action.end', ...a, status: declined ? 'declined' : 'failed', durationMs, message: msg, ...(exitCode !== undefined ? { exitCode } : {}), ...tries });
        halt ??= declined ? 'declined' : 'failed';
        return done('failed', msg);
      }
    }
    return done('ok');
  }

  const steps: StepSummary[] = [];
  for (const step of plan.steps) {
    const allHosts = step.batches.flatMap((b) => b.hosts);
    if (halted()) {
      steps.push({ name: step.name, status: 'not-run', hosts: allHosts.map((h) => ({ host: h.host, status: 'not-started', actions: [] })) });
      continue;
    }
    emit({ type: 'step.start', step: step.name, stepIndex: step.index, hosts: allHosts.map((h) => h.host), message: step.runsOn === 'orchestrator' ? step.runsOnReason : undefined });
    const hostResults: HostSummary[] = [];
    for (const batch of step.batches) {
      if (halted()) {
        hostResults.push(...batch.hosts.map((h) => ({ host: h.host, status: 'not-started' as const, actions: [] })));
        continue;
      }
      emit({ type: 'batch.start', step: step.name, stepIndex: step.index, batch: batch.index, hosts: batch.hosts.map((h) => h.host) });
      const results = await Promise.all(batch.hosts.map((h) => runHost(step, batch.index, h)));
      hostResults.push(...results);
      emit({ type: 'batch.end', step: step.name, stepIndex: step.index, batch: batch.index, status: results.every((r) => r.status === 'ok' || r.status === 'skipped') ? 'ok' : 'failed' });
    }
    const anyFailed = hostResults.some((h) => h.status === 'failed');
    const declined = hostResults.some((h) => h.actions.some((a) => a.status === 'declined'));
    const status: StepSummary['status'] = declined ? 'declined' : anyFailed ? 'failed' : hostResults.some((h) => h.status === 'stopped' || h.status === 'not-started') ? 'stopped' : 'ok';
    steps.push({ name: step.name, status, hosts: hostResults });
    emit({ type: 'step.end', step: step.name, stepIndex: step.index, status });
  }

  control.stopSignal.removeEventListener('abort', onStop);
  const status: RunStatus = control.stopping ? 'interrupted' : halt === 'declined' ? 'declined' : halt === 'failed' ? 'failed' : 'ok';
  const exitCode = { ok: EXIT.ok, failed: EXIT.failed, declined: EXIT.declined, interrupted: EXIT.interrupted }[status];
  const summary: RunSummary = { runId: plan.runId, plan: plan.plan, status, exitCode, durationMs: Date.now() - started, steps };
  emit({ type: 'run.end', status, exitCode, durationMs: summary.durationMs, summary });
  return summary;
}
