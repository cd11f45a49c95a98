/** The SSH pool a run (or a --check) uses: known_hosts files, new-host policy, timeouts, the connection cap. */
import { resolve } from 'node:path';
import { durationField } from '../config/duration.js';
import type { Hadesfile } from '../config/model.js';
import type { PoolOptions } from '../transport/pool.js';
import { maxConnectionsOf, type RunOptions } from './options.js';

/** `userKnownHosts`: defaultKnownHostsFile() of transport/pool.ts (passed in: the pool module loads lazily). */
export function poolOptions(hf: Hadesfile, opts: RunOptions, userKnownHosts: string): PoolOptions {
  const connectTimeoutMs = opts.connectTimeout !== undefined ? durationField(opts.connectTimeout) : undefined;
  const maxConnections = maxConnectionsOf(opts.maxConnections);
  return {
    hosts: hf.hosts,
    // ~/.ssh/known_hosts first: it is where --accept-new-hosts records new keys.
    knownHostsFiles: [userKnownHosts, ...hf.knownHosts, ...opts.knownHosts.map((f) => resolve(process.cwd(), f))],
    acceptNewHosts: opts.acceptNewHosts,
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    localCwd: hf.baseDir,
  };
}
