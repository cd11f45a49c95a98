/**
 * One event shape for every sink (the TTY frame, plain lines, JSON lines, the audit log), so
 * every view shows the same truth. JSON output is exactly these objects, one per line.
 */
import type { Selection } from '../inventory/selection.js';

export type EventType =
  | 'run.start'
  | 'step.start'
  | 'step.end'
  | 'batch.start'
  | 'batch.end'
  | 'host.start'
  | 'host.end'
  | 'action.start'
  | 'action.output'
  | 'action.attempt'
  | 'action.retry'
  | 'action.end'
  // A long transfer (copy, template, pull, push, promote): `bytes` so far of `total` (when known); at most ~2 per second per action.
  | 'action.progress'
  | 'gate.wait'
  | 'run.stopping'
  | 'run.end'
  // Host locks (src/engine/lock.ts): `host`, `message` (the lock's path, the holder, what failed).
  | 'lock.acquired'
  | 'lock.held'
  | 'lock.failed'
  | 'lock.released'
  // Plan hooks (src/engine/hooks.ts): `action` = on_start|on_success|on_failure, `command`; output as `stream`/`data`; end with `status` ok|failed, `exitCode`.
  | 'hook.start'
  | 'hook.output'
  | 'hook.end'
  // Registry lifecycle (src/cli/registry-lifecycle.ts): what `registry rm --force` / `registry gc` removed (or why it failed), in `message`.
  | 'registry.removed'
  | 'registry.failed'
  // A registry read that fell back (src/engine/registry-warnings.ts): `registry`, `message` (the mirror, why it failed, what is read instead).
  | 'registry.warning'
  // `--check` (src/engine/check.ts): one check.change per action per host (`status` = the change kind, `change`, `diff`);
  // check.host when a host is not checked (guard, connection); check.step (`status` skipped, `message` why) for a step
  // left out by --steps/--from-step/--limit; check.end last, with `counts`.
  | 'check.change'
  | 'check.step'
  | 'check.host'
  | 'check.end';

export type HostStatus = 'ok' | 'failed' | 'skipped' | 'stopped' | 'not-started';
export type ActionResultStatus = 'ok' | 'changed' | 'unchanged' | 'failed' | 'declined';
export type StepStatus = 'ok' | 'failed' | 'declined' | 'stopped' | 'not-run' | 'skipped';
/** 'partial': every step completed, but some hosts failed within their step's `max_failures` (exit 4). */
export type RunStatus = 'ok' | 'partial' | 'failed' | 'declined' | 'interrupted';

export interface ActionSummary {
  index: number;
  title: string;
  kind: string;
  status: ActionResultStatus;
  durationMs: number;
  exitCode?: number | null;
  error?: string;
  /** How many attempts it took (present when the action has retries). */
  attempts?: number;
}

export interface HostSummary {
  host: string;
  status: HostStatus;
  actions: ActionSummary[];
  error?: string;
  durationMs?: number;
}

export interface StepSummary {
  name: string;
  status: StepStatus;
  hosts: HostSummary[];
  /** Hosts that failed in this step (inventory order), when any did. */
  failed?: string[];
  /** The step's failure budget in hosts, when it has one (`max_failures`). */
  maxFailures?: number;
  /** Why the step did not run (status 'skipped'). */
  reason?: string;
}

export interface RunSummary {
  runId: string;
  plan: string;
  status: RunStatus;
  exitCode: number;
  durationMs: number;
  /** Every host that failed in some step, inventory order (what `--failed-hosts-file` writes). */
  failedHosts: string[];
  /** `--limit`: the patterns and the hosts they selected. */
  selection?: Selection;
  /** `--resume` / `--replay` / `hades rollback`: the run it continued or replayed, and the digests it pinned. */
  origin?: { mode: string; runId: string; pins: Array<{ registry: string; name: string; tag: string; digest: string }> };
  steps: StepSummary[];
}

export interface HadesEvent {
  type: EventType;
  runId: string;
  ts: string; // ISO 8601
  step?: string;
  stepIndex?: number;
  batch?: number;
  host?: string;
  action?: string; // action title
  actionIndex?: number;
  kind?: string; // action kind
  status?: string;
  exitCode?: number | null;
  durationMs?: number;
  stream?: 'stdout' | 'stderr';
  data?: string; // one line of output (no trailing newline)
  message?: string;
  /** registry.warning: the registry's name. */
  registry?: string;
  /** action.attempt: which attempt of a polling action (1-based; `status` ok|failed, `message` what was seen);
   * action.retry: the attempt that failed, of how many; action.end: attempts taken (with retries). */
  attempt?: number;
  attempts?: number;
  /** action.progress: bytes moved so far, and the transfer's size when known. */
  bytes?: number;
  total?: number;
  /** action.retry: the pause before the next attempt. */
  delayMs?: number;
  /** action.start: what will run, as dry-run shows it (exact commands). */
  command?: string;
  hosts?: string[]; // batch.start / step.start
  summary?: RunSummary; // run.end
  /** check.change: what the action would change (see CheckView in engine/check.ts). */
  change?: import('./check.js').CheckView;
  /** check.change: the unified diff of a text file (secret lines redacted on both sides). */
  diff?: string;
  /** check.end: how many actions per change kind, and hosts not checked. */
  counts?: Record<string, number>;
}

export type Emit = (e: HadesEvent) => void;
