/**
 * exec over a real sshd: exit codes, streaming, stdin, concurrency on one connection, abort.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransportPool } from '../../src/transport/pool.js';
import type { Transport } from '../../src/transport/types.js';
import type { ExtraSshd } from '../lab/lab.js';
import { startSshd } from '../lab/lab.js';
import { acceptedLogins, hostSpec, labInventory, describeLab } from '../lab/helpers.js';

describeLab('ssh exec (real sshd)', (lab) => {
  // Shared with the hosts (same machine; only the deploy dirs are private): the lab user reads it.
  const tmp = fs.mkdtempSync(path.join(lab.dir, 'exec-'));
  fs.chmodSync(tmp, 0o755);

  describe('ssh exec', () => {
    let pool: TransportPool;
    let host: Transport;

    beforeAll(() => {
      pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
      host = pool.get(hostSpec(lab, 'h7'));
    });
    afterAll(() => pool.closeAll());

    it('returns exit codes, stdout and stderr of the command run by the login shell', async () => {
      expect(await host.exec('true')).toEqual({ exitCode: 0, stdout: '', stderr: '' });
      const r = await host.exec('id -un; echo oops >&2; exit 7');
      expect(r).toEqual({ exitCode: 7, stdout: `${lab.user}\n`, stderr: 'oops\n' });
      // The string reaches the shell as-is: quoting, pipes, variables.
      const q = await host.exec(`x='a b'; printf '%s|' "$x" $x | tr a A`);
      expect(q.stdout).toBe('A b|A|b|');
      expect((await host.exec('kill -9 $$')).signal).toBe('SIGKILL');
    });

    it('streams output while the command runs', async () => {
      // The command prints "second" only after it sees a file that this test creates once
      // "first" (stdout) and "e1" (stderr) have arrived: output held until the command's end
      // would never let it finish (it gives up after 30 s and prints nothing more).
      const go = path.join(tmp, `go-${Math.random().toString(36).slice(2)}`);
      const seen: Array<{ s: string; err: boolean }> = [];
      const check = () => {
        const all = (err: boolean) =>
          seen
            .filter((x) => x.err === err)
            .map((x) => x.s)
            .join('');
        if (all(false).includes('first\n') && all(true).includes('e1\n')) fs.writeFileSync(go, '');
      };
      const r = await host.exec(
        `echo first; echo e1 >&2; i=0; while [ ! -e ${go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; [ -e ${go} ] && echo second`,
        {
          onStdout: (c) => {
            seen.push({ s: c.toString(), err: false });
            check();
          },
          onStderr: (c) => {
            seen.push({ s: c.toString(), err: true });
            check();
          },
        },
      );
      expect(r).toEqual({ exitCode: 0, stdout: 'first\nsecond\n', stderr: 'e1\n' });
      const second = seen.findIndex((x) => x.s.includes('second'));
      expect(seen.findIndex((x) => x.s.includes('first'))).toBeLessThan(second);
      expect(seen.findIndex((x) => x.err && x.s === 'e1\n')).toBeLessThan(second);
    });

    it('keeps only the tail when output exceeds captureLimit (callbacks still see everything)', async () => {
      let total = 0;
      const r = await host.exec('seq 1 100000', { captureLimit: 100, onStdout: (c) => (total += c.length) });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.length).toBeLessThanOrEqual(100);
      expect(r.stdout.endsWith('99999\n100000\n')).toBe(true);
      expect(total).toBe(588895); // every byte of `seq 1 100000`
    });

    it('streams a 20 MB stdin with backpressure; the host sees every byte', async () => {
      const size = 20 * 1024 * 1024;
      const hash = createHash('sha256');
      const chunk = randomBytes(64 * 1024);
      let sent = 0;
      const src = new Readable({
        highWaterMark: 64 * 1024,
        read() {
          if (sent >= size) return this.push(null);
          const c = Buffer.from(chunk);
          c.writeUInt32BE(sent, 0); // every chunk different
          sent += c.length;
          hash.update(c);
          this.push(c);
        },
      });
      // The host reads nothing until this test creates the go file, which it does once our
      // production has stopped (unchanged over 5 looks): we must stop producing once the
      // server's SSH window (OpenSSH: 2 MiB) is used up — plus at most a chunk or two in our
      // own streams. (ssh2's channel alone would buffer another 2 MiB: 4.06 MiB were read here
      // before the pacing; without any backpressure all 20 MiB would be read.)
      const go = path.join(tmp, `stdin-go-${Math.random().toString(36).slice(2)}`);
      let sentWhileStalled = -1;
      let last = -1;
      let same = 0;
      const probe = setInterval(() => {
        same = sent > 0 && sent === last ? same + 1 : 0;
        last = sent;
        if (same >= 5 && sentWhileStalled < 0) {
          sentWhileStalled = sent;
          fs.writeFileSync(go, '');
        }
      }, 50);
      const r = await host
        .exec(`i=0; while [ ! -e ${go} ] && [ $i -lt 1000 ]; do sleep 0.05; i=$((i+1)); done; sha256sum | cut -d" " -f1`, { stdin: src })
        .finally(() => clearInterval(probe));
      expect(r.exitCode).toBe(0);
      expect(r.stdout.trim()).toBe(hash.digest('hex'));
      expect(sent).toBe(size);
      expect(sentWhileStalled).toBeGreaterThan(0);
      expect(sentWhileStalled).toBeLessThan(2.5 * 1024 * 1024);
    });

    it('accepts Buffer and string stdin, and empty stdin is EOF', async () => {
      expect((await host.exec('wc -c', { stdin: Buffer.alloc(100_000, 1) })).stdout.trim()).toBe('100000');
      expect((await host.exec('cat', { stdin: 'héllo' })).stdout).toBe('héllo');
      expect((await host.exec('cat; echo end')).stdout).toBe('end\n');
    });

    it('does not hang when the command stops reading a large stdin', async () => {
      const big = Readable.from(
        (function* () {
          for (let i = 0; i < 200; i++) yield Buffer.alloc(64 * 1024, i);
        })(),
      );
      const r = await host.exec('head -c 10 >/dev/null; echo done', { stdin: big });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'done\n' });
    });

    it('aborting kills the remote command promptly', async () => {
      const ac = new AbortController();
      let pid = 0;
      // The command would outlive the test's timeout: only the abort can end it in time.
      const p = host.exec('echo $$; exec sleep 300', {
        signal: ac.signal,
        onStdout: (c) => {
          pid = Number(c.toString().trim());
          ac.abort();
        },
      });
      const r = await p;
      expect(r.exitCode).toBeNull();
      expect(r.signal).toBe('SIGTERM');
      expect(pid).toBeGreaterThan(0);
      // Same machine, so the host's pid is visible here: the sleep is gone.
      expect(() => process.kill(pid, 0)).toThrow();
      // The connection is still fine.
      expect((await host.exec('echo ok')).stdout).toBe('ok\n');
    });

    it('an already-aborted signal never starts the command', async () => {
      await expect(host.exec('touch /tmp/never', { signal: AbortSignal.abort() })).rejects.toThrow(/aborted before start/);
    });
  });

  describe('one connection per host', () => {
    let sshd: ExtraSshd;
    let pool: TransportPool;
    beforeAll(async () => {
      sshd = await startSshd(lab, { name: 'conc', extraConfig: ['MaxSessions 10'] });
      const fs = await import('node:fs');
      const kh = `${lab.dir}/kh-conc-${process.pid}`;
      fs.writeFileSync(kh, `${sshd.knownHostsLine}\n`);
      pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh] });
    });
    afterAll(async () => {
      await pool?.closeAll();
      await sshd?.stop();
    });

    it('runs 50 concurrent execs multiplexed over exactly one SSH connection', async () => {
      const spec = { ...hostSpec(lab, 'h7'), name: 'conc', addr: sshd.host.addr };
      const t = pool.get(spec);
      expect(pool.get({ ...spec })).toBe(t); // same host → same transport
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => t.exec(`sleep 0.1; echo ${i}; echo e${i} >&2`, { stdin: `in${i}` })),
      );
      for (const [i, r] of results.entries()) expect(r).toEqual({ exitCode: 0, stdout: `${i}\n`, stderr: `e${i}\n` });
      expect(pool.stats.connectionsOpened).toBe(1);
      expect(acceptedLogins(sshd.host)).toBe(1);
    });

    it('a second host name for the same user@addr:port shares the connection; another user does not', async () => {
      const p2 = new TransportPool({ hosts: new Map(), knownHostsFiles: [`${lab.dir}/kh-conc-${process.pid}`] });
      try {
        const before = { lab: acceptedLogins(sshd.host, lab.user), sudo: acceptedLogins(sshd.host, lab.sudoUser) };
        const a = p2.get({ ...hostSpec(lab, 'h7'), name: 'alias-a', addr: sshd.host.addr });
        const b = p2.get({ ...hostSpec(lab, 'h7'), name: 'alias-b', addr: sshd.host.addr });
        const other = p2.get({ ...hostSpec(lab, 'h7'), name: 'as-sudo-user', addr: sshd.host.addr, user: lab.sudoUser });
        expect(a).not.toBe(b);
        expect(a.name).toBe('alias-a');
        await Promise.all([a.exec('true'), b.exec('true'), other.exec('true'), a.exec('true')]);
        expect(acceptedLogins(sshd.host, lab.user) - before.lab).toBe(1);
        expect(acceptedLogins(sshd.host, lab.sudoUser) - before.sudo).toBe(1);
        expect(p2.stats.connectionsOpened).toBe(2);
      } finally {
        await p2.closeAll();
      }
    });
  });
});
