/**
 * TCP proxies in front of lab hosts: the benchmarks' latency proxy and tests' byte and
 * connection counters. Imports only node builtins (bench/lib/lab.mjs transpiles test/lab/*.ts).
 */
import { once } from 'node:events';
import * as net from 'node:net';
import type { LabInfo } from './lab.js';

export interface DelayProxy {
  listen: { host: string; port: number };
  target: { host: string; port: number };
  delayMs: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes carried so far in each direction (counted here, independently of either end). */
  readonly bytes: { toTarget: number; fromTarget: number };
  /** Connections open right now (accepted, not yet closed on both sides). */
  readonly open: number;
  /**
   * Stops (true) or restarts (false) forwarding towards the target: the client's bytes wait
   * in the proxy (TCP backpressure), e.g. to hold a transfer half-way while a test looks.
   */
  holdToTarget(on: boolean): void;
  /** Holds (as holdToTarget(true)) as soon as `bytes.toTarget` reaches `total`: a transfer stopped part-way, deterministically. */
  holdToTargetAt(total: number): void;
  close(): Promise<void>;
}

/**
 * TCP proxy delaying every chunk by `delayMs` in each direction (order preserved; the
 * source is paused while more than 1 MiB is in flight). Listen on another loopback address.
 *
 * Both sockets set TCP_NODELAY: without it, Nagle's algorithm holds back a small write while
 * an earlier one is unacknowledged, and the receiver's delayed ACK (40 ms on Linux) turns
 * that into random ~40 ms stalls that a real network path (where both SSH ends set
 * TCP_NODELAY) does not have — one ssh2 exec with a small stdin at 30 ms RTT: 146 ms
 * without, 97 ms with.
 */
export async function startDelayProxy(
  listen: { host: string; port: number },
  target: { host: string; port: number },
  delayMs: number,
): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  let open = 0;
  const bytes = { toTarget: 0, fromTarget: 0 };
  let held = false;
  let holdAt = Infinity;
  const clients = new Set<net.Socket>();
  const pipeDelayed = (from: net.Socket, to: net.Socket, dir: keyof typeof bytes) => {
    let inFlight = 0;
    const HIGH = 1 << 20;
    const holding = () => dir === 'toTarget' && held;
    from.on('data', (chunk: Buffer) => {
      bytes[dir] += chunk.length;
      if (dir === 'toTarget' && bytes.toTarget >= holdAt) {
        held = true;
        for (const c of clients) c.pause();
      }
      inFlight += chunk.length;
      if (inFlight > HIGH || holding()) from.pause();
      setTimeout(() => {
        inFlight -= chunk.length;
        if (!to.destroyed) to.write(chunk);
        if (inFlight <= HIGH && !holding() && from.isPaused() && !from.destroyed) from.resume();
      }, delayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), delayMs));
  };
  const server = net.createServer((client) => {
    count++;
    open++;
    let closed = 0;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    if (held) client.pause();
    const upstream = net.connect(target);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => {
        sockets.delete(s);
        if (++closed === 2) open--;
      });
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => setTimeout(() => upstream.destroy(), delayMs));
    upstream.on('close', () => setTimeout(() => client.destroy(), delayMs));
    pipeDelayed(client, upstream, 'toTarget');
    pipeDelayed(upstream, client, 'fromTarget');
  });
  server.listen(listen.port, listen.host);
  await once(server, 'listening');
  return {
    listen,
    target,
    delayMs,
    get connections() {
      return count;
    },
    get bytes() {
      return { ...bytes };
    },
    get open() {
      return open;
    },
    holdToTargetAt(total: number) {
      holdAt = total;
    },
    holdToTarget(on: boolean) {
      held = on;
      if (!on) holdAt = Infinity;
      for (const c of clients) {
        if (c.destroyed) continue;
        if (on) c.pause();
        else c.resume();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A proxy (0 ms delay unless told) in front of `target` on a free 127.X.Y.(150..199):22 of a
 * running lab — for tests that count the bytes a run sends to a host, or its connections.
 * The address is picked at random and retried when taken (parallel test files).
 */
export async function startLabProxy(lab: LabInfo, target: { host: string; port: number }, delayMs = 0): Promise<DelayProxy> {
  for (let attempt = 0; ; attempt++) {
    const host = `${lab.base}.${150 + Math.floor(Math.random() * 50)}`;
    try {
      return await startDelayProxy({ host, port: 22 }, target, delayMs);
    } catch (e) {
      if (attempt < 20 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw e;
    }
  }
}
