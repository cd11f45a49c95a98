/**
 * One transport per host for the whole run.
 *
 * SSH connections are pooled by `user@addr:port` (plus the jump chain, since the same
 * address behind two different jump hosts is two different machines), after merging
 * the HostSpec with ~/.ssh/config (the HostSpec wins). Jump hosts (`jump:` or ProxyJump)
 * are themselves pooled connections, so a jump that is also a target is connected once.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { HostSpec } from '../config/model.js';
import { type KnownHostEntry, loadKnownHosts } from './ssh/known-hosts.js';
import { HostTransports } from './hosts.js';
import { ConnectionBudget, DEFAULT_MAX_CONNECTIONS } from './budget.js';
import { Semaphore } from './semaphore.js';
import { SshConnection } from './ssh/connection.js';
import { type ConnectionContext, DEFAULT_CONNECT_TIMEOUT_MS, type SshEndpoint } from './ssh/endpoint.js';
import { SshTransport } from './ssh/transport.js';
import { SshConfig, defaultSshConfigPath } from './ssh/config.js';
import type { Transport } from './types.js';
import { TransportError } from './types.js';

export { HostKeyError } from './ssh/known-hosts.js';

export interface PoolOptions {
  hosts: Map<string, HostSpec>; // inventory, for resolving `jump: <name>`
  /** known_hosts files, in order; the first is where accept-new appends. Default [~/.ssh/known_hosts]. */
  knownHostsFiles?: string[];
  acceptNewHosts?: boolean;
  connectTimeoutMs?: number; // global default 10_000
  sshConfigPath?: string; // default ~/.ssh/config (missing file = fine)
  maxConcurrentHandshakes?: number; // default 32, stay under sshd MaxStartups
  /** At most this many SSH connections open at once, jump hosts included (default 256; ./budget.ts). */
  maxConnections?: number;
  /** Concurrent exec channels per connection (default 8, under OpenSSH's MaxSessions 10). */
  maxChannelsPerConnection?: number;
  /** Keepalive probe interval (default 15 s); 3 unanswered probes = connection dead. */
  keepaliveIntervalMs?: number;
  /** Where passphrases (passphrase_env) and SSH_AUTH_SOCK are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where local hosts run their commands (the hadesfile's directory; default: the process's cwd). */
  localCwd?: string;
}

export function defaultKnownHostsFile(): string {
  return path.join(os.homedir(), '.ssh', 'known_hosts');
}

export class TransportPool {
  readonly stats = { connectionsOpened: 0 };
  private readonly connections = new Map<string, { conn: SshConnection; depth: number }>();
  /** Local or SSH, per host: the pool's SSH transports behind the one chooser. */
  readonly hosts: HostTransports;
  private readonly transports = new Map<string, SshTransport>();
  private readonly sshConfig: SshConfig;
  private readonly knownHostsFiles: string[];
  private entries: Promise<KnownHostEntry[]> | undefined;
  private readonly remembered: KnownHostEntry[] = [];
  private readonly ctx: ConnectionContext;
  /** Concurrent handshakes (sshd MaxStartups). */
  private readonly handshakes: Semaphore;
  /** Open connections (--max-connections). */
  readonly budget: ConnectionBudget;

  constructor(private readonly opts: PoolOptions) {
    this.hosts = new HostTransports(opts.localCwd, (h) => this.sshTransport(h));
    this.sshConfig = new SshConfig(opts.sshConfigPath ?? defaultSshConfigPath());
    this.knownHostsFiles = opts.knownHostsFiles ?? [defaultKnownHostsFile()];
    this.handshakes = new Semaphore(Math.max(1, opts.maxConcurrentHandshakes ?? 32));
    this.budget = new ConnectionBudget(Math.max(1, opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS));
    this.ctx = {
      knownHostsFiles: this.knownHostsFiles,
      acceptNewHosts: opts.acceptNewHosts ?? false,
      knownHosts: async () => {
        this.entries ??= loadKnownHosts(this.knownHostsFiles);
        return [...(await this.entries), ...this.remembered];
      },
      remember: (e) => this.remembered.push(...e),
      handshakeSlot: () => this.handshakes.acquire(),
      budget: this.budget,
      opened: () => {
        this.stats.connectionsOpened++;
      },
      ...(opts.env ? { env: opts.env } : {}),
    };
  }

  /** host.local → LocalTransport (in `localCwd`); otherwise the pooled SSH transport (connects lazily). */
  get(host: HostSpec): Transport {
    return this.hosts.get(host.name, host);
  }

  private sshTransport(host: HostSpec): Transport {
    const conn = this.connection(host, []);
    const k = `${host.name}\0${conn.key}`;
    let t = this.transports.get(k);
    if (!t) {
      t = new SshTransport(host.name, conn);
      this.transports.set(k, t);
    }
    return t;
  }

  /** Connects these hosts concurrently (handshakes throttled). Returns the failures by host name. */
  async connectAll(hosts: HostSpec[]): Promise<Map<string, Error>> {
    const errors = new Map<string, Error>();
    await Promise.all(
      hosts.map(async (h) => {
        try {
          await this.get(h).connect();
        } catch (e) {
          errors.set(h.name, e as Error);
        }
      }),
    );
    return errors;
  }

  /**
   * The preflight: connects these hosts, in this order, while the budget has free slots
   * (never waiting, never closing one to make room). Returns the failures by host name;
   * a host not connected now connects in its turn (and its host key is checked then).
   */
  async preconnect(hosts: HostSpec[]): Promise<Map<string, Error>> {
    const errors = new Map<string, Error>();
    const started: Array<Promise<void>> = [];
    for (const h of hosts) {
      let t: Transport;
      try {
        t = this.get(h);
      } catch (e) {
        errors.set(h.name, e as Error);
        continue;
      }
      if (!(t instanceof SshTransport)) continue;
      const p = t.connection.prefetch();
      if (!p) continue;
      started.push(
        t.connect().catch((e: unknown) => {
          errors.set(h.name, e as Error);
        }),
      );
    }
    await Promise.all(started);
    return errors;
  }

  /** Closes every connection: targets first, then the jump hosts they tunnel through. */
  async closeAll(): Promise<void> {
    const byDepth = new Map<number, SshConnection[]>();
    for (const { conn, depth } of this.connections.values()) {
      byDepth.set(depth, [...(byDepth.get(depth) ?? []), conn]);
    }
    // A connection's depth is how many hops it is from us: deepest (innermost) first.
    for (const d of [...byDepth.keys()].sort((a, b) => b - a)) {
      await Promise.all(byDepth.get(d)!.map((c) => c.close()));
    }
    await this.hosts.closeLocal();
  }

  /** The merged endpoint for a host (HostSpec over ssh config over defaults). Exposed for dry-run/diagnostics. */
  endpoint(host: HostSpec): Omit<SshEndpoint, 'jump'> & { jump?: string } {
    const cfg = this.sshConfig.resolve(host.addr);
    const identityFiles = host.identityFile ? [host.identityFile] : cfg.identityFiles;
    const jump = host.jump ?? cfg.proxyJump;
    return {
      name: host.name,
      addr: cfg.hostName ?? host.addr,
      port: host.port ?? cfg.port ?? 22,
      user: host.user ?? cfg.user ?? os.userInfo().username,
      identityFiles,
      identitySource: host.identityFile ? 'host' : cfg.identityFiles.length ? 'config' : 'default',
      ...(host.passphraseEnv ? { passphraseEnv: host.passphraseEnv } : {}),
      ...(cfg.identitiesOnly ? { identitiesOnly: true } : {}),
      connectTimeoutMs: host.connectTimeoutMs ?? this.opts.connectTimeoutMs ?? cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...(this.opts.keepaliveIntervalMs ? { keepaliveIntervalMs: this.opts.keepaliveIntervalMs } : {}),
      ...(this.opts.maxChannelsPerConnection ? { maxChannels: this.opts.maxChannelsPerConnection } : {}),
      ...(jump ? { jump } : {}),
    };
  }

  private connection(host: HostSpec, chain: string[]): SshConnection {
    if (chain.includes(host.name)) {
      throw new TransportError(chain[0]!, `jump hosts form a loop: ${[...chain, host.name].join(' -> ')}`);
    }
    const { jump: jumpRef, ...ep } = this.endpoint(host);
    let jump: SshConnection | undefined;
    if (jumpRef) jump = this.connection(this.jumpSpec(host, jumpRef), [...chain, host.name]);
    const endpoint: SshEndpoint = { ...ep, ...(jump ? { jump } : {}) };
    const key = `${endpoint.user}@${endpoint.addr}:${endpoint.port}${jump ? ` via ${jump.key}` : ''}`;
    const hit = this.connections.get(key);
    if (hit) return hit.conn;
    const conn = new SshConnection(endpoint, this.ctx);
    this.connections.set(key, { conn, depth: jump ? depthOf(jump, this.connections) + 1 : 0 });
    return conn;
  }

  /**
   * `jump` is an inventory host name, `[user@]addr[:port]`, or an OpenSSH ProxyJump chain
   * `a,b` (connect to a, then b through a, then the target through b).
   */
  private jumpSpec(from: HostSpec, ref: string): HostSpec {
    const hops = ref
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (hops.length === 0) throw new TransportError(from.name, `empty jump host`);
    const last = hops[hops.length - 1]!;
    const before = hops.slice(0, -1).join(',');
    const known = this.opts.hosts.get(last);
    if (known) {
      if (known.local) throw new TransportError(from.name, `jump host ${last} is a local host; a jump must be an SSH host`);
      return before ? { ...known, jump: before } : known;
    }
    const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@[\]]+)(?::(\d+))?$/.exec(last);
    if (!m) {
      throw new TransportError(from.name, `jump host ${JSON.stringify(last)} is neither an inventory host nor user@addr[:port]`);
    }
    const port = m[3] !== undefined ? Number(m[3]) : undefined;
    if (port !== undefined && (port < 1 || port > 65535)) throw new TransportError(from.name, `jump host ${last}: bad port`);
    const addr = m[2]!.replace(/^\[|\]$/g, '');
    return {
      name: last,
      addr,
      ...(m[1] ? { user: m[1] } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(before ? { jump: before } : {}),
      local: false,
      order: -1,
      pos: from.pos,
    };
  }
}

function depthOf(conn: SshConnection | undefined, all: Map<string, { conn: SshConnection; depth: number }>): number {
  if (!conn) return 0;
  for (const v of all.values()) if (v.conn === conn) return v.depth;
  return 0;
}
