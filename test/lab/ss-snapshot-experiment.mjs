// Evidence for issue 16 (session 6): an `ss` dump is not a snapshot. 8 connections to a local server are recycled one
// at a time (each closed, and its FIN seen by the server, before the next opens), so at most 8 are ever established
// server-side; `ss -Htn state established` sampled every 50 ms meanwhile lists more (up to 13 seen under load).
// Run by hand: node test/lab/ss-snapshot-experiment.mjs (20 s). Not part of the suite.
import net from 'node:net';
import { execFile } from 'node:child_process';
const ADDR = '127.201.77.1',
  PORT = 40777,
  N = 8;
const server = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('data', () => {});
  s.on('end', () => {
    s.emit('gotfin');
    s.end();
  });
  s.on('error', () => {});
  const port = s.remotePort;
  serverSide.set(port, s);
});
const serverSide = new Map();
await new Promise((r) => server.listen(PORT, ADDR, r));
const open = () =>
  new Promise((r) => {
    const c = net.connect({ host: ADDR, port: PORT }, () => r(c));
    c.on('error', () => {});
  });
const conns = [];
for (let i = 0; i < N; i++) conns.push(await open());
let stop = false,
  cycles = 0;
const cycler = (async () => {
  while (!stop) {
    const a = conns.shift();
    // wait until the server side has seen A's FIN (server socket left ESTABLISHED), then open B
    await new Promise((r) => {
      const wait = () => {
        const s = serverSide.get(a.localPort);
        if (!s) return setImmediate(wait);
        s.once('gotfin', r);
        a.end();
      };
      wait();
    });
    a.destroy();
    conns.push(await open());
    cycles++;
  }
})();
const hist = {};
const t0 = Date.now();
while (Date.now() - t0 < 20000) {
  const n = await new Promise((res) =>
    execFile('ss', ['-Htn', 'state', 'established'], (_e, out) =>
      res(out.split('\n').filter((l) => l.trim().split(/\s+/)[2] === `${ADDR}:${PORT}`).length),
    ),
  );
  hist[n] = (hist[n] ?? 0) + 1;
  await new Promise((r) => setTimeout(r, 50));
}
stop = true;
await cycler;
console.log('cycles', cycles, 'samples by count', JSON.stringify(hist));
process.exit(0);
