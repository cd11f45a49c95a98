/**
 * The common per-action fields that govern attempts: `timeout`, `retries`, `delay`,
 * `backoff` (and `default_timeout` on a job or plan). Parsed and checked here, once, for
 * every kind; the engine's action loop (src/engine/attempts.ts) is the one place that
 * honours them. Nothing retries or times out unless the hadesfile says so.
 */
import type { Position } from '../errors.js';
import type { ActionKindRules } from './action-kinds.js';
import { formatDuration, parseDuration } from './duration.js';

/** Delays between attempts grow by `backoff` up to this (or the first delay, when longer). */
export const MAX_BACKOFF_DELAY_MS = 5 * 60_000;
export const MAX_RETRIES = 100;

export interface RetryPolicy {
  /** Total attempts (retries + 1), at least 2. */
  attempts: number;
  delayMs: number;
  /** Multiplier applied to the delay after each failed attempt (default 1: a constant delay). */
  backoff: number;
}

export const ATTEMPT_FIELDS = ['timeout', 'retries', 'delay', 'backoff'] as const;

type Add = (message: string, pos: Position, hint: string) => void;

/**
 * A positive duration field as written (the schema has already rejected non-durations;
 * this catches `0s` and reports it with a hint). Undefined when absent or invalid.
 */
export function positiveDuration(v: unknown, what: string, pos: Position, add: Add): number | undefined {
  if (typeof v !== 'string') return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) return undefined; // the schema reports it
  if (ms <= 0) {
    add(
      `${what} ${JSON.stringify(v)} must be longer than 0`,
      pos,
      'write a duration such as 30s, 5m or 250ms (leave the field out for no limit)',
    );
    return undefined;
  }
  return ms;
}

/**
 * Reads the attempt fields of one action item. `rules` says what its kind allows:
 * `retryable` kinds take retries/delay/backoff; every kind but those with their own
 * timeout (a gate's `wait: {timeout}`) takes `timeout`.
 */
export function readAttemptFields(
  item: Record<string, unknown>,
  kind: string,
  rules: Pick<ActionKindRules, 'retryable' | 'noTimeout'> | undefined,
  retryableKinds: string[],
  keyPos: (field: string) => Position,
  valuePos: (field: string) => Position,
  add: Add,
): { timeoutMs?: number; retry?: RetryPolicy } {
  const out: { timeoutMs?: number; retry?: RetryPolicy } = {};
  const has = (k: string) => item[k] !== undefined && item[k] !== null;
  if (has('timeout')) {
    if (rules?.noTimeout) add(`timeout on a ${kind} action: ${rules.noTimeout.why}`, keyPos('timeout'), rules.noTimeout.hint);
    else {
      const ms = positiveDuration(item.timeout, 'timeout', valuePos('timeout'), add);
      if (ms !== undefined) out.timeoutMs = ms;
    }
  }
  const retryFields = (['retries', 'delay', 'backoff'] as const).filter(has);
  if (retryFields.length === 0) return out;
  if (!rules?.retryable) {
    const why = kind === 'wait' ? 'a gate never retries' : `${kind} does not retry`;
    add(
      `${retryFields[0]} on a ${kind} action: ${why}`,
      keyPos(retryFields[0]!),
      `retries, delay and backoff are for ${retryableKinds.join(', ')}; remove ${retryFields.join(', ')}`,
    );
    return out;
  }
  if (!has('retries')) {
    add(
      `${retryFields[0]} without retries`,
      keyPos(retryFields[0]!),
      'add retries: N (how many times a failed attempt is tried again), or remove it',
    );
    return out;
  }
  const retries = item.retries;
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) return out; // the schema reports it
  let delayMs = 0;
  if (has('delay')) {
    const ms = positiveDuration(item.delay, 'delay', valuePos('delay'), add);
    if (ms === undefined) return out;
    delayMs = ms;
  }
  let backoff = 1;
  if (has('backoff')) {
    const b = item.backoff;
    if (typeof b !== 'number' || !Number.isFinite(b)) return out; // the schema reports it
    if (b < 1) {
      add(
        `backoff ${b} is less than 1`,
        valuePos('backoff'),
        'backoff multiplies the delay after each failed attempt: write 1 (constant) or more, e.g. backoff: 2',
      );
      return out;
    }
    if (!has('delay')) {
      add('backoff without delay', keyPos('backoff'), 'backoff multiplies the delay between attempts: add delay: 2s');
      return out;
    }
    backoff = b;
  }
  if (retries > 0) out.retry = { attempts: retries + 1, delayMs, backoff };
  return out;
}

/** The delay before attempt `n + 1` (n ≥ 1: the attempt that just failed). */
export function delayBefore(policy: RetryPolicy, n: number): number {
  if (policy.delayMs === 0) return 0;
  const cap = Math.max(MAX_BACKOFF_DELAY_MS, policy.delayMs);
  return Math.min(cap, Math.round(policy.delayMs * policy.backoff ** (n - 1)));
}

/** How dry-run and action.start show the policy: "timeout 30s; up to 3 attempts, 2s apart". */
export function describeAttempts(timeoutMs: number | undefined, retry: RetryPolicy | undefined): string | undefined {
  const parts: string[] = [];
  if (timeoutMs !== undefined) parts.push(`timeout ${formatDuration(timeoutMs)} per attempt (then killed on the host)`);
  if (retry) {
    let apart: string;
    if (retry.delayMs === 0) apart = 'no delay between them';
    else if (retry.backoff === 1) apart = `${formatDuration(retry.delayMs)} apart`;
    else {
      const delays = Array.from({ length: retry.attempts - 1 }, (_, i) => formatDuration(delayBefore(retry, i + 1)));
      apart = `${delays.join(', ')} apart (backoff ×${retry.backoff}, capped at ${formatDuration(Math.max(MAX_BACKOFF_DELAY_MS, retry.delayMs))})`;
    }
    parts.push(`up to ${retry.attempts} attempts, ${apart}`);
  }
  return parts.length ? parts.join('; ') : undefined;
}
