/**
 * sha256 digests and streams that verify them. Every read of registry content goes through
 * `verifyStream`: bytes pass through unchanged while being hashed and counted, and the stream
 * errors at the end (instead of finishing) when the size or digest differs from the expected one.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { RunError } from '../errors.js';

export const SHA256 = 'sha256';

/**
 * Reads of big files: 1 MiB at a time. Hashing 64 KiB reads costs about twice the CPU per MiB;
 * the next piece is read (libuv thread) while this one is hashed.
 */
export const FILE_CHUNK = 1024 * 1024;

/** `sha256:` + hex of the bytes. */
export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a `sha256:…` digest (callers validate the digest first). */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/**
 * Digest and size of a file, 1 MiB at a time, the next read in flight while a piece is hashed
 * (two buffers: 165 ms for 200 MiB here, where a read stream, which reads only once its piece
 * was taken, needs 190–250 ms). `signal` stops the reading (rejecting).
 */
export async function digestFile(path: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  signal?.throwIfAborted();
  const fh = await fsp.open(path, 'r');
  let pending: Promise<{ bytesRead: number }> | undefined;
  try {
    const h = createHash('sha256');
    const bufs = [Buffer.allocUnsafe(FILE_CHUNK), Buffer.allocUnsafe(FILE_CHUNK)];
    let cur = 0;
    let size = 0;
    pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, 0);
    for (;;) {
      const { bytesRead } = await pending;
      pending = undefined;
      if (bytesRead === 0) break;
      signal?.throwIfAborted();
      const chunk = bufs[cur]!.subarray(0, bytesRead);
      size += bytesRead;
      cur ^= 1;
      pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, size);
      h.update(chunk);
    }
    return { digest: `sha256:${h.digest('hex')}`, size };
  } finally {
    await pending?.catch(() => undefined); // no read into a buffer after we returned
    await fh.close();
  }
}

/**
 * Digest and size of a file that another process is writing, hashed while it is written: the
 * reads follow the writer (1 MiB at a time, the next read in flight while a piece is hashed;
 * polling with a short back-off when they catch up) until `writerDone` has settled, then read
 * to the end. So the hash costs almost no time after the writer exits.
 *
 * Sound only for a writer that writes the file once, front to back, without seeking back or
 * truncating after it started (like `oras blob fetch --output`): a byte read at offset N is
 * final. The bytes are read after the kernel made them part of the file (below its size), so
 * the result is the digest of the file as it is when this returns. Stops early (returning the
 * size read so far, which is then larger than `maxSize`) once more than `maxSize` bytes are
 * there (its digest is then undefined). The writer creates the file (a file created beforehand
 * and truncated by the writer costs a forced writeback on ext4 — auto_da_alloc — when it closes
 * it: +200 ms for 200 MiB here); null when the writer finished without creating it.
 */
export async function digestGrowingFile(
  path: string,
  writerDone: Promise<unknown>,
  opts: { maxSize?: number } = {},
): Promise<{ digest: string | undefined; size: number } | null> {
  let finished = false;
  let wake: (() => void) | undefined;
  void writerDone
    .then(
      () => undefined,
      () => undefined,
    )
    .then(() => {
      finished = true;
      wake?.();
    });
  /** Waits `ms`, or less when the writer exits meanwhile. */
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((res) => {
      const t = setTimeout(res, ms);
      wake = () => {
        clearTimeout(t);
        res();
      };
    }).then(() => {
      wake = undefined;
    });

  // The writer creates the file: wait for it to appear.
  let fh: fsp.FileHandle | undefined;
  for (let idle = 1; !fh; idle = Math.min(idle * 2, 50)) {
    const wasFinished = finished;
    try {
      fh = await fsp.open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (wasFinished) return null;
      await pause(idle);
    }
  }

  try {
    const h = createHash('sha256');
    const bufs = [Buffer.allocUnsafe(FILE_CHUNK), Buffer.allocUnsafe(FILE_CHUNK)];
    let cur = 0;
    let size = 0;
    let idle = 1;
    // A read that returns 0 bytes ends the file only if the writer had finished before it started.
    let final = finished;
    let pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, size);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead > 0) {
        const chunk = bufs[cur]!.subarray(0, bytesRead);
        size += bytesRead;
        if (opts.maxSize !== undefined && size > opts.maxSize) return { digest: undefined, size };
        cur ^= 1;
        idle = 1;
        if (bytesRead === FILE_CHUNK || final) {
          // More may be there already: read on while this piece is hashed.
          final = finished;
          pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, size);
          h.update(chunk);
        } else {
          // A short read: just behind the writer. Let it get ahead a little (fewer, larger reads).
          h.update(chunk);
          if (!finished) await pause(1);
          final = finished;
          pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, size);
        }
        continue;
      }
      if (final) break;
      // Caught up with the writer: wait a little (longer each time, or until it exits), then look again.
      await pause(idle);
      idle = Math.min(idle * 2, 50);
      final = finished;
      pending = fh.read(bufs[cur]!, 0, FILE_CHUNK, size);
    }
    return { digest: `sha256:${h.digest('hex')}`, size };
  } finally {
    await fh.close();
  }
}

/** Content that does not match its digest (or size). Names where the bad bytes came from. */
export class IntegrityError extends RunError {
  constructor(
    message: string,
    readonly expected: { digest: string; size?: number },
    readonly actual: { digest?: string; size: number },
  ) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/** Counts and hashes the bytes that pass through. `result()` is valid once the stream has ended. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  private final_?: string;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.final_ = `sha256:${this.hash.digest('hex')}`;
    cb();
  }
  /** The digest of everything that passed through (after 'end'/'finish'). */
  get digest(): string {
    if (this.final_ === undefined) throw new Error('HashingStream: digest read before the stream ended');
    return this.final_;
  }
}

/**
 * A pass-through that verifies size and digest. Data is forwarded as it arrives (the size is
 * checked eagerly: more bytes than expected errors at once); at the end a mismatch makes the
 * stream error instead of ending. `what` describes the content for the error message, e.g.
 * `registry "store": artifact myapp:v1 (layer app.tar)`.
 */
export function verifyStream(expected: { digest: string; size?: number }, what: string, where?: string): Transform {
  const hash = createHash('sha256');
  let size = 0;
  const mismatch = (actualDigest: string | undefined): IntegrityError =>
    integrityMismatch(expected, { digest: actualDigest, size }, what, where);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (expected.size !== undefined && size > expected.size) {
        cb(mismatch(undefined));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== expected.digest || (expected.size !== undefined && size !== expected.size)) cb(mismatch(actual));
      else cb();
    },
  });
}

/**
 * The error for content that is not what was expected: `actual.digest` undefined means more
 * bytes than `expected.size` arrived (and were not all hashed).
 */
export function integrityMismatch(
  expected: { digest: string; size?: number },
  actual: { digest?: string; size: number },
  what: string,
  where?: string,
): IntegrityError {
  const sizePart =
    expected.size !== undefined && actual.size !== expected.size ? ` (expected ${expected.size} bytes, got ${actual.size})` : '';
  const actualPart = actual.digest ? actual.digest : `more than ${expected.size} bytes`;
  return new IntegrityError(
    `${what}: digest mismatch: expected ${expected.digest}, actual ${actualPart}${sizePart}${where ? ` — the content at ${where} is corrupt` : ''}`,
    expected,
    actual,
  );
}

/** Verifies bytes already in memory (manifests, index entries); throws IntegrityError on mismatch. */
export function verifyBytes(data: Buffer, expected: { digest: string; size?: number }, what: string, where?: string): void {
  const actual = digestOf(data);
  if (actual !== expected.digest || (expected.size !== undefined && data.length !== expected.size)) {
    const sizePart =
      expected.size !== undefined && data.length !== expected.size ? ` (expected ${expected.size} bytes, got ${data.length})` : '';
    throw new IntegrityError(
      `${what}: digest mismatch: expected ${expected.digest}, actual ${actual}${sizePart}` +
        (where ? ` — the content at ${where} is corrupt` : ''),
      expected,
      { digest: actual, size: data.length },
    );
  }
}
