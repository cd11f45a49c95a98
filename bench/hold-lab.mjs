#!/usr/bin/env node
/**
 * Holds a rollout-benchmark lab open for profiling by hand: N real sshd hosts behind the
 * delay proxies, the "release" workload's hadesfile written and its artifact pushed, then
 * waits. It prints the command that runs the release (add `--output json`, `node --cpu-prof`,
 * another `--cli` build, ...) and a `wipe` script that empties /opt/app on every host (the
 * fresh case). Ctrl-C stops everything.
 *
 *   sudo sh -c 'ulimit -n 65536 && node bench/hold-lab.mjs [--hosts 16] [--delay 15] [--size 20]'
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLab } from './lib/lab.mjs';
import { CLI } from './lib/util.mjs';
import { DST_DIR, HadesWorkload, prepareHosts } from './lib/workloads.mjs';

const { values: flags } = parseArgs({
  options: {
    hosts: { type: 'string', default: '16' },
    delay: { type: 'string', default: '15' },
    size: { type: 'string', default: '20' },
    cli: { type: 'string', default: CLI },
  },
});
const n = Number(flags.hosts);
const { startLab } = await loadLab();
const lab = await startLab({ hosts: n, jump: false, proxyDelayMs: Number(flags.delay), logLevel: 'ERROR' });
const work = mkdtempSync(join(tmpdir(), 'hades-hold-'));
const stop = async () => {
  await lab.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
const artifact = join(work, 'artifact.bin');
writeFileSync(artifact, randomBytes(Number(flags.size) * 2 ** 20));
await prepareHosts(lab, lab.info.hosts);
const w = new HadesWorkload(lab, lab.info.hosts, work, artifact, { cli: resolve(flags.cli) });
await w.setup();
const wipe = join(work, 'wipe');
writeFileSync(wipe, `#!/bin/sh\n${lab.info.hosts.map((h) => `nsenter -t ${h.pid} -m -- rm -rf ${DST_DIR} &`).join('\n')}\nwait\n`);
chmodSync(wipe, 0o755);
const env = Object.entries(w.env)
  .filter(([k]) => ['HOME', 'SSH_AUTH_SOCK', 'NO_COLOR'].includes(k))
  .map(([k, v]) => `${k}=${v}`)
  .join(' ');
console.log(`lab of ${n} hosts up (${lab.info.startMs} ms). In ${w.dir}:`);
console.log(`  wipe (fresh case): ${wipe}`);
console.log(`  run: cd ${w.dir} && env ${env} node ${w.args().join(' ')}`);
console.log('Ctrl-C stops the lab.');
await new Promise(() => undefined);
