/**
 * One lab per address base 127.X.Y: a lock file per base under /tmp/hades-lab-locks, and the
 * clean-up of labs whose owner died (their sshds found by pid file and mount namespace).
 * Imports only node builtins (bench/lib/lab.mjs transpiles test/lab/*.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const LOCK_DIR = '/tmp/hades-lab-locks';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock file per base; a stale lock (dead owner) is cleaned up, including its leftover sshds. */
export function takeLock(x: number, y: number, dir: string): string | undefined {
  fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
  const file = path.join(LOCK_DIR, `127.${x}.${y}.lock`);
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, JSON.stringify({ pid: process.pid, dir }), { flag: 'wx' });
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner: { pid: number; dir: string } | undefined;
      try {
        owner = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        /* half-written or gone */
      }
      if (!owner || pidAlive(owner.pid)) return undefined;
      cleanupStale(owner.dir);
      fs.rmSync(file, { force: true });
    }
  }
  return undefined;
}

/**
 * Labs whose owner died (their sshds died with it, see spawnHost) leave a lock and a dir:
 * remove those. A dead owner's lab with processes still running is left alone here.
 */
export function sweepStaleLabs(): void {
  let locks: string[];
  try {
    locks = fs.readdirSync(LOCK_DIR).filter((f) => f.endsWith('.lock'));
  } catch {
    return;
  }
  const cmdlines = (() => {
    const out: string[] = [];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        out.push(fs.readFileSync(`/proc/${d}/cmdline`, 'utf8'));
      } catch {
        /* gone */
      }
    }
    return out;
  })();
  for (const l of locks) {
    const file = path.join(LOCK_DIR, l);
    try {
      const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; dir: string };
      if (pidAlive(owner.pid) || !owner.dir.startsWith('/tmp/hades-lab-')) continue;
      if (cmdlines.some((c) => c.includes(`${owner.dir}/`))) continue;
      fs.rmSync(owner.dir, { recursive: true, force: true });
      fs.rmSync(file, { force: true });
    } catch {
      /* being written or removed by someone else */
    }
  }
}

export function releaseLock(file: string): void {
  fs.rmSync(file, { force: true });
}

/** A previous lab's process died without teardown: kill its sshds (found by pid files) and remove its dir. */
function cleanupStale(dir: string): void {
  if (!dir.startsWith('/tmp/hades-lab-') || !fs.existsSync(dir)) return;
  for (const sub of fs.readdirSync(dir)) {
    const pidFile = path.join(dir, sub, 'sshd.pid');
    try {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(dir)) {
        const ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
        for (const p of pidsInMountNs(new Set([ns]))) process.kill(p, 'SIGKILL');
      }
    } catch {
      /* not running */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Every pid whose mount namespace is one of `nss`. */
export function pidsInMountNs(nss: Set<string>): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (nss.has(fs.readlinkSync(`/proc/${d}/ns/mnt`))) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** An exclusive claim on one extra-sshd address (a file naming the owner pid); a dead owner's claim is taken over. */
export function reserveAddr(addr: string): string | undefined {
  fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
  const file = path.join(LOCK_DIR, `${addr}.addr`);
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(fs.readFileSync(file, 'utf8'));
      if (!owner || pidAlive(owner)) return undefined; // alive, or still being written
      fs.rmSync(file, { force: true });
    }
  }
  return undefined;
}
