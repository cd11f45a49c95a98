/**
 * One interface for every way of running commands on a host.
 * `ssh` (ssh2, one pooled connection per host) and `local` (the orchestrator's own sh)
 * both implement it; actions never know which one they talk to.
 *
 * A command is a POSIX shell script string, run by `sh -c` on the host. Callers build it
 * with the quoting helpers in src/shell/command.ts — a transport never splices values into it.
 */
import type { Duplex, Readable } from 'node:stream';

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
  /**
   * A TCP stream to `host:port` AS THE HOST SEES IT: over SSH a direct-tcpip channel of the
   * host's own connection (the host makes the TCP connect; nothing runs there, no new
   * network path); on a local host a plain connect. Rejects with StreamOpenError when the
   * host could not connect (refused, unreachable, no answer within `timeoutMs`); with
   * another TransportError when the host itself cannot be reached or `signal` aborted.
   */
  openStream(host: string, port: number, opts?: StreamOptions): Promise<Duplex>;
  close(): Promise<void>;
  /**
   * The connection budget (SSH only; transport/budget.ts). `hold` keeps the connection from
   * being closed to make room while a host's job runs (returns the release); `prefetch`
   * connects now if a slot is free and nobody waits, never waiting itself; `schedule` says
   * when the host is needed next (a batch ordinal, Infinity: no later work) and with
   * `closeIfIdle` closes the connection now when nothing runs on it.
   */
  hold?(): () => void;
  prefetch?(): void;
  schedule?(nextUse: number, closeIfIdle?: boolean): void;
}

export interface StreamOptions {
  /** Give up when the connect has not completed within this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
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

/**
 * The host tried to open a TCP stream and could not: `reason` is what it saw, short and
 * lower-case ("connection refused", "no answer within 5s", "no route to host").
 */
export class StreamOpenError extends TransportError {
  constructor(
    host: string,
    readonly target: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(host, `cannot connect to ${target}: ${reason}`, options);
    this.name = 'StreamOpenError';
  }
}

/** A connect error's short form: "connection refused", "no route to host"… (errno text, lower-case). */
export function connectReason(e: { code?: string; message: string }): string {
  const byCode: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EHOSTUNREACH: 'no route to host',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    ENOTFOUND: 'name not found',
    EAI_AGAIN: 'name lookup failed (temporary)',
    EADDRNOTAVAIL: 'address not available',
  };
  if (e.code && byCode[e.code]) return byCode[e.code]!;
  const m = e.message.replace(/^\(SSH\) Channel open failure:\s*/, '').trim();
  return m ? m.charAt(0).toLowerCase() + m.slice(1) : 'connect failed';
}
