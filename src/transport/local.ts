/**
 * The orchestrator's own shell. Runs exactly the same command strings an SSH host gets
 * (`sh -c COMMAND`), so local and remote semantics are identical.
 *
 * Children run in their own process group (detached): a Ctrl-C in the terminal reaches
 * Hades only, which lets in-flight commands finish; an abort kills the whole group.
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { type Duplex, Readable } from 'node:stream';
import type { ExecOptions, ExecResult, StreamOptions, Transport } from './types.js';
import { StreamOpenError, TransportError, connectReason } from './types.js';
import { Tail } from './tail.js';

const DEFAULT_CAPTURE = 1 << 20;

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
      const onAbort = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGTERM');
        } catch {
          /* already gone */
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
