/**
 * Byte counting for registry operations that run for a while (push, promote's copy, a
 * payload read into the cache), without threading a callback through every backend: the
 * caller runs the operation inside `withByteMeter`, and the places where bytes move report
 * to the meter of the operation they belong to (AsyncLocalStorage follows the async calls).
 *  - in this process: storeBlob (filesystem registries) calls `meterAdd` per chunk written;
 *  - in an oras child process: `meterChild` samples the child's /proc/<pid>/io `wchar`
 *    (bytes it wrote: the upload of a push or a copy, the file of a pull) every METER_MS.
 * Progress only: nothing depends on these counts (digests are verified as always).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile } from 'node:fs/promises';

export const METER_MS = 250;

interface Meter {
  bytes: number;
  onBytes(bytes: number): void;
}

const current = new AsyncLocalStorage<Meter>();

/** Runs `fn`; bytes its registry calls move are reported to `onBytes` (running total). */
export function withByteMeter<T>(onBytes: (bytes: number) => void, fn: () => Promise<T>): Promise<T> {
  return current.run({ bytes: 0, onBytes }, fn);
}

export function meterAdd(n: number): void {
  const m = current.getStore();
  if (!m || n <= 0) return;
  m.bytes += n;
  m.onBytes(m.bytes);
}

/** The `wchar` line of /proc/<pid>/io, or undefined (no such process, not Linux). */
export async function childWritten(pid: number): Promise<number | undefined> {
  try {
    const m = /^wchar:\s*(\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples a child's written bytes into the current meter until the returned stop() (which
 * takes a last sample while the process may still be there). No meter → does nothing.
 */
export function meterChild(pid: number | undefined): () => Promise<void> {
  const m = current.getStore();
  if (!m || pid === undefined) return async () => undefined;
  let seen = 0;
  const sample = async () => {
    const w = await childWritten(pid);
    if (w === undefined || w <= seen) return;
    const d = w - seen;
    seen = w;
    m.bytes += d;
    m.onBytes(m.bytes);
  };
  const timer = setInterval(() => void sample(), METER_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await sample();
  };
}
