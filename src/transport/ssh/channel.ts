/**
 * Session channels without ssh2's extra round trips.
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
import type { Client, ClientChannel } from 'ssh2';

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
    throw new Error('this version of the ssh2 package is not the one Hades was built with (session channel internals changed); install the ssh2 version from package.json');
}

/** An error from the server refusing to open a channel (sshd MaxSessions): carries `reason`. */
export type ChannelOpenError = Error & { reason?: number | string };

/** Opens a session channel (no request yet). One round trip; rejects with ssh2's open-failure error. */
export function openSession(client: Client): Promise<ClientChannel> {
  const c = client as unknown as Required<ClientInternals>;
  return new Promise((resolve, reject) => {
    // What ssh2's openChannel() registers: called with the Channel on open confirmation,
    // with an error (`reason` set) on open failure.
    const onOpen = Object.assign((err: ChannelOpenError | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch)), { type: 'session' });
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
