/**
 * SSH transport over ssh2: one connection per endpoint for the whole run, many exec
 * channels multiplexed over it (capped per connection, queued beyond the cap). This file
 * is the connection's state machine; the parts live beside it:
 *   endpoint.ts     what a connection is made of (endpoint, pool context, defaults)
 *   credentials.ts  identity files, passphrases and the agent
 *   handshake.ts    TCP connect, SSH handshake, host key, authentication (and their errors)
 *   channel.ts      session channels, the exec request, stdin/output plumbing, tunnels
 *   transport.ts    the Transport a caller holds (a name over a shared connection)
 *
 * - Host keys are always verified (./known-hosts.ts); unknown hosts are refused unless
 *   `acceptNewHosts`, changed or revoked keys are refused always.
 * - Connect errors name the host and the phase: DNS, TCP refused/unreachable, timeout
 *   ("no answer within 10s"), handshake, host key, authentication (with the methods tried).
 * - A connection that drops rejects every running and queued exec at once.
 * - No silent retries: a failed connect stays failed (the same error is returned) until
 *   `close()`; a dropped connection is not reopened behind the caller's back.
 *   The only thing ever re-attempted is *opening a channel* the server refused under
 *   load (MaxSessions) while other channels were running — the command had not started.
 * - A command runs as `/bin/sh -c COMMAND` whatever the user's login shell (fish, tcsh…):
 *   the exec request carries `wireCommand(COMMAND)` (src/shell/command.ts; channel.ts runCommand).
 * - Env vars are never sent with ssh2's `env` (sshd drops them without AcceptEnv):
 *   callers put them in the command/stdin (see src/shell/command.ts).
 */
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import type { KnownHostEntry } from './known-hosts.js';
import type { ExecOptions, ExecResult, StreamOptions } from '../types.js';
import type { BudgetMember } from '../budget.js';
import { type Release, Semaphore } from '../semaphore.js';
import { TransportError } from '../types.js';
import { killGroupCommand } from '../../shell/command.js';
import {
  type ChannelOpenError,
  ChannelRefused,
  type Running,
  assertSessionInternals,
  isOpen,
  openSession,
  openStream,
  openTunnel,
  KILL_GRACE_MS,
  runCommand,
} from './channel.js';
import { type Credentials, loadCredentials } from './credentials.js';
import { type ConnectionContext, DEFAULT_MAX_CHANNELS, type SshEndpoint, secs } from './endpoint.js';
import { type Ssh2Client, handshake, tcpConnect } from './handshake.js';

type State = 'idle' | 'connecting' | 'ready' | 'failed' | 'dropped' | 'closed';

/** One pooled SSH connection. Shared by every SshTransport that resolves to the same endpoint. */
export class SshConnection implements BudgetMember {
  private state: State = 'idle';
  /** Commands and streams in progress (from the call, connect included, to the end). */
  private busy = 0;
  /** Host jobs holding this connection open between their commands (hold()). */
  private holds = 0;
  /** When it is needed next (a batch ordinal; Infinity: no later work): the budget evicts the furthest first. */
  nextUse = Number.MAX_SAFE_INTEGER;
  lastUsed = 0;
  private client: Ssh2Client | undefined;
  /** The byte stream under `client` (a TCP socket, or a channel of the jump host's connection). */
  private sock: Duplex | undefined;
  private connecting: Promise<void> | undefined;
  private failure: Error | undefined;
  private dropReason: string | undefined;
  private readonly running = new Set<Running>();
  /** Concurrent exec channels, lowered when the server refuses one (MaxSessions). */
  private readonly channels: Semaphore;
  /**
   * A session channel opened ahead of the next command (./channel.ts): the command then
   * costs a round trip less. Undefined when the server refused one (MaxSessions
   * already used up): then channels are opened per command.
   */
  private spare: Promise<ClientChannel | undefined> | undefined;
  private spareRefused = false;
  /**
   * Counts close() calls. A command that began before a close fails with it — also one
   * still waiting for a channel slot or about to start — instead of reconnecting: only a
   * command that begins after the close opens a new connection.
   */
  private closes = 0;
  /** The close under way, if any. */
  private closing: Promise<void> | undefined;
  /** Counters for tests and diagnostics. */
  readonly stats = { sessionsOpened: 0, spareUsed: 0 };

  constructor(
    readonly ep: SshEndpoint,
    private readonly ctx: ConnectionContext,
  ) {
    this.channels = new Semaphore(ep.maxChannels ?? DEFAULT_MAX_CHANNELS);
  }

  get name(): string {
    return this.ep.name;
  }

  /** `user@addr:port` (plus the jump chain): the pool key. */
  get key(): string {
    const own = `${this.ep.user}@${this.ep.addr}:${this.ep.port}`;
    return this.ep.jump ? `${own} via ${this.ep.jump.key}` : own;
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  get jumpMember(): SshConnection | undefined {
    return this.ep.jump;
  }

  idle(): boolean {
    return this.state === 'ready' && this.busy === 0 && this.holds === 0;
  }

  wouldOpen(): boolean {
    return this.state === 'idle' || this.state === 'closed';
  }

  evict(): Promise<void> {
    return this.close();
  }

  /** Keeps the connection from being closed to make room while a host's job runs; returns the release. */
  hold(): () => void {
    this.holds++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.holds--;
      this.quiet();
    };
  }

  /**
   * The engine's prefetch of the next batch: connects if the budget has room for it without
   * making anyone wait (closing idle connections needed later, ../budget.ts prefetch).
   */
  warm(): void {
    if (!this.wouldOpen() || this.closing) return;
    if (!this.ctx.budget) {
      void this.connect().catch(() => undefined);
      return;
    }
    void this.ctx.budget.prefetch(this).then((ok) => {
      if (ok && this.wouldOpen()) return this.connect().catch(() => undefined); // a failure is kept: the host's turn reports it
    });
  }

  /** Connects now if the budget has a free slot nobody waits for (the preflight); never waits. */
  prefetch(): Promise<void> | undefined {
    if (!this.wouldOpen()) return this.state === 'connecting' ? this.connecting : undefined;
    if (this.ctx.budget && !this.ctx.budget.tryReserve(this)) return undefined;
    return this.connect().catch(() => undefined); // a failure is kept: the host's turn reports it
  }

  private enter(): void {
    this.busy++;
  }

  private leave(): void {
    this.busy--;
    this.quiet();
  }

  private quiet(): void {
    if (this.busy || this.holds) return;
    this.lastUsed = Date.now();
    this.ctx.budget?.idled();
  }

  connect(): Promise<void> {
    switch (this.state) {
      case 'ready':
        return Promise.resolve();
      case 'connecting':
        return this.connecting!;
      case 'failed':
        return Promise.reject(this.failure!);
      case 'dropped':
        return Promise.reject(this.err(`the connection to ${this.where} was lost earlier (${this.dropReason}); not reconnecting`));
      case 'idle':
      case 'closed':
        if (this.closing) return this.closing.then(() => this.connect());
        break;
    }
    this.state = 'connecting';
    this.connecting = this.open().then(
      () => {
        this.state = 'ready';
        this.connecting = undefined;
        this.preopen(); // the first command's channel opens while the other hosts' handshakes finish
        this.quiet();
      },
      (e: Error) => {
        this.state = 'failed';
        this.failure = e;
        this.connecting = undefined;
        this.ctx.budget?.release(this);
        throw e;
      },
    );
    return this.connecting;
  }

  private get where(): string {
    return `${this.ep.addr}:${this.ep.port}`;
  }

  private err(message: string, cause?: unknown): TransportError {
    return new TransportError(this.ep.name, message, cause !== undefined ? { cause } : undefined);
  }

  private async open(): Promise<void> {
    const ep = this.ep;
    // A slot for this connection and its jump hosts not open yet, all at once (../budget.ts).
    await this.ctx.budget?.reserve(this);
    let tunnel: Duplex | undefined;
    if (ep.jump) {
      try {
        await ep.jump.connect();
        // The jump is up: opening the tunnel (the jump's TCP connect) counts against our timeout.
        tunnel = await ep.jump.forwardOut(ep.addr, ep.port, ep.connectTimeoutMs);
      } catch (e) {
        if (e instanceof TransportError && e.name === 'HostKeyError') throw e;
        throw this.err(`cannot reach ${this.where} through jump host ${(e as Error).message}`, e);
      }
    }
    let entries: KnownHostEntry[];
    let creds: Credentials;
    try {
      entries = await this.ctx.knownHosts();
      creds = loadCredentials(this.ep, this.ctx.env ?? process.env);
    } catch (e) {
      tunnel?.destroy();
      throw e;
    }
    const release = await this.ctx.handshakeSlot();
    try {
      const deadline = Date.now() + ep.connectTimeoutMs;
      const sock = tunnel ?? (await tcpConnect(ep, deadline));
      await handshake(ep, this.ctx, sock, deadline, entries, creds, (client) => this.ready(client, sock));
    } finally {
      release();
    }
    this.ctx.opened();
  }

  /** The handshake succeeded: this client is the connection now (called before any later event of it). */
  private ready(client: Ssh2Client, sock: Duplex): void {
    this.client = client;
    this.sock = sock;
    assertSessionInternals(client);
    client.removeAllListeners('error');
    client.on('error', (e: Error & { level?: string }) => {
      this.dropReason = e.level === 'client-timeout' ? 'no keepalive answer' : e.message;
    });
    // Only while it is this connection's client: a closed client's late event must not touch
    // the connection opened after it (shut() has done its cleanup).
    client.on('close', () => {
      if (this.client === client) this.onClosed();
    });
  }

  /** Opens the spare session channel for the next command, unless one is there (or refused). */
  private preopen(): void {
    const client = this.client;
    if (this.spare || this.spareRefused || !client || this.state !== 'ready') return;
    this.stats.sessionsOpened++;
    const p: Promise<ClientChannel | undefined> = openSession(client).catch((e: ChannelOpenError) => {
      if (this.spare === p) this.spare = undefined;
      if (e.reason !== undefined) this.spareRefused = true; // the server said no: don't keep asking
      return undefined;
    });
    this.spare = p;
  }

  /** An open session channel for a command: the spare when it is (or becomes) usable, else a new one. */
  private async session(client: Ssh2Client): Promise<ClientChannel> {
    const spare = this.spare;
    this.spare = undefined;
    const ch = spare ? await spare : undefined;
    this.preopen(); // for the command after this one
    if (ch && isOpen(ch) && this.client === client) {
      this.stats.spareUsed++;
      return ch;
    }
    this.stats.sessionsOpened++;
    return openSession(client);
  }

  private onClosed(): void {
    this.spare = undefined;
    this.ctx.budget?.release(this);
    if (this.state === 'ready') {
      this.state = 'dropped';
      this.dropReason ??= 'closed by the remote side';
    }
    this.client = undefined;
    const reason =
      this.state === 'closed'
        ? `the connection to ${this.where} was closed by Hades`
        : `connection to ${this.where} dropped (${this.dropReason}) while the command was running; its outcome on the host is unknown`;
    const err = this.err(reason);
    for (const r of [...this.running]) r.fail(err);
    this.running.clear();
    // Queued execs: wake them; they will see the state and fail.
    this.channels.wake();
  }

  /** Opens a direct-tcpip channel to `host:port` as seen from this endpoint (for jumps). */
  async forwardOut(host: string, port: number, timeoutMs?: number): Promise<Duplex> {
    await this.connect();
    const client = this.client;
    if (!client) throw this.err(`the connection to ${this.where} is not open`);
    return openTunnel(client, host, port, timeoutMs, this.ep.name, (message, cause) => this.err(message, cause));
  }

  /** A TCP stream to `host:port` as this host sees it: a direct-tcpip channel (see channel.ts openStream). */
  async openStream(host: string, port: number, opts: StreamOptions = {}): Promise<Duplex> {
    if (opts.signal?.aborted) throw this.err('aborted before start');
    this.enter();
    let stream: Duplex | undefined;
    try {
      await this.connect();
      const client = this.client;
      if (!client || this.state !== 'ready') throw this.err(`the connection to ${this.where} is not open`);
      stream = await openStream(client, host, port, opts, this.ep.name, (message, cause) => this.err(message, cause));
      // Busy while the stream is open: the budget does not close a connection under it.
      stream.once('close', () => this.leave());
      return stream;
    } finally {
      if (!stream) this.leave();
    }
  }

  private closedSince(closes: number): TransportError | undefined {
    return closes === this.closes ? undefined : this.err(`the connection to ${this.where} was closed by Hades before the command started`);
  }

  /** A channel slot on this connection; fails when the connection was closed or lost meanwhile. */
  private async slot(closes: number, signal?: AbortSignal): Promise<Release> {
    for (;;) {
      const release = await this.channels.wait(signal, () => this.err('aborted before start'));
      if (release) return release;
      // Woken by a close or a drop (onClosed): fail as the connection now says.
      const closed = this.closedSince(closes);
      if (closed) throw closed;
      if (this.state !== 'ready') await this.connect();
    }
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.signal?.aborted) throw this.err('aborted before start');
    this.enter();
    try {
      return await this.execIn(command, opts);
    } finally {
      this.leave();
    }
  }

  private async execIn(command: string, opts: ExecOptions): Promise<ExecResult> {
    const closes = this.closes;
    await this.connect();
    let refusedSince = 0;
    let pause = 0;
    for (;;) {
      if (pause) {
        await new Promise((r) => setTimeout(r, pause));
        if (opts.signal?.aborted) throw this.err('aborted before start');
      }
      const release = await this.slot(closes, opts.signal);
      try {
        return await this.run(command, opts, closes);
      } catch (e) {
        if (!(e instanceof ChannelRefused)) throw e;
        // The server refused a session (sshd MaxSessions). The command never started, so
        // waiting and asking again is queueing, not retrying it. Run fewer at once on this
        // connection; if nothing else runs here, the server is still tearing down sessions
        // that already ended on our side: back off briefly, bounded by the connect timeout.
        refusedSince ||= Date.now();
        if (this.channels.inUse > 1) {
          this.channels.limit = Math.max(1, this.channels.inUse - 1);
          pause = 0;
          continue;
        }
        if (Date.now() - refusedSince < this.ep.connectTimeoutMs) {
          pause = Math.min(500, Math.max(20, pause * 2));
          continue;
        }
        throw this.err(
          `${this.where} keeps refusing to open a session channel (${e.message}) for ${secs(this.ep.connectTimeoutMs)}` +
            `\n    hint: sshd MaxSessions may be lower than Hades' channels per connection, or sessions are stuck on the host`,
          e,
        );
      } finally {
        release();
      }
    }
  }

  private run(command: string, opts: ExecOptions, closes: number): Promise<ExecResult> {
    const closed = this.closedSince(closes);
    if (closed) return Promise.reject(closed);
    const client = this.client;
    if (!client || this.state !== 'ready') return this.connect().then(() => this.run(command, opts, closes));
    return runCommand(() => this.session(client), command, opts, {
      err: (message, cause) => this.err(message, cause),
      sock: () => this.sock,
      up: () => this.state === 'ready',
      running: this.running,
      // A command of its own on this connection (not aborted by the caller's signal).
      killGroup: (pgid, become) =>
        this.exec(killGroupCommand(pgid, KILL_GRACE_MS, become)).then(
          () => undefined,
          () => undefined,
        ),
    });
  }

  /**
   * Closes the connection. A second close() while one is under way waits for it; a connect()
   * meanwhile waits for it too, then opens a new connection (the old one's slot is given
   * back first, and its teardown never touches the new one).
   */
  close(): Promise<void> {
    this.closes++;
    this.closing ??= this.shut().finally(() => {
      this.closing = undefined;
    });
    return this.closing;
  }

  private async shut(): Promise<void> {
    const client = this.client;
    if (this.state === 'connecting') await this.connecting?.catch(() => undefined);
    this.state = 'closed';
    this.failure = undefined;
    this.dropReason = undefined;
    this.spare = undefined; // closed with the connection
    const c = client ?? this.client;
    if (!c) {
      this.ctx.budget?.release(this);
      return;
    }
    const sock = this.sock;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.destroy();
        resolve();
      }, 2_000);
      const done = () => {
        clearTimeout(t);
        sock?.destroy();
        resolve();
      };
      c.once('close', done);
      // Once our disconnect message and end of stream are handed to the kernel (or to the
      // jump connection), nothing is left to say: waiting for the server's answering close
      // would only add a round trip to the end of every run.
      sock?.once('finish', done);
      c.end();
    });
    // What the close event does, unless it came first: fail what still runs, give back the slot.
    if (this.client === c) this.onClosed();
    this.sock = undefined;
    this.ctx.budget?.release(this);
  }
}
