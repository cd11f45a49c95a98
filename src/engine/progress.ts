/**
 * Progress of long transfers: an action reports the bytes it has moved as often as it likes;
 * the engine turns that into `action.progress` events, at most one per PROGRESS_MS per action,
 * and none at all for a transfer that ends within PROGRESS_MS (small transfers add nothing to
 * any output). Once a transfer has shown progress, its last count is emitted when the action
 * ends, so the events of a completed transfer end at its total.
 */
import type { HadesEvent } from './events.js';

export const PROGRESS_MS = 500;

export interface ProgressMeter {
  report(bytes: number, total?: number): void;
  /** The action ended: emits the last count if progress was shown and it moved since. */
  finish(): void;
}

export function progressMeter(
  emit: (e: Pick<HadesEvent, 'type' | 'bytes' | 'total'>) => void,
  now: () => number = Date.now,
): ProgressMeter {
  const start = now();
  let last: { bytes: number; total?: number } | undefined;
  let emitted: number | undefined; // bytes of the last event
  let lastAt = start;
  const send = (v: { bytes: number; total?: number }) => {
    emitted = v.bytes;
    lastAt = now();
    emit({ type: 'action.progress', bytes: v.bytes, ...(v.total !== undefined ? { total: v.total } : {}) });
  };
  return {
    report(bytes, total) {
      const b = total !== undefined ? Math.min(bytes, total) : bytes;
      last = { bytes: b, ...(total !== undefined ? { total } : {}) };
      const t = now();
      if (t - start >= PROGRESS_MS && t - lastAt >= PROGRESS_MS) send(last);
    },
    finish() {
      if (emitted !== undefined && last && last.bytes !== emitted) send(last);
    },
  };
}
