/**
 * Channels of an SSH connection: a command's session channel (`runCommand`: the exec
 * request — sent by `execOn`, the one place a command string goes on the wire — output
 * capture, paced stdin, abort) and jump tunnels (`openTunnel`).
 *
 * Session channels go without ssh2's extra round trips.
 *
 * ssh2's public `client.exec()` opens a session channel (one round trip), then sends the
 * exec request and hands over the channel only when the server has accepted it (a second
 * round trip). Here:
 *
 * - `openSession()` opens a session channel ahead of time (SshConnection keeps one spare
 *   per connection, so the next command's channel is already open when it starts), and
 * - `execOn()` sends the exec request and returns at once; the caller attaches its
 *   listeners and writes stdin; the promise it returns settles with the server's answer.
 *
 * A command without stdin on a warm connection thus costs one round trip instead of two
 * (measured at 30 ms RTT: 65 → 35 ms). stdin cannot ride with the request: OpenSSH opens a
 * session with a zero window and adjusts it only once the command started, so written
 * bytes wait for that — a command with stdin costs two round trips instead of three
 * (97 → 67 ms).
 *
 * This uses ssh2 internals (Client._chanMgr, Client._protocol.session/exec, Channel._callbacks
 * and .outgoing — what ssh2's own openChannel()/reqExec() do), so package.json pins ssh2 to
 * ~1.17; `assertSessionInternals` fails loudly, and the SSH tests fail, if they change.
 */
import { type Duplex, type Readable, Writable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { announcedWireCommand, PGID_MARKER } from '../../shell/command.js';
import { Tail } from '../tail.js';
import type { ExecOptions, ExecResult, StreamOptions } from '../types.js';
import { StreamOpenError, connectReason } from '../types.js';
import { secs } from './endpoint.js';

const DEFAULT_CAPTURE = 1 << 20;
/** After an abort (or a timeout): how long the command's process group gets to obey SIGTERM before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** After an abort: when the channel still has not closed by then, it is dropped. */
const ABORT_GIVE_UP_MS = KILL_GRACE_MS + 3_000;

/** ssh2's own channel parameters (lib/Channel.js: MAX_WINDOW, PACKET_SIZE). */
const WINDOW = 2 * 1024 * 1024;
const PACKET = 32 * 1024;

interface ClientInternals {
  _chanMgr?: { add(v: unknown): number };
  _protocol?: { session(id: number, window: number, packet: number): void; exec(id: number, cmd: string, wantReply: boolean): void };
}

interface ChannelInternals {
  outgoing?: { id: number; state: string };
  _callbacks?: Array<(hadErr: boolean | Error) => void>;
  _client?: ClientInternals;
  subtype?: string;
  allowHalfOpen?: boolean;
}

/** Throws when this ssh2 lacks the internals used here (an upgrade changed them). */
export function assertSessionInternals(client: Client): void {
  const c = client as unknown as ClientInternals;
  if (typeof c._chanMgr?.add !== 'function' || typeof c._protocol?.session !== 'function' || typeof c._protocol?.exec !== 'function')
    throw new Error(
      'this version of the ssh2 package is not the one Hades was built with (session channel internals changed); install the ssh2 version from package.json',
    );
}

/** An error from the server refusing to open a channel (sshd MaxSessions): carries `reason`. */
export type ChannelOpenError = Error & { reason?: number | string };

/** Opens a session channel (no request yet). One round trip; rejects with ssh2's open-failure error. */
export function openSession(client: Client): Promise<ClientChannel> {
  const c = client as unknown as Required<ClientInternals>;
  return new Promise((resolve, reject) => {
    // What ssh2's openChannel() registers: called with the Channel on open confirmation,
    // with an error (`reason` set) on open failure.
    const onOpen = Object.assign((err: ChannelOpenError | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch)), {
      type: 'session',
    });
    const id = c._chanMgr.add(onOpen);
    if (id === -1) return reject(new Error('No free channels available'));
    c._protocol.session(id, WINDOW, PACKET);
  });
}

/** Is this (spare) channel still open on both sides — not closed by the server meanwhile? */
export function isOpen(ch: ClientChannel): boolean {
  return (ch as unknown as ChannelInternals).outgoing?.state === 'open';
}

/**
 * Sends an exec request on an open session channel and returns at once: the caller may
 * write stdin right away (ssh2 sends it as soon as the server opens the window). The
 * promise settles with the server's answer (rejects when it refused the command).
 */
export function execOn(ch: ClientChannel, command: string): Promise<void> {
  const c = ch as unknown as ChannelInternals;
  if (c.outgoing?.state !== 'open' || !c._callbacks || !c._client?._protocol) return Promise.reject(new Error('Channel is not open'));
  const accepted = new Promise<void>((resolve, reject) => {
    c._callbacks!.push((hadErr) => {
      if (hadErr) return reject(hadErr instanceof Error ? hadErr : new Error('Unable to exec'));
      resolve();
    });
  });
  // As ssh2's reqExec(): an exec channel that ends its stdin stays open for the output.
  c.subtype = 'exec';
  c.allowHalfOpen = true;
  c._client._protocol.exec(c.outgoing.id, command, true);
  return accepted;
}

/** Opens a direct-tcpip channel to `host:port` as seen from `client`'s server (for jumps); `name` is that server's. */
export function openTunnel(
  client: Client,
  host: string,
  port: number,
  timeoutMs: number | undefined,
  name: string,
  err: (message: string, cause?: unknown) => Error,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            done = true;
            reject(err(`no answer within ${secs(timeoutMs)}: could not open a tunnel to ${host}:${port}`));
          }, timeoutMs);
    try {
      client.forwardOut('127.0.0.1', 0, host, port, (e, stream) => {
        clearTimeout(timer);
        if (done) {
          stream?.destroy();
          return;
        }
        done = true;
        if (e) {
          const said = e.message.replace(/^\(SSH\) Channel open failure:\s*/, '');
          return reject(err(`could not open a tunnel to ${host}:${port} (${name} says: ${said})`, e));
        }
        resolve(stream as unknown as Duplex);
      });
    } catch (e) {
      clearTimeout(timer);
      done = true;
      reject(err(`could not open a tunnel to ${host}:${port}: ${(e as Error).message}`, e));
    }
  });
}

/**
 * Opens a direct-tcpip channel to `host:port` for a caller's own use (health probes): the
 * server makes the TCP connect, as the host sees the address. A refusal by the server
 * (connect failed, administratively prohibited) rejects with StreamOpenError carrying the
 * server's reason; a timeout likewise ("no answer within 5s"); an abort with `err`.
 * A channel that opens after a timeout or abort is closed at once.
 */
export function openStream(
  client: Client,
  host: string,
  port: number,
  opts: StreamOptions,
  name: string,
  err: (message: string, cause?: unknown) => Error,
): Promise<Duplex> {
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(err('aborted before start'));
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (e: Error | undefined, stream?: Duplex) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (e) reject(e);
      else resolve(stream!);
    };
    const onAbort = () => settle(err(`aborted while connecting to ${target}`));
    if (opts.timeoutMs !== undefined)
      timer = setTimeout(() => settle(new StreamOpenError(name, target, `no answer within ${secs(opts.timeoutMs!)}`)), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.forwardOut('127.0.0.1', 0, host, port, (e, stream) => {
        if (done) {
          stream?.destroy();
          return;
        }
        if (e) {
          // ssh2 gives the server's open-failure text ("Connection refused", "No route to host").
          // Reason 1 (administratively prohibited) is the server's policy, not the target's state.
          const code = (e as ChannelOpenError).reason;
          if (code === 1)
            return settle(
              err(
                `sshd refused to open a TCP connection to ${target}: administratively prohibited (it said: ${e.message.replace(/^\(SSH\) Channel open failure:\s*/, '')})\n    hint: health probes need TCP forwarding on the host's sshd: AllowTcpForwarding yes (or local) for this user`,
                e,
              ),
            );
          const reason = code !== undefined ? connectReason({ message: e.message }) : undefined;
          return settle(
            reason ? new StreamOpenError(name, target, reason, { cause: e }) : err(`cannot open a channel to ${target}: ${e.message}`, e),
          );
        }
        settle(undefined, stream as unknown as Duplex);
      });
    } catch (e) {
      settle(err(`cannot open a channel to ${target}: ${(e as Error).message}`, e));
    }
  });
}

/** What a command needs from the connection it runs on. */
export interface CommandHost {
  /** An error naming the host. */
  err(message: string, cause?: unknown): Error;
  /** The connection's byte stream (paces stdin). */
  sock(): Duplex | undefined;
  /** Still connected? When not, the connection's close reports the command's end. */
  up(): boolean;
  /** The running commands, failed all at once when the connection goes. */
  running: Set<Running>;
  /** Kills a command's process group on the host (SIGTERM, SIGKILL after KILL_GRACE_MS) with a second command. */
  killGroup(pgid: number, become: string | undefined): Promise<void>;
}

export interface Running {
  fail(err: Error): void;
}

/**
 * Runs `command` on the session channel `open()` yields: exec request, output capture,
 * stdin, abort (SIGTERM, then the channel is dropped after ABORT_GRACE_MS), exit status.
 * A refused channel rejects with ChannelRefused (the command never started).
 */
export function runCommand(open: () => Promise<ClientChannel>, command: string, opts: ExecOptions, host: CommandHost): Promise<ExecResult> {
  const limit = opts.captureLimit ?? DEFAULT_CAPTURE;
  // sshd hands the exec string to the login shell (`$SHELL -c`): send the wire form, which
  // every common login shell turns into `/bin/sh -c COMMAND` (shell/command.ts wireCommand).
  let wire: string;
  try {
    wire = announcedWireCommand(command);
  } catch (e) {
    return Promise.reject(host.err(`cannot run the command: ${(e as Error).message}`, e as Error));
  }
  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    let channel: ClientChannel | undefined;
    let stdinSink: Writable | undefined;
    let abortTimer: NodeJS.Timeout | undefined;
    let aborted = false;
    let pgid: number | undefined;
    let killed: Promise<void> | undefined;
    // The whole process group dies, not just the session leader sshd signals: its children
    // outlive the leader when they ignore SIGTERM or the leader exits first.
    const killGroup = () => {
      if (!aborted || pgid === undefined || killed) return;
      killed = host.killGroup(pgid, opts.become);
    };
    const entry: Running = { fail: (e) => finish(e) };
    const stdinSrc = opts.stdin;
    const finish = (e: Error | null, r?: ExecResult) => {
      if (settled) return;
      settled = true;
      host.running.delete(entry);
      clearTimeout(abortTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (stdinSrc && typeof stdinSrc === 'object' && !Buffer.isBuffer(stdinSrc) && channel) {
        (stdinSrc as Readable).unpipe(stdinSink);
      }
      if (e) {
        try {
          channel?.close();
        } catch {
          /* connection already gone */
        }
        // Settle once the group is gone (the kill command ran to its end), not before.
        void (killed ?? Promise.resolve()).then(() => reject(e));
      } else void (killed ?? Promise.resolve()).then(() => resolve(r!));
    };
    const onAbort = () => {
      if (!channel) return finish(host.err('aborted before start'));
      aborted = true;
      sendSignal(channel, 'TERM');
      killGroup();
      abortTimer = setTimeout(
        () => finish(host.err(`aborted; the command did not stop within ${secs(ABORT_GIVE_UP_MS)} of SIGTERM, its channel was closed`)),
        ABORT_GIVE_UP_MS,
      );
    };
    host.running.add(entry);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const start = (ch: ClientChannel) => {
      if (settled) {
        ch.close();
        return;
      }
      channel = ch;
      // No wait for the exec reply (execOn); stdin goes once the server's window opens.
      execOn(ch, wire).catch((e: Error) => finish(host.err(`cannot run the command: ${e.message}`, e)));
      const out = new Tail(limit);
      const errTail = new Tail(limit);
      let exit: { code: number | null; signal?: string } | undefined;
      let stderrEnded = false;
      let closed = false;
      const done = () => {
        if (!closed || !stderrEnded) return;
        if (!exit) {
          if (!host.up()) return; // onClosed reports the drop
          return finish(host.err('the command ended without an exit status (channel closed by the server)'));
        }
        finish(null, {
          exitCode: exit.code,
          ...(exit.signal ? { signal: exit.signal } : {}),
          stdout: out.toString(),
          stderr: errTail.toString(),
        });
      };
      ch.on('data', (c: Buffer) => {
        out.push(c);
        opts.onStdout?.(c);
      });
      const marker = new PgidLine(
        (c) => {
          errTail.push(c);
          opts.onStderr?.(c);
        },
        (n) => {
          pgid = n;
          killGroup();
        },
      );
      ch.stderr.on('data', (c: Buffer) => marker.push(c));
      ch.stderr.on('end', () => {
        marker.end();
        stderrEnded = true;
        done();
      });
      ch.on('exit', (code: number | null, signal?: string) => {
        exit = { code: code ?? null, ...(signal ? { signal } : {}) };
      });
      ch.on('error', () => {
        /* surfaced through close / connection drop */
      });
      ch.on('close', () => {
        closed = true;
        done();
      });
      if (opts.signal?.aborted) onAbort();
      stdinSink = feed(ch, stdinSrc, host.sock(), (err) => {
        // Never let the command run on with a truncated stdin: stop it, then drop the channel.
        sendSignal(ch, 'TERM');
        finish(host.err(`reading the command's stdin failed (the command was stopped): ${err.message}`, err));
      });
    };
    open().then(start, (e: ChannelOpenError) => {
      if (typeof e.reason === 'number' || /open failure/i.test(e.message)) return finish(new ChannelRefused(e.message));
      finish(host.err(`cannot run the command: ${e.message}`, e));
    });
  });
}

/**
 * Takes the `hades-pgid N` line (announcedWireCommand) off the start of a command's stderr
 * and passes everything else on unchanged. Output a login shell's rc file printed before it
 * passes through; complete lines go on at once, only a partial line waits (bounded).
 */
export class PgidLine {
  private pending: Buffer | undefined = Buffer.alloc(0);
  constructor(
    private readonly pass: (chunk: Buffer) => void,
    private readonly found: (pgid: number) => void,
  ) {}
  push(chunk: Buffer): void {
    if (!this.pending) return this.pass(chunk);
    let buf = Buffer.concat([this.pending, chunk]);
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl < 0) break;
      const line = buf.subarray(0, nl).toString('latin1');
      const m = new RegExp(`^${PGID_MARKER} ([0-9]+)$`).exec(line);
      if (m) {
        this.pending = undefined;
        this.found(Number(m[1]));
        const rest = buf.subarray(nl + 1);
        if (rest.length) this.pass(rest);
        return;
      }
      this.pass(buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > 4096) {
      this.pending = undefined;
      this.pass(buf);
    } else this.pending = buf;
  }
  end(): void {
    if (this.pending?.length) this.pass(this.pending);
    this.pending = undefined;
  }
}

/** The server refused to open a session channel (sshd MaxSessions): the command never started. */
export class ChannelRefused extends Error {}

/**
 * Sends an RFC 4254 "signal" request. ssh2's Channel.signal() silently does nothing once
 * our side has sent EOF (stdin ended) — which is almost always the case here — although
 * the channel is still open and sshd (killpg on the session) honours it. So go through
 * the protocol object when the channel is open or half-closed by us.
 */
function sendSignal(ch: ClientChannel, name: string): void {
  const c = ch as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal(id: number, sig: string): void } };
  };
  try {
    const proto = c._client?._protocol;
    if (proto && c.outgoing && (c.outgoing.state === 'open' || c.outgoing.state === 'eof')) proto.signal(c.outgoing.id, name);
    else ch.signal(name);
  } catch {
    /* connection gone: nothing to signal */
  }
}

/** Bytes queued on a connection's socket above which a command's stdin waits ('drain'). */
const SOCKET_HIGH_WATER = 256 * 1024;

/**
 * Writes a command's stdin into its channel, one chunk at a time, paced by the SSH window
 * and by the connection's socket. ssh2's channel would buffer up to 2 MiB of unsent stdin
 * (its stream high-water mark) and hand bytes to the socket as soon as the server's window
 * allows, without waiting for the socket to drain: on a link slower than the disk every
 * host's stream parked megabytes in memory (16 hosts: ~50 MB of retained buffers during a
 * fresh rollout). Here a chunk is accepted only when the previous one left the channel and
 * the socket holds less than SOCKET_HIGH_WATER.
 */
class PacedStdin extends Writable {
  constructor(
    private readonly ch: ClientChannel,
    private readonly sock: Duplex | undefined,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    // The write callback runs once the channel sent the chunk (the SSH window allowed it);
    // a channel that closes meanwhile never calls it, and the command's end is reported
    // through the channel's close.
    this.ch.write(chunk, () => {
      const s = this.sock;
      if (s && !s.destroyed && s.writableLength > SOCKET_HIGH_WATER) s.once('drain', () => cb());
      else cb();
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.ch.end();
    cb();
  }
}

function feed(ch: ClientChannel, input: ExecOptions['stdin'], sock: Duplex | undefined, onError: (e: Error) => void): Writable | undefined {
  if (input === undefined) ch.end();
  else if (typeof input === 'string' || Buffer.isBuffer(input)) ch.end(input);
  else {
    const src = input as Readable;
    src.once('error', onError);
    const sink = new PacedStdin(ch, sock);
    src.pipe(sink);
    return sink;
  }
  return undefined;
}
