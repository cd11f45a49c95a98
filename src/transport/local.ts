/**
 * The orchestrator's own shell. Runs exactly the same command strings an SSH host gets
 * (`sh -c COMMAND`), so local and remote semantics are identical.
 *
 * Children run in their own process group (detached): a Ctrl-C in the terminal reaches
 * Hades only, which lets in-flight commands finish; an abort kills the whole group.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { ExecOptions, ExecResult, StreamOptions, Transport } from './types.js';
import { StreamOpenError, TransportError, connectReason } from './types.js';
import { killGroupCommand } from '../shell/command.js';
import { Tail } from './tail.js';

const DEFAULT_CAPTURE = 1 << 20;
/** After an abort (or a timeout): how long the command's process group gets to obey SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2_000;

/**
 * What a local command inherits from the orchestrator: about what sshd gives a login
 * (PATH, HOME, USER, LOGNAME, SHELL) plus the locale, time zone and temp dir. Nothing
 * else — not CI tokens, not SSH_AUTH_SOCK: the job's env arrives on stdin, as over SSH.
 */
export const LOCAL_BASE_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_*', 'TZ', 'TMPDIR'];

export function localBaseEnv(from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(from))
    if (v !== undefined && LOCAL_BASE_ENV.some((n) => (n.endsWith('*') ? k.startsWith(n.slice(0, -1)) : k === n))) out[k] = v;
  out.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  return out;
}

export class LocalTransport implements Transport {
  /** `cwd`: where commands run — the hadesfile's directory, so relative paths agree with `src:`. */
  constructor(
    readonly name: string,
    readonly cwd?: string,
  ) {}

  async connect(): Promise<void> {}

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new TransportError(this.name, 'aborted before start'));
      const child = spawn('/bin/sh', ['-c', command], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: localBaseEnv(),
        ...(this.cwd ? { cwd: this.cwd } : {}),
      });
      const limit = opts.captureLimit ?? DEFAULT_CAPTURE;
      const out = new Tail(limit);
      const err = new Tail(limit);
      child.stdout.on('data', (c: Buffer) => {
        out.push(c);
        opts.onStdout?.(c);
      });
      child.stderr.on('data', (c: Buffer) => {
        err.push(c);
        opts.onStderr?.(c);
      });
      // The whole process group: SIGTERM, then SIGKILL for whatever is left after the grace
      // (children that ignore TERM, or outlive a shell that obeyed it).
      let killTimer: NodeJS.Timeout | undefined;
      const killGroup = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      const onAbort = () => {
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
        // Members that became another user through sudo: killed as that user too (sudo
        // relays SIGTERM to its child only, and Hades may not signal them itself).
        if (opts.become && child.pid)
          spawn('/bin/sh', ['-c', killGroupCommand(child.pid, KILL_GRACE_MS, opts.become)], { stdio: 'ignore', env: localBaseEnv() }).on(
            'error',
            () => undefined,
          );
      };
      const groupGone = (): boolean => {
        try {
          if (child.pid) process.kill(-child.pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdin.on('error', () => {
        /* EPIPE when the command doesn't read its stdin: not an error of ours */
      });
      feedStdin(child.stdin, opts.stdin);
      child.on('error', (e) => {
        opts.signal?.removeEventListener('abort', onAbort);
        reject(new TransportError(this.name, `cannot start /bin/sh: ${e.message}`, { cause: e }));
      });
      child.on('close', (code, signal) => {
        opts.signal?.removeEventListener('abort', onAbort);
        // A member that outlived the shell still gets its SIGKILL (the timer runs on).
        if (killTimer && groupGone()) clearTimeout(killTimer);
        resolve({
          exitCode: code,
          ...(signal ? { signal } : {}),
          stdout: out.toString(),
          stderr: err.toString(),
        });
      });
    });
  }

  /** A local host sees what the orchestrator sees: a direct TCP connect. */
  openStream(host: string, port: number, opts: StreamOptions = {}): Promise<Duplex> {
    return openTcp(this.name, host, port, opts);
  }

  async close(): Promise<void> {}
}

/** A TCP connect from this process, with the StreamOpenError/abort contract of Transport.openStream. */
export function openTcp(name: string, host: string, port: number, opts: StreamOptions): Promise<Duplex> {
  const target = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new TransportError(name, 'aborted before start'));
    const sock = net.connect({ host, port });
    let timer: NodeJS.Timeout | undefined;
    const settle = (e?: Error) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      sock.removeListener('error', onError);
      if (!e) return resolve(sock);
      sock.destroy();
      reject(e);
    };
    const onAbort = () => settle(new TransportError(name, `aborted while connecting to ${target}`));
    const onError = (e: NodeJS.ErrnoException) => settle(new StreamOpenError(name, target, connectReason(e), { cause: e }));
    if (opts.timeoutMs !== undefined)
      timer = setTimeout(() => settle(new StreamOpenError(name, target, `no answer within ${seconds(opts.timeoutMs!)}`)), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('error', onError);
    sock.once('connect', () => settle());
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

export function feedStdin(sink: NodeJS.WritableStream, input: ExecOptions['stdin']): void {
  if (input === undefined) {
    sink.end();
  } else if (typeof input === 'string' || Buffer.isBuffer(input)) {
    sink.end(input);
  } else {
    const src = input as Readable;
    src.on('error', (e) => (sink as unknown as { destroy(e?: Error): void }).destroy(e));
    src.pipe(sink);
  }
}
