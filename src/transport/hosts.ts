/**
 * The one place that decides how a host is reached. A host marked `local` — or a name the
 * inventory does not know — runs in the orchestrator's own shell, in `localCwd` (the
 * hadesfile's directory, so relative paths agree with `src:`); every other host goes to
 * the SSH pool. Light on purpose: no ssh2 here, so a run without SSH hosts never loads it.
 */
import type { HostSpec } from '../config/model.js';
import { LocalTransport } from './local.js';
import type { Transport } from './types.js';

export class HostTransports {
  private readonly local = new Map<string, LocalTransport>();

  constructor(
    private readonly localCwd: string | undefined,
    /** The pooled SSH transport for a host; absent when the run has no SSH hosts. */
    private readonly ssh?: (spec: HostSpec) => Transport,
  ) {}

  /** One transport per host name for the whole run. */
  get(name: string, spec: HostSpec | undefined): Transport {
    if (!spec || spec.local) {
      let t = this.local.get(name);
      if (!t) {
        t = new LocalTransport(name, this.localCwd);
        this.local.set(name, t);
      }
      return t;
    }
    if (!this.ssh) throw new Error(`${name}: an SSH host, but this run opened no SSH pool`);
    return this.ssh(spec);
  }

  async closeLocal(): Promise<void> {
    await Promise.all([...this.local.values()].map((t) => t.close()));
  }
}
