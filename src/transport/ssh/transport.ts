/**
 * The Transport a caller holds for an SSH host: its inventory name plus the pooled
 * connection it shares with every other name that resolves to the same endpoint.
 */
import type { Duplex } from 'node:stream';
import type { ExecOptions, ExecResult, StreamOptions, Transport } from '../types.js';
import { TransportError } from '../types.js';
import type { SshConnection } from './connection.js';

/**
 * Two inventory names can share one connection (same user@addr:port): errors from it
 * carry the first name; re-label them with the caller's, keeping class and fields.
 */
function renamed(e: unknown, name: string): unknown {
  if (!(e instanceof TransportError) || e.host === name) return e;
  const copy = Object.create(Object.getPrototypeOf(e) as object) as TransportError;
  Object.assign(copy, e, { host: name });
  Object.defineProperty(copy, 'message', {
    value: `${name}: ${e.message.slice(e.host.length + 2)}`,
    writable: true,
    configurable: true,
  });
  if (e.cause !== undefined) Object.defineProperty(copy, 'cause', { value: e.cause, writable: true, configurable: true });
  Object.defineProperty(copy, 'stack', { value: `${e.name}: ${copy.message}`, writable: true, configurable: true });
  return copy;
}

/** The Transport a caller holds: a name plus the shared connection. */
export class SshTransport implements Transport {
  constructor(
    readonly name: string,
    readonly connection: SshConnection,
  ) {}

  connect(): Promise<void> {
    return this.connection.connect().catch((e: unknown) => {
      throw renamed(e, this.name);
    });
  }

  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.connection.exec(command, opts).catch((e: unknown) => {
      throw renamed(e, this.name);
    });
  }

  openStream(host: string, port: number, opts?: StreamOptions): Promise<Duplex> {
    return this.connection.openStream(host, port, opts).catch((e: unknown) => {
      throw renamed(e, this.name);
    });
  }

  hold(): () => void {
    return this.connection.hold();
  }

  prefetch(): void {
    this.connection.warm();
  }

  schedule(nextUse: number, closeIfIdle = false): void {
    this.connection.nextUse = nextUse;
    if (closeIfIdle && this.connection.idle()) void this.connection.close();
  }

  /** Closes the underlying (shared) connection; a later connect() opens a new one. */
  close(): Promise<void> {
    return this.connection.close();
  }
}
