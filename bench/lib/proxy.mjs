/**
 * The latency proxy the benchmark puts in front of every lab host: delays every chunk by
 * `delayMs` in each direction (order preserved; the source is paused while more than
 * 1 MiB is in flight) — the lab's startDelayProxy, plus TCP_NODELAY on both sockets.
 *
 * Why not the lab's own proxy: without TCP_NODELAY, Nagle's algorithm on the proxy's
 * sockets holds back a small write while an earlier one is unacknowledged, and the
 * receiver's delayed ACK (40 ms on Linux) turns that into random ~40 ms stalls that a real
 * network path (where both SSH ends set TCP_NODELAY) does not have. Measured through the
 * lab proxy vs this one, one ssh2 exec with a small stdin: 146 vs 97 ms at 30 ms RTT.
 */
import { once } from 'node:events';
import * as net from 'node:net';

export async function startNoDelayProxy(listen, target, delayMs) {
  const sockets = new Set();
  let count = 0;
  const HIGH = 1 << 20;
  const pipeDelayed = (from, to) => {
    let inFlight = 0;
    from.on('data', (chunk) => {
      inFlight += chunk.length;
      if (inFlight > HIGH) from.pause();
      setTimeout(() => {
        inFlight -= chunk.length;
        if (!to.destroyed) to.write(chunk);
        if (inFlight <= HIGH && from.isPaused() && !from.destroyed) from.resume();
      }, delayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), delayMs));
  };
  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(target);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('close', () => setTimeout(() => upstream.destroy(), delayMs));
    upstream.on('close', () => setTimeout(() => client.destroy(), delayMs));
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
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
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Replaces the lab's proxies (same addresses, so the lab's known_hosts still lists them)
 * with TCP_NODELAY ones. Returns a function that closes them.
 */
export async function useNoDelayProxies(lab, delayMs) {
  const mine = [];
  for (const p of lab.proxies) {
    await p.close();
    mine.push(await startNoDelayProxy(p.listen, p.target, delayMs));
  }
  return () => Promise.all(mine.map((p) => p.close()));
}
