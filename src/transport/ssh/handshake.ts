/**
 * Reaching an SSH endpoint: the TCP connect and the SSH handshake with host-key check and
 * authentication, each failure named by host and phase — DNS, TCP refused/unreachable,
 * timeout ("no answer within 10s"), handshake, host key, authentication (with the methods
 * tried).
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ConnectConfig } from 'ssh2';
import type { Credentials } from './credentials.js';
import {
  type ConnectionContext,
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  type SshEndpoint,
  endpointError,
  secs,
  whereOf,
} from './endpoint.js';
import {
  type KnownHostEntry,
  appendKnownHost,
  checkHostKey,
  hostKeyError,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  preferredHostKeyAlgorithms,
} from './known-hosts.js';

const { Client } = ssh2;
export type Ssh2Client = InstanceType<typeof Client>;

/** The TCP connection to the endpoint, by `deadline` (ms since the epoch). */
export function tcpConnect(ep: SshEndpoint, deadline: number): Promise<net.Socket> {
  const { addr, port, connectTimeoutMs } = ep;
  const where = whereOf(ep);
  const err = (message: string, cause?: unknown) => endpointError(ep, message, cause);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: addr, port });
    const timer = setTimeout(
      () => {
        sock.destroy();
        reject(
          err(
            `no answer within ${secs(connectTimeoutMs)} from ${where} (TCP connect timed out)` +
              `\n    hint: is the address right and the host up? raise connect_timeout if it is just slow`,
          ),
        );
      },
      Math.max(0, deadline - Date.now()),
    );
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      sock.on('error', () => undefined); // ssh2 adds its own handlers and reports errors
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err(describeSocketError(e, addr, port), e));
    });
  });
}

/**
 * SSH handshake, host-key check and authentication over `sock`, by `deadline`. `onReady`
 * gets the authenticated client synchronously, before any later event of it can fire
 * (the connection installs its own error and close handlers there).
 */
export function handshake(
  ep: SshEndpoint,
  ctx: ConnectionContext,
  sock: Duplex,
  deadline: number,
  entries: KnownHostEntry[],
  creds: Credentials,
  onReady: (client: Ssh2Client) => void,
): Promise<void> {
  const where = whereOf(ep);
  const err = (message: string, cause?: unknown) => endpointError(ep, message, cause);
  const client = new Client();
  const tried: string[] = [];
  let serverMethods: string[] | undefined;
  let hostKeyFailure: Error | undefined;
  let sawBanner = false;
  let authStarted = false;
  const queue = [...creds.list];

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) {
        client.removeAllListeners('ready');
        client.on('error', () => undefined);
        client.end();
        sock.destroy();
        reject(e);
      } else {
        resolve();
      }
    };
    const timer = setTimeout(
      () => {
        const phase = !sawBanner
          ? `connected to ${where} but got no SSH answer (is it an SSH server?)`
          : authStarted
            ? `the SSH handshake with ${where} stalled during authentication`
            : `the SSH handshake with ${where} did not complete`;
        settle(err(`no answer within ${secs(ep.connectTimeoutMs)}: ${phase}`));
      },
      Math.max(0, deadline - Date.now()),
    );

    const triedText = () =>
      `tried ${tried.length ? tried.join(', ') : 'nothing'}${creds.notes.length ? `; ${creds.notes.join('; ')}` : ''}`;

    client.on('greeting', () => (sawBanner = true));
    client.on('handshake', () => (sawBanner = true));
    client.on('ready', () => {
      if (settled) return;
      onReady(client);
      settle();
    });
    client.on('error', (e: Error & { level?: string }) => {
      if (hostKeyFailure) return settle(hostKeyFailure);
      if (e.level === 'client-authentication' || /authentication/i.test(e.message)) {
        const only = serverMethods && !serverMethods.includes('publickey');
        return settle(
          err(
            `authentication failed for user ${JSON.stringify(ep.user)} at ${where} (${triedText()})` +
              (only ? `; the server only accepts: ${serverMethods!.join(', ')}` : '') +
              `\n    hint: check the user, identity_file, and that the public key is in ~${ep.user}/.ssh/authorized_keys on the host`,
            e,
          ),
        );
      }
      if (e.level === 'client-socket') {
        return settle(err(`connection to ${where} failed during the SSH handshake: ${describeSocketError(e, ep.addr, ep.port)}`, e));
      }
      if (/before handshake/i.test(e.message)) {
        return settle(
          err(
            `${where} closed the connection before the SSH handshake` +
              `\n    hint: sshd may be refusing connections (MaxStartups, firewall, fail2ban)`,
            e,
          ),
        );
      }
      if (/too many authentication failures/i.test(e.message)) {
        return settle(err(`authentication failed at ${where}: too many authentication failures (${triedText()})`, e));
      }
      settle(err(`SSH handshake with ${where} failed: ${e.message}`, e));
    });
    client.on('close', () => {
      if (hostKeyFailure) return settle(hostKeyFailure);
      settle(err(`${where} closed the connection during the SSH handshake`));
    });

    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      const verdict = checkHostKey(entries, ep.addr, ep.port, key);
      if (verdict.status === 'ok') return verify(true);
      if (verdict.status === 'unknown' && ctx.acceptNewHosts) {
        const file = ctx.knownHostsFiles[0];
        if (!file) {
          hostKeyFailure = err('cannot accept a new host key: no known_hosts file configured');
          return verify(false);
        }
        appendKnownHost(file, ep.addr, ep.port, key).then(
          () => {
            ctx.remember([{ file, line: 0, hosts: knownHostName(ep.addr, ep.port), keyType: keyTypeOf(key), key }]);
            verify(true);
          },
          (e: Error) => {
            hostKeyFailure = err(`cannot record the new host key in ${file}: ${e.message}`, e);
            verify(false);
          },
        );
        return;
      }
      hostKeyFailure = hostKeyError(ep.name, ep.addr, ep.port, key, verdict, ctx.knownHostsFiles);
      verify(false);
    };

    const authHandler = (methodsLeft: string[] | null, _partial: boolean | null, next: (m: AnyAuthMethod | false) => void) => {
      authStarted = true;
      if (methodsLeft && !methodsLeft.includes('publickey')) {
        serverMethods = methodsLeft;
        return next(false);
      }
      const c = queue.shift();
      if (!c) return next(false);
      tried.push(c.label);
      next(c.method(ep.user));
    };

    const config: ConnectConfig = {
      sock: sock as unknown as ConnectConfig['sock'],
      username: ep.user,
      readyTimeout: 0, // our own deadline covers TCP + handshake + auth
      keepaliveInterval: ep.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: ep.keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX,
      hostVerifier: hostVerifier as ConnectConfig['hostVerifier'],
      authHandler: authHandler as unknown as ConnectConfig['authHandler'],
      algorithms: {
        serverHostKey: preferredHostKeyAlgorithms(knownKeyTypes(entries, ep.addr, ep.port)) as NonNullable<
          ConnectConfig['algorithms']
        >['serverHostKey'],
      },
    };
    try {
      client.connect(config);
    } catch (e) {
      settle(err(`cannot start the SSH handshake with ${where}: ${(e as Error).message}`, e));
    }
  });
}

export function describeSocketError(e: NodeJS.ErrnoException, addr: string, port: number): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${addr}:${port} (nothing listening there: is sshd running, is the port right?)`;
    case 'ENOTFOUND':
    case 'EAI_NONAME':
      return `cannot resolve host name ${JSON.stringify(addr)} (DNS lookup failed: ${e.code})`;
    case 'EAI_AGAIN':
      return `cannot resolve host name ${JSON.stringify(addr)} (DNS temporarily unavailable: ${e.code})`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${addr}:${port} is unreachable (${e.code}: no route to it)`;
    case 'ECONNRESET':
      return `connection to ${addr}:${port} was reset (ECONNRESET)`;
    case 'ETIMEDOUT':
      return `connection to ${addr}:${port} timed out (ETIMEDOUT)`;
    default:
      return `cannot connect to ${addr}:${port}: ${e.message}`;
  }
}
