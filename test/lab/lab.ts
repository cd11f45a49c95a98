/**
 * The real-sshd test lab: N private SSH hosts on loopback addresses, each a real OpenSSH
 * sshd in its own mount namespace (private tmpfs over the deploy dirs), plus a jump host
 * and a hidden host reachable only through it. Used by the vitest global setup and by
 * the benchmark scripts (bench/), which also need the latency proxy (startDelayProxy).
 *
 * Address plan, for a base 127.X.Y chosen at random and locked (two labs never collide):
 *   .1  - .99       h1..hN sshd hosts (:22)
 *   .100+i          delay proxy → h_i (only when started with proxyDelayMs; benchmarks)
 *   .150 - .199     free for tests' own listeners (silent servers, forwarders...)
 *   .200 - .239     startSshd(): extra per-test sshds
 *   .240 - .253     never listened on by the lab: connections are refused (LabInfo.unusedAddr)
 *   .254            hidden (inside hj's network namespace only; unreachable from here)
 *   hj (jump)       198.18.a.b:22 in its own network namespace, reached over a veth pair;
 *                   "hades-hidden" resolves only inside hj's mount namespace (/etc/hosts)
 *
 * Root only (users, namespaces, sshd). Nothing here is mocked.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { pidsInMountNs, releaseLock, reserveAddr, sweepStaleLabs, takeLock } from './locks.js';
import { startDelayProxy, type DelayProxy } from './proxy.js';
import { labPaths, sshdConfig } from './sshd-config.js';
import { ensureUsers, homeMounts, LAB_SHELL_USERS, LAB_USERS } from './users.js';

export { pidsInMountNs } from './locks.js';
export { startDelayProxy, startLabProxy, type DelayProxy } from './proxy.js';
export { LAB_SHELL_USERS, LAB_USERS } from './users.js';

const run = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';
export const DEPLOY_DIRS = ['/opt', '/srv', '/var/lib/app', '/etc/app'];
export const HIDDEN_NAME = 'hades-hidden';

export interface LabHost {
  name: string;
  addr: string;
  port: number;
  logFile: string;
  pidFile: string;
  /** Listening sshd pid (the process whose children are the per-connection sshds). */
  pid: number;
  /** Latency proxy in front of this host (when the lab was started with proxyDelayMs). */
  proxyAddr?: string;
}

export interface HiddenHost extends LabHost {
  /** The address only the jump host can reach (inside its network namespace). */
  realAddr: string;
  /** Name of the lab host to jump through. */
  jump: string;
}

/** Serialisable description of a running lab (what tests get via inject('lab')). */
export interface LabInfo {
  dir: string;
  base: string; // "127.X.Y"
  hosts: LabHost[];
  user: string;
  sudoUser: string;
  nosudoUser: string;
  /** Login shell /bin/bash, /usr/bin/fish, /usr/bin/tcsh (LAB_SHELL_USERS); passwordless sudo. */
  bashUser: string;
  fishUser: string;
  tcshUser: string;
  clientKey: string; // private key path (its .pub next to it)
  knownHosts: string; // lists every host (and proxy, jump, hidden) of this lab
  jumpHost?: LabHost;
  hiddenHost?: HiddenHost;
  /** An address in this lab's range where nothing ever listens (connection refused). */
  unusedAddr: string;
  startMs: number;
}

export interface LabOptions {
  hosts: number;
  /** Start the jump + hidden hosts (default true). */
  jump?: boolean;
  /** Start a delay proxy per host at 127.X.Y.(100+i) (for benchmarks). */
  proxyDelayMs?: number;
  /** sshd LogLevel for the regular hosts (default VERBOSE: logs "Accepted publickey ..."). */
  logLevel?: string;
}

export interface Lab {
  info: LabInfo;
  proxies: DelayProxy[];
  stop(): Promise<void>;
}

/** What is missing for a lab on this machine (empty = can start). */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (uid 0)');
  const bins: Record<string, string[]> = {
    sshd: [SSHD],
    'ssh-keygen': ['/usr/bin/ssh-keygen'],
    unshare: ['/usr/bin/unshare'],
    setpriv: ['/usr/bin/setpriv'],
    nsenter: ['/usr/bin/nsenter'],
    ip: ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'],
    useradd: ['/usr/sbin/useradd', '/sbin/useradd'],
    usermod: ['/usr/sbin/usermod', '/sbin/usermod'],
    sudo: ['/usr/bin/sudo'],
    fish: [LAB_SHELL_USERS.fishUser.shell],
    tcsh: [LAB_SHELL_USERS.tcshUser.shell],
  };
  for (const [name, paths] of Object.entries(bins)) {
    if (!paths.some((p) => fs.existsSync(p))) missing.push(name);
  }
  return missing;
}

interface Proc {
  host: LabHost;
  child: ChildProcess;
  stderr: string[];
  mntNs?: string;
}

export async function startLab(opts: LabOptions): Promise<Lab> {
  const t0 = performance.now();
  const n = opts.hosts;
  if (!Number.isInteger(n) || n < 1 || n > 990) throw new Error(`lab: hosts must be 1..990, got ${n}`);
  const missing = labPrerequisites();
  if (missing.length) throw new Error(`lab: missing prerequisites: ${missing.join(', ')}`);
  const withJump = opts.jump ?? true;

  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  for (const d of DEPLOY_DIRS) fs.mkdirSync(d, { recursive: true });
  await ensureUsers();

  sweepStaleLabs();
  const dir = fs.mkdtempSync('/tmp/hades-lab-');
  fs.chmodSync(dir, 0o755); // sshd reads authorized keys as the user
  const procs: Proc[] = [];
  /** One lock per 127.X.Y in use: hosts 1-99 at 127.X.Y.i (proxies .100+i), hosts 100-198 at 127.X.(Y+1).(i-99)… */
  let locks: string[] = [];
  const groups = Math.ceil(n / 99);
  const proxies: DelayProxy[] = [];
  let veth: string | undefined;
  try {
    const clientKey = path.join(dir, 'client_key');
    const names = [...Array.from({ length: n }, (_, i) => `h${i + 1}`), ...(withJump ? ['hj', 'hidden'] : [])];
    fs.mkdirSync(path.join(dir, 'authorized_keys'), { mode: 0o755 });
    await Promise.all([
      keygen(clientKey, 'hades-lab-client'),
      ...names.map((h) => {
        fs.mkdirSync(path.join(dir, h), { mode: 0o755 });
        return keygen(path.join(dir, h, 'ssh_host_ed25519_key'), `hades-lab-${h}`);
      }),
    ]);
    const pub = fs.readFileSync(`${clientKey}.pub`, 'utf8');
    for (const u of [...Object.values(LAB_USERS), ...Object.values(LAB_SHELL_USERS).map((x) => x.name)]) {
      fs.writeFileSync(path.join(dir, 'authorized_keys', u), pub, { mode: 0o644 });
    }

    // Pick a free 127.X.Y base: lock file + bind check (sshd fails fast on a taken address).
    let base = '';
    for (let attempt = 0; ; attempt++) {
      const x = 64 + Math.floor(Math.random() * 128);
      const y = Math.floor(Math.random() * (257 - groups));
      for (let g = 0; g < groups; g++) {
        const l = takeLock(x, y + g, dir);
        if (!l) break;
        locks.push(l);
      }
      if (locks.length < groups) {
        for (const l of locks) releaseLock(l);
        locks = [];
        continue;
      }
      base = `127.${x}.${y}`;
      const started = await Promise.allSettled(
        Array.from({ length: n }, (_, i) => startHost(dir, `h${i + 1}`, labAddr(x, y, i + 1), opts.logLevel ?? 'VERBOSE')),
      );
      for (const s of started) if (s.status === 'fulfilled') procs.push(s.value);
      const failed = started.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
      if (!failed) {
        if (withJump) {
          const j = await startJump(dir, x, y, base);
          procs.push(...j.procs);
          veth = j.veth;
        }
        break;
      }
      await killProcs(procs.splice(0));
      for (const l of locks) releaseLock(l);
      locks = [];
      if (attempt >= 5 || !/address already in use|cannot bind/i.test(String(failed.reason))) throw failed.reason;
    }

    const hostKeyLine = (h: string) =>
      fs
        .readFileSync(path.join(dir, h, 'ssh_host_ed25519_key.pub'), 'utf8')
        .trim()
        .split(/\s+/)
        .slice(0, 2)
        .join(' ');
    const hosts = procs.filter((p) => /^h\d+$/.test(p.host.name)).map((p) => p.host);
    if (opts.proxyDelayMs !== undefined) {
      for (const h of hosts) {
        const proxyAddr = labAddr(0, 0, Number(h.name.slice(1)), h.addr);
        proxies.push(await startDelayProxy({ host: proxyAddr, port: 22 }, { host: h.addr, port: 22 }, opts.proxyDelayMs));
        h.proxyAddr = proxyAddr;
      }
    }
    const jumpHost = procs.find((p) => p.host.name === 'hj')?.host;
    const hiddenProc = procs.find((p) => p.host.name === 'hidden');
    const known: string[] = hosts.map((h) => `${[h.addr, ...(h.proxyAddr ? [h.proxyAddr] : [])].join(',')} ${hostKeyLine(h.name)}`);
    if (jumpHost) known.push(`${jumpHost.addr} ${hostKeyLine('hj')}`);
    let hiddenHost: HiddenHost | undefined;
    if (hiddenProc) {
      hiddenHost = { ...hiddenProc.host, addr: HIDDEN_NAME, realAddr: hiddenProc.host.addr, jump: 'hj' };
      known.push(`${HIDDEN_NAME} ${hostKeyLine('hidden')}`);
    }
    const knownHosts = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHosts, `${known.join('\n')}\n`, { mode: 0o644 });

    const info: LabInfo = {
      dir,
      base,
      hosts,
      ...LAB_USERS,
      bashUser: LAB_SHELL_USERS.bashUser.name,
      fishUser: LAB_SHELL_USERS.fishUser.name,
      tcshUser: LAB_SHELL_USERS.tcshUser.name,
      clientKey,
      knownHosts,
      ...(jumpHost ? { jumpHost } : {}),
      ...(hiddenHost ? { hiddenHost } : {}),
      unusedAddr: `${base}.253`,
      startMs: Math.round(performance.now() - t0),
    };
    let stopped = false;
    return {
      info,
      proxies,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await Promise.all(proxies.map((p) => p.close()));
        await killProcs(procs);
        if (veth) await run('ip', ['link', 'del', veth]).catch(() => undefined); // usually gone with the netns
        for (const l of locks) releaseLock(l);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await Promise.all(proxies.map((p) => p.close()));
    await killProcs(procs);
    if (veth) await run('ip', ['link', 'del', veth]).catch(() => undefined);
    for (const l of locks) releaseLock(l);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function keygen(file: string, comment: string): Promise<void> {
  await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/**
 * Host i's address (1-based): 127.X.(Y+g).j with g = (i-1) div 99, j = (i-1) mod 99 + 1; given
 * the host's own address, its delay proxy's (the same /24, .100+j).
 */
function labAddr(x: number, y: number, i: number, hostAddr?: string): string {
  const j = ((i - 1) % 99) + 1;
  if (hostAddr) return `${hostAddr.split('.').slice(0, 3).join('.')}.${100 + j}`;
  return `127.${x}.${y + Math.floor((i - 1) / 99)}.${j}`;
}

function mountScript(extra: string[] = []): string {
  const mounts = DEPLOY_DIRS.map((d) => `mount -t tmpfs -o mode=0755,size=2g hades-lab ${d}`);
  return ['set -e', ...mounts, ...homeMounts(), ...extra].join('\n');
}

/**
 * Every host process starts as `setpriv --pdeathsig SIGKILL <cmd...>`: the flag survives
 * the execs down to sshd, so if the process that started the lab dies without stopping
 * it (a crashed benchmark, a killed test run), its sshd listeners die with it.
 */
function spawnHost(host: LabHost, cmd: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): Proc {
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', cmd, ...args], { stdio: [stdin, 'ignore', 'pipe'], detached: true });
  const p: Proc = { host, child, stderr: [] };
  child.stderr!.on('data', (c: Buffer) => p.stderr.push(c.toString()));
  child.on('error', (e) => p.stderr.push(String(e)));
  return p;
}

async function waitReady(p: Proc, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  const onExit = () => (exited = true);
  p.child.once('exit', onExit);
  try {
    for (;;) {
      if (fs.existsSync(p.host.pidFile)) {
        const pid = Number(fs.readFileSync(p.host.pidFile, 'utf8').trim());
        if (pid > 0) {
          p.host.pid = pid;
          p.mntNs = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
          return;
        }
      }
      if (exited || p.child.exitCode !== null) {
        await new Promise((r) => setTimeout(r, 20));
        const log = fs.existsSync(p.host.logFile) ? fs.readFileSync(p.host.logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
        throw new Error(`lab: sshd for ${p.host.name} (${p.host.addr}) exited: ${p.stderr.join('').trim()}\n${log}`);
      }
      if (Date.now() > deadline) throw new Error(`lab: sshd for ${p.host.name} not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    p.child.off('exit', onExit);
  }
}

function hostRecord(dir: string, name: string, addr: string): LabHost {
  return {
    name,
    addr,
    port: 22,
    logFile: path.join(dir, name, 'sshd.log'),
    pidFile: path.join(dir, name, 'sshd.pid'),
    pid: 0,
  };
}

async function startHost(dir: string, name: string, addr: string, logLevel: string): Promise<Proc> {
  const host = hostRecord(dir, name, addr);
  const conf = path.join(dir, name, 'sshd_config');
  fs.writeFileSync(conf, sshdConfig(labPaths(dir, name, addr, logLevel)));
  const script = mountScript([`exec ${SSHD} -D -f ${conf} -E ${host.logFile}`]);
  const p = spawnHost(host, 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
  try {
    await waitReady(p);
  } catch (e) {
    await killProcs([p]);
    throw e;
  }
  return p;
}

/**
 * hj runs in its own network namespace, reachable from here over a veth pair
 * (198.18.0.0/15, the benchmarking range). hidden listens on 127.X.Y.254 inside that
 * namespace: nothing outside it can reach that address, and the name "hades-hidden"
 * resolves only in hj's mount namespace (private /etc/hosts).
 */
async function startJump(dir: string, x: number, y: number, base: string): Promise<{ procs: Proc[]; veth: string }> {
  const idx = (x - 64) * 256 + y; // < 32768 subnets of /30 in 198.18.0.0/15
  const netBase = (198 << 24) | (18 << 16);
  const ip = (k: number) => {
    const v = netBase + idx * 4 + k;
    return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  };
  const outer = ip(1);
  const inner = ip(2);
  const hiddenAddr = `${base}.254`;
  const vethOut = `hl${x}x${y}a`;
  const vethIn = `hl${x}x${y}b`;
  const hostsFile = path.join(dir, 'hj', 'etc-hosts');
  fs.writeFileSync(hostsFile, `127.0.0.1 localhost\n${hiddenAddr} ${HIDDEN_NAME}\n`, { mode: 0o644 });

  const jHost = hostRecord(dir, 'hj', inner);
  const jConf = path.join(dir, 'hj', 'sshd_config');
  // DEBUG1 on the jump host only: it logs each direct-tcpip channel (what tests check).
  fs.writeFileSync(jConf, sshdConfig(labPaths(dir, 'hj', inner, 'DEBUG1')));
  const jScript = mountScript([
    `mount --bind ${hostsFile} /etc/hosts`,
    'read go', // wait until the parent has configured the network namespace
    `exec ${SSHD} -D -f ${jConf} -E ${jHost.logFile}`,
  ]);
  const j = spawnHost(jHost, 'unshare', ['--net', '--mount', '--propagation', 'private', 'sh', '-c', jScript], 'pipe');
  const procs: Proc[] = [j];
  try {
    const pid = j.child.pid;
    if (!pid) throw new Error(`lab: cannot start the jump host: ${j.stderr.join('')}`);
    // unshare(1) execs sh in place: once its net namespace differs from ours, it is ready.
    const ours = fs.readlinkSync('/proc/self/ns/net');
    for (let i = 0; fs.readlinkSync(`/proc/${pid}/ns/net`) === ours; i++) {
      if (i > 500 || j.child.exitCode !== null) throw new Error(`lab: jump host namespace not created: ${j.stderr.join('')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await run('ip', ['link', 'add', vethOut, 'type', 'veth', 'peer', 'name', vethIn]);
    await run('ip', ['link', 'set', vethIn, 'netns', String(pid)]);
    await run('ip', ['addr', 'add', `${outer}/30`, 'dev', vethOut]);
    await run('ip', ['link', 'set', vethOut, 'up']);
    await run('nsenter', [
      `--net=/proc/${pid}/ns/net`,
      'sh',
      '-c',
      `set -e; ip link set lo up; ip addr add ${inner}/30 dev ${vethIn}; ip link set ${vethIn} up`,
    ]);
    j.child.stdin!.end('go\n');
    await waitReady(j);

    const hHost = hostRecord(dir, 'hidden', hiddenAddr);
    const hConf = path.join(dir, 'hidden', 'sshd_config');
    fs.writeFileSync(hConf, sshdConfig(labPaths(dir, 'hidden', hiddenAddr, 'VERBOSE')));
    const hScript = mountScript([`exec ${SSHD} -D -f ${hConf} -E ${hHost.logFile}`]);
    const h = spawnHost(hHost, 'nsenter', [
      `--net=/proc/${pid}/ns/net`,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      hScript,
    ]);
    procs.push(h);
    await waitReady(h);
    return { procs, veth: vethOut };
  } catch (e) {
    await killProcs(procs);
    await run('ip', ['link', 'del', vethOut]).catch(() => undefined);
    throw e;
  }
}

export interface ExtraSshd {
  host: LabHost;
  /** `type base64` of its host key. */
  hostKey: string;
  /** A known_hosts line for it (`addr type base64`). */
  knownHostsLine: string;
  /** Kills the listener and every session (its whole mount namespace). */
  stop(): Promise<void>;
}

/**
 * One more sshd for a single test (its own log, host key and config), on a free
 * 127.X.Y.(200..239) address of a running lab, accepting the lab users and client key.
 * For tests that count logins, kill sshd, or need special sshd settings (MaxSessions...).
 */
export async function startSshd(
  lab: LabInfo,
  opts: {
    name?: string;
    extraConfig?: string[];
    logLevel?: string;
    hostKeyType?: 'ed25519' | 'ecdsa' | 'rsa';
    /** More ports it listens on, besides 22, at its address (many endpoints from one sshd). */
    extraPorts?: number[];
  } = {},
): Promise<ExtraSshd> {
  const name = opts.name ?? 'extra';
  const dir = fs.mkdtempSync(path.join(lab.dir, `${name}-`));
  const type = opts.hostKeyType ?? 'ed25519';
  const hostKey = path.join(dir, `ssh_host_${type}_key`);
  await run('/usr/bin/ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `hades-lab-${name}`, '-f', hostKey]);
  const pub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  for (let attempt = 0; ; attempt++) {
    const addr = `${lab.base}.${200 + Math.floor(Math.random() * 40)}`;
    // Test files run in parallel processes: reserve the address first, so two never race for it.
    const reservation = reserveAddr(addr);
    if (!reservation) {
      if (attempt < 200) continue;
      throw new Error(`lab: no free address for an extra sshd in ${lab.base}.200-239`);
    }
    const host: LabHost = { name, addr, port: 22, logFile: path.join(dir, 'sshd.log'), pidFile: path.join(dir, 'sshd.pid'), pid: 0 };
    const conf = path.join(dir, 'sshd_config');
    fs.writeFileSync(
      conf,
      sshdConfig({
        listen: addr,
        hostKey,
        pidFile: host.pidFile,
        authorizedKeysDir: path.join(lab.dir, 'authorized_keys'),
        logLevel: opts.logLevel ?? 'VERBOSE',
        extra: [...(opts.extraConfig ?? []), ...(opts.extraPorts ?? []).map((p) => `ListenAddress ${addr}:${p}`)],
      }),
    );
    fs.rmSync(host.logFile, { force: true });
    const p = spawnHost(host, 'unshare', [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      mountScript([`exec ${SSHD} -D -f ${conf} -E ${host.logFile}`]),
    ]);
    try {
      await waitReady(p);
    } catch (e) {
      await killProcs([p]);
      fs.rmSync(reservation, { force: true });
      if (attempt < 10 && /address already in use|cannot bind/i.test(String(e))) continue;
      throw e;
    }
    let stopped = false;
    return {
      host,
      hostKey: pub,
      knownHostsLine: `${addr} ${pub}`,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await killProcs([p]);
        fs.rmSync(reservation, { force: true });
      },
    };
  }
}

/** Kills each host's sshd and everything started inside its mount namespace (sessions, commands). */
async function killProcs(procs: Proc[]): Promise<void> {
  if (procs.length === 0) return;
  const nss = new Set(procs.map((p) => p.mntNs).filter((x): x is string => !!x));
  const signalAll = (sig: NodeJS.Signals) => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) {
        try {
          process.kill(p.child.pid, sig);
        } catch {
          /* gone */
        }
      }
    }
    if (nss.size) {
      for (const pid of pidsInMountNs(nss)) {
        try {
          process.kill(pid, sig);
        } catch {
          /* gone */
        }
      }
    }
  };
  signalAll('SIGTERM');
  const exits = procs.map((p) =>
    p.child.exitCode !== null || p.child.signalCode !== null ? Promise.resolve() : once(p.child, 'exit').then(() => undefined),
  );
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 1_500).unref());
  if ((await Promise.race([Promise.all(exits), timer])) === 'timeout') signalAll('SIGKILL');
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 1_500).unref())]);
  // Sessions outlive the listener: make sure nothing is left in the namespaces.
  if (nss.size)
    for (const pid of pidsInMountNs(nss))
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
}
