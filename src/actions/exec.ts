/** Running a generated command and turning its failure into one clear line. */
import type { ExecOptions, ExecResult } from '../transport/types.js';
import { ActionFailure, type ActionRuntime } from './types.js';

/** Recognises sudo's non-interactive refusals so the error says what to fix. */
export function explainFailure(res: ExecResult, become?: string): string | undefined {
  const err = res.stderr;
  if (become && /sudo: (a password is required|a terminal is required)/.test(err))
    return `sudo needs a password for become: ${become} (Hades runs sudo -n and never prompts); allow NOPASSWD for this user in /etc/sudoers.d`;
  if (become && /(is not in the sudoers file|is not allowed to execute|may not run sudo)/.test(err))
    return `the SSH user may not use sudo (become: ${become}); add it to /etc/sudoers.d or drop become`;
  if (become && /sudo: (command not found|not found)/.test(err)) return `sudo is not installed on the host (needed for become: ${become})`;
  return undefined;
}

export function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** Runs a command streaming its output to the report; non-zero exit → ActionFailure. */
export async function execStreaming(
  rt: ActionRuntime,
  command: string,
  what: string,
  become?: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const res = await rt.transport.exec(command, {
    signal: rt.signal,
    ...(become ? { become } : {}),
    onStdout: (c) => rt.output('stdout', c),
    onStderr: (c) => rt.output('stderr', c),
    ...opts,
  });
  if (res.exitCode !== 0) {
    const why = explainFailure(res, become);
    const how = res.exitCode === null ? `was killed (${res.signal ?? 'signal'})` : `exited with code ${res.exitCode}`;
    throw new ActionFailure(why ?? `${what} ${how}`, res.exitCode);
  }
  return res;
}

/** Runs a generated (quiet) command; stderr becomes the error message on failure. */
export async function execQuiet(
  rt: ActionRuntime,
  command: string,
  what: string,
  become?: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const res = await rt.transport.exec(command, { signal: rt.signal, ...(become ? { become } : {}), ...opts });
  if (res.exitCode !== 0) {
    const why = explainFailure(res, become) ?? (lastLine(res.stderr) || `exit code ${res.exitCode ?? res.signal}`);
    throw new ActionFailure(`${what}: ${why}`, res.exitCode);
  }
  return res;
}
