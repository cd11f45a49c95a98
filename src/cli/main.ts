#!/usr/bin/env node
/**
 * The process entry point of `hades` / `orchestrate`: runs the program (program.ts), sets the
 * exit code, and makes sure the process ends. Nothing else imports this module.
 */
import { INTERNAL_ERROR, runProgram } from './program.js';

/**
 * A reader that went away (`hades plan x --dry-run | head`) is not a failure of ours: the
 * rest of the output is dropped and the command finishes what it does (a run is never cut
 * short by its reader going away — its audit log still has every event).
 */
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });

/**
 * A command closes everything it opened before it returns, so the process then ends by
 * itself. If something stayed open (a bug: a connection, a timer, a child), the command's
 * work is done and its exit code known: say what is still open and end, rather than hang
 * (a CI job would wait for its timeout). Output still being written — a slow reader of
 * stdout — is waited for. The timer itself does not keep the process alive.
 */
const LINGER_MS = 2_500;
function endEvenIfSomethingLeaked(code: number): void {
  let quietTicks = 0;
  const t = setInterval(() => {
    if (process.stdout.writableLength > 0 || process.stderr.writableLength > 0) {
      quietTicks = 0;
      return;
    }
    if (++quietTicks < 2) return;
    clearInterval(t);
    const open = process.getActiveResourcesInfo().join(', ');
    process.stderr.write(
      `${INTERNAL_ERROR}: the command finished (exit ${code}) but the process was still running ${(quietTicks * LINGER_MS) / 1000}s later; open: ${open || 'nothing node reports'}. Exiting.\n`,
    );
    process.exit(code);
  }, LINGER_MS);
  t.unref();
}

runProgram(process.argv).then((code) => {
  process.exitCode = code;
  endEvenIfSomethingLeaked(code);
});
