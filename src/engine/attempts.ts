/**
 * The one place actions are attempted: each attempt under its `timeout` (aborting the
 * attempt's signal, which kills the command's process group on the host), a failed attempt
 * tried again under `retries`/`delay`/`backoff` — and nothing else: no timeout or retry
 * unless the hadesfile says so. Never retried: a declined gate, a run interrupted by
 * Ctrl-C (during an attempt or its delay), a second-Ctrl-C abort.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { delayBefore } from '../config/attempts.js';
import { formatDuration } from '../config/duration.js';
import { executeAction, type ActionEntry } from '../actions/index.js';
import { ActionFailure, GateDeclined, type ActionOutcome, type ActionRuntime } from '../actions/types.js';
import type { RunControl } from './control.js';

export interface FailedAttempt {
  attempt: number;
  attempts: number;
  error: unknown;
  exitCode?: number | null;
  /** The pause before the next attempt. */
  delayMs: number;
}

export interface AttemptHooks {
  control: RunControl;
  /** An attempt failed and another follows after `delayMs` (emit it; flush output first). */
  onRetry(f: FailedAttempt): void;
}

/** The action's final failure, after `attempts` attempts. */
export class AttemptsFailed extends Error {
  constructor(
    readonly error: unknown,
    readonly attempts: number,
  ) {
    super(error instanceof Error ? error.message : String(error));
    this.name = 'AttemptsFailed';
  }
}

/** One attempt, under the entry's timeout. A timed-out attempt fails with "timed out after D". */
async function attempt(entry: ActionEntry, rt: ActionRuntime, control: RunControl): Promise<ActionOutcome> {
  if (entry.attemptTimeoutMs === undefined) return executeAction(entry, rt);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), entry.attemptTimeoutMs);
  try {
    return await executeAction(entry, { ...rt, signal: AbortSignal.any([rt.signal, deadline.signal]) });
  } catch (e) {
    if (!deadline.signal.aborted || control.abortSignal.aborted) throw e;
    // The attempt's signal killed the command's process group on the host (transport exec).
    const why = e instanceof ActionFailure ? '' : `; ${e instanceof Error ? e.message : String(e)}`;
    throw new ActionFailure(`timed out after ${formatDuration(entry.attemptTimeoutMs)}${why}`, null);
  } finally {
    clearTimeout(timer);
  }
}

const interrupted = (control: RunControl) => control.stopping || control.abortSignal.aborted;

/** Runs the entry's attempts; resolves with the outcome and how many attempts it took. */
export async function runAttempts(
  entry: ActionEntry,
  rt: ActionRuntime,
  hooks: AttemptHooks,
): Promise<{ outcome: ActionOutcome; attempts: number }> {
  const { control } = hooks;
  const total = entry.retry?.attempts ?? 1;
  for (let n = 1; ; n++) {
    try {
      return { outcome: await attempt(entry, rt, control), attempts: n };
    } catch (e) {
      if (n >= total || e instanceof GateDeclined || interrupted(control)) throw new AttemptsFailed(e, n);
      const delayMs = delayBefore(entry.retry!, n);
      hooks.onRetry({
        attempt: n,
        attempts: total,
        error: e,
        ...(e instanceof ActionFailure && e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
        delayMs,
      });
      if (delayMs > 0) {
        try {
          await sleep(delayMs, undefined, { signal: AbortSignal.any([control.stopSignal, control.abortSignal]) });
        } catch {
          throw new AttemptsFailed(
            new ActionFailure(`interrupted before attempt ${n + 1} of ${total}: ${e instanceof Error ? e.message : String(e)}`),
            n,
          );
        }
      }
      if (interrupted(control))
        throw new AttemptsFailed(
          new ActionFailure(`interrupted before attempt ${n + 1} of ${total}: ${e instanceof Error ? e.message : String(e)}`),
          n,
        );
    }
  }
}
