/**
 * The read-only probe of a host's platform for multi-platform pulls: the kernel and machine
 * names, mapped to OCI names by registry/platform.ts. It runs like a `run:` command (the job's
 * env on stdin), so `uname` is the one on the PATH the job's commands get.
 */
import { runWithEnv } from './command.js';

export const PLATFORM_PROBE = 'uname -s; uname -m';

/** What the transport runs to detect the platform (once per host per run). */
export function platformProbeCommand(): string {
  return runWithEnv(PLATFORM_PROBE);
}
