/**
 * One interface for every way of running commands on a host.
 * `ssh` (ssh2, one pooled connection per host) and `local` (the orchestrator's own sh)
 * both implement it; actions never know which one they talk to.
 *
 * A command is a POSIX shell script string, run by `sh -c` on the host. Callers build it
 * with the quoting helpers in ./shell.ts — a transport never splices values into it.
 */
import type { Readable } from 'node:stream';

export interface ExecOptions {
  /** Bytes fed to the command's stdin; closed (EOF) when done. Undefined: empty stdin. */
  stdin?: Readable | Buffer | string;
  /** Aborting kills/closes the remote command (used for the second Ctrl-C and timeouts). */
  signal?: AbortSignal;
  /** The user the command becomes through `sudo -n` (its becomeWrap): an abort kills its process group as that user too. */
  become?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most this many bytes of stdout/stderr in the result (default 1 MiB, tail). */
  captureLimit?: number;
}

export interface ExecResult {
  exitCode: number | null; // null when killed by a signal
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface Transport {
  /** Host name as in the inventory (for messages). */
  readonly name: string;
  /** Opens the connection if needed. Errors name the host and say what went wrong. */
  connect(): Promise<void>;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

/** A transport error that is not a command's exit status (connection refused, dropped, auth...). */
export class TransportError extends Error {
  constructor(
    readonly host: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${host}: ${message}`, options);
    this.name = 'TransportError';
  }
}
