/**
 * What one SSH connection is made of: the endpoint (already merged from HostSpec and ssh
 * config), what the pool provides to it, the defaults, and the pieces its messages share.
 */
import type { ConnectionBudget } from '../budget.js';
import { TransportError } from '../types.js';
import type { SshConnection } from './connection.js';
import type { KnownHostEntry } from './known-hosts.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
/** Concurrent exec channels per connection: below OpenSSH's default MaxSessions (10). */
export const DEFAULT_MAX_CHANNELS = 8;
export const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Everything needed to reach one SSH endpoint, already merged from HostSpec + ssh config. */
export interface SshEndpoint {
  /** Inventory name, used in every message. */
  name: string;
  addr: string;
  port: number;
  user: string;
  /** Identity files to offer, in order (absolute). Empty = agent + default keys. */
  identityFiles: string[];
  /** Where identityFiles came from: a missing/unusable file is an error for 'host', skipped for 'config'. */
  identitySource: 'host' | 'config' | 'default';
  passphraseEnv?: string;
  /** Offer only the identity files, not the agent (OpenSSH IdentitiesOnly). */
  identitiesOnly?: boolean;
  connectTimeoutMs: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  maxChannels?: number;
  /** Reach the endpoint through this connection (direct-tcpip), e.g. a jump host. */
  jump?: SshConnection;
}

/** What a connection needs from its pool. */
export interface ConnectionContext {
  knownHostsFiles: string[];
  acceptNewHosts: boolean;
  /** Current known_hosts entries (loaded once, updated on accept-new). */
  knownHosts(): Promise<KnownHostEntry[]>;
  /** Records an accepted key so later connections in this run see it. */
  remember(entries: KnownHostEntry[]): void;
  /** Throttles concurrent handshakes (sshd MaxStartups); resolves to a release function. */
  handshakeSlot(): Promise<() => void>;
  /** Called once per connection that reached "authenticated". */
  opened(): void;
  /** The connection budget (--max-connections; ../budget.ts): a slot per open connection. */
  budget?: ConnectionBudget;
  /** Env to read passphrases and SSH_AUTH_SOCK from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export function secs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** `addr:port`, as every connection message names the endpoint. */
export function whereOf(ep: Pick<SshEndpoint, 'addr' | 'port'>): string {
  return `${ep.addr}:${ep.port}`;
}

/** A TransportError naming the endpoint's inventory host. */
export function endpointError(ep: Pick<SshEndpoint, 'name'>, message: string, cause?: unknown): TransportError {
  return new TransportError(ep.name, message, cause !== undefined ? { cause } : undefined);
}
