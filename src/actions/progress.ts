/**
 * Transfer progress from an action's side: a stream that counts the bytes going to a host,
 * and the wrapper that counts what a registry operation moves (registry/progress.ts). Both
 * report to `rt.progress`, which the engine rate-limits into `action.progress` events.
 */
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { withByteMeter } from '../registry/progress.js';
import type { ActionRuntime } from './types.js';

/** `source`, passed through unchanged, its bytes counted as they are read (errors carried over). */
export function metered<S extends NodeJS.ReadableStream>(rt: ActionRuntime, source: S, total?: number): S | Transform {
  if (!rt.progress) return source;
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      rt.progress?.(bytes, total);
      done(null, chunk);
    },
  });
  source.once('error', (err: Error) => counter.destroy(err));
  counter.once('close', () => (source as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.());
  source.pipe(counter);
  return counter;
}

/** Runs a registry operation, its moved bytes reported as progress; at success the count ends at `total`. */
export async function meteredRegistry<T>(rt: ActionRuntime, total: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (!rt.progress) return fn();
  let moved = false;
  const res = await withByteMeter((bytes) => {
    moved = true;
    rt.progress?.(bytes, total);
  }, fn);
  if (moved && total !== undefined) rt.progress(total, total);
  return res;
}

/** A regular file's size (a push's total); undefined for a directory (its archive size is not known ahead). */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined; // the push itself reports why it cannot read the path
  }
}
