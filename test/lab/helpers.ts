/**
 * Helpers for tests that use the lab (see ./global-setup.ts). Everything here works
 * from the serialisable LabInfo, so it runs in any test worker.
 */
import * as fs from 'node:fs';
import { describe, inject, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { type DelayProxy, type HiddenHost, type LabHost, type LabInfo, startLabProxy } from './lab.js';

/**
 * Hosts the transport tests (test/integration/ssh-*.test.ts) use. h1..h6 belong to the
 * action/rollout tests, which count logins on them: never connect to those from here.
 */
export const TRANSPORT_HOSTS = ['h7', 'h8'] as const;
/** Hosts the failure-budget / progressive-batch / --limit tests (ssh-budget.test.ts) use. */
export const BUDGET_HOSTS = ['h9', 'h10', 'h11', 'h12', 'h13', 'h14'] as const;
/** Hosts the deploy-lock and hook tests (lock.test.ts) use. */
export const LOCK_HOSTS = ['h15', 'h16', 'h17'] as const;

/** The lab, or null when HADES_SKIP_LAB=1 (use with describe.skipIf(!lab)). */
export function getLab(): LabInfo | null {
  return inject('lab');
}

/** The lab; throws (test fails) when there is none. */
export function requireLab(): LabInfo {
  const lab = inject('lab');
  if (!lab) throw new Error(`no test lab: ${inject('labSkipReason') || 'not started'}`);
  return lab;
}

export function labHost(lab: LabInfo, name: string): LabHost | HiddenHost {
  const h =
    lab.hosts.find((x) => x.name === name) ??
    (lab.jumpHost?.name === name ? lab.jumpHost : undefined) ??
    (lab.hiddenHost?.name === name ? lab.hiddenHost : undefined);
  if (!h) throw new Error(`lab has no host ${name}`);
  return h;
}

/**
 * A suite that needs the lab. Without one (only possible with an explicit HADES_SKIP_LAB=1,
 * never in CI) it is reported as skipped with the reason; `body` is not even called.
 */
export function describeLab(name: string, body: (lab: LabInfo) => void): void {
  const lab = inject('lab');
  if (!lab) {
    describe.skip(name, () => {
      it(`needs the real-sshd lab (${inject('labSkipReason') || 'not started'})`, () => undefined);
    });
    return;
  }
  describe(name, () => body(lab));
}

/** A HostSpec for a lab host, logging in as the lab user with the lab client key. */
export function hostSpec(lab: LabInfo, name: string, over: Partial<HostSpec> = {}): HostSpec {
  const h = labHost(lab, name);
  return {
    name,
    addr: h.addr,
    port: h.port,
    user: lab.user,
    identityFile: lab.clientKey,
    local: false,
    order: 0,
    pos: { file: 'lab', line: 1, col: 1 },
    ...('jump' in h ? { jump: h.jump } : {}),
    ...over,
  };
}

/** The inventory map of every lab host (h1.., hj, hidden), for TransportPool's `hosts`. */
export function labInventory(lab: LabInfo, over: Partial<HostSpec> = {}): Map<string, HostSpec> {
  const names = [
    ...lab.hosts.map((h) => h.name),
    ...(lab.jumpHost ? [lab.jumpHost.name] : []),
    ...(lab.hiddenHost ? [lab.hiddenHost.name] : []),
  ];
  return new Map(names.map((n, i) => [n, { ...hostSpec(lab, n, over), order: i }]));
}

/** How many times the host's sshd logged a successful login (optionally for one user). */
export function acceptedLogins(host: LabHost, user?: string): number {
  const log = fs.existsSync(host.logFile) ? fs.readFileSync(host.logFile, 'utf8') : '';
  const re = new RegExp(`^Accepted publickey for ${user ? escapeRe(user) : '\\S+'} from`, 'gm');
  return (log.match(re) ?? []).length;
}

export function logText(host: LabHost): string {
  return fs.existsSync(host.logFile) ? fs.readFileSync(host.logFile, 'utf8') : '';
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `type base64` of a lab host's key, as listed in the lab's known_hosts. */
export function labHostKey(lab: LabInfo, name: string): string {
  const h = labHost(lab, name);
  const line = fs
    .readFileSync(lab.knownHosts, 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[0]!.split(',').includes(h.addr));
  if (!line) throw new Error(`no known_hosts line for ${name} (${h.addr})`);
  return line.split(' ').slice(1).join(' ');
}

export interface CountingProxies {
  /** One 0 ms proxy per name, in front of its target. */
  proxies: Map<string, DelayProxy>;
  /** A known_hosts file listing every proxy address with its target's host key. */
  knownHosts: string;
  /** Bytes each proxy carried towards its host so far. */
  sent(): Map<string, number>;
  close(): Promise<void>;
}

/**
 * A byte-counting proxy in front of each target: route a host through `proxies.get(name).listen`
 * to count, independently of Hades's own reports, what a run sends to it.
 * `targets`: name → { addr of the sshd, its host key `type base64` }.
 */
export async function countingProxies(
  lab: LabInfo,
  targets: Map<string, { addr: string; hostKey: string }>,
  knownHostsFile: string,
): Promise<CountingProxies> {
  const proxies = new Map<string, DelayProxy>();
  try {
    for (const [name, t] of targets) proxies.set(name, await startLabProxy(lab, { host: t.addr, port: 22 }));
  } catch (e) {
    await Promise.all([...proxies.values()].map((p) => p.close()));
    throw e;
  }
  fs.writeFileSync(knownHostsFile, `${[...targets].map(([name, t]) => `${proxies.get(name)!.listen.host} ${t.hostKey}`).join('\n')}\n`);
  return {
    proxies,
    knownHosts: knownHostsFile,
    sent: () => new Map([...proxies].map(([n, p]) => [n, p.bytes.toTarget])),
    close: async () => {
      await Promise.all([...proxies.values()].map((p) => p.close()));
    },
  };
}
