/**
 * Getting an artifact's payload into a local file: atomically (a temp file beside the
 * destination, renamed over it only once complete and verified) and digest-verified.
 * Registries that can do it faster implement `Registry.fetchTo`; the others stream `open()`.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactDescriptor, Registry } from './types.js';

/** A fresh temp file name in the destination's directory (so the final rename is atomic). */
export function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path).slice(0, 200)}.hades-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes a (verifying) stream to `path` atomically, mode 0600; on failure `path` is untouched and no temp file stays. */
export async function writeAtomically(path: string, src: Readable): Promise<void> {
  const tmp = tempBeside(path);
  try {
    await pipeline(src, createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
    await fsp.rename(tmp, path);
  } catch (e) {
    src.destroy();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** The payload of `desc` at `path`, verified, written atomically (mode 0600). */
export async function fetchArtifact(reg: Registry, desc: ArtifactDescriptor, path: string): Promise<void> {
  if (reg.fetchTo) return reg.fetchTo(desc, path);
  return writeAtomically(path, await reg.open(desc));
}
