/**
 * sha256 digests and streams that verify them. Every read of registry content goes through
 * `verifyStream`: bytes pass through unchanged while being hashed and counted, and the stream
 * errors at the end (instead of finishing) when the size or digest differs from the expected one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RunError } from '../errors.js';

export const SHA256 = 'sha256';

/** `sha256:` + hex of the bytes. */
export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a `sha256:…` digest (callers validate the digest first). */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** Digest and size of a file, streamed. */
export async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path), async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) {
      h.update(chunk);
      size += chunk.length;
    }
  });
  return { digest: `sha256:${h.digest('hex')}`, size };
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
  const mismatch = (actualDigest: string | undefined): IntegrityError => {
    const sizePart =
      expected.size !== undefined && size !== expected.size ? ` (expected ${expected.size} bytes, got ${size})` : '';
    const actualPart = actualDigest ? actualDigest : `more than ${expected.size} bytes`;
    return new IntegrityError(
      `${what}: digest mismatch: expected ${expected.digest}, actual ${actualPart}${sizePart}` +
        (where ? ` — the content at ${where} is corrupt` : ''),
      expected,
      { digest: actualDigest, size },
    );
  };
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
