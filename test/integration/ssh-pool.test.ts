/**
 * TransportPool against real sshds: connectAll, local hosts, handshake throttling,
 * sshd MaxSessions under load, keepalive, close.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { LocalTransport } from '../../src/transport/local.js';
import { TransportPool } from '../../src/transport/pool.js';
import { SshTransport } from '../../src/transport/ssh/transport.js';
import { TransportError } from '../../src/transport/types.js';
import { TRANSPORT_HOSTS, acceptedLogins, hostSpec, labInventory, logText, describeLab } from '../lab/helpers.js';
import { type DelayProxy, type ExtraSshd, startLabProxy, startSshd } from '../lab/lab.js';

describeLab('ssh pool (real sshd)', (lab) => {
  const tmp = fs.mkdtempSync(path.join(lab.dir, 'pool-'));
  const PROXIES = 6;

  describe('TransportPool', () => {
    it('connectAll connects concurrently and returns only the failures, by host name', async () => {
      const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
      const local: HostSpec = { name: 'localhost', addr: 'localhost', local: true, order: 9, pos: { file: 'x', line: 1, col: 1 } };
      const hosts = [
        ...TRANSPORT_HOSTS.map((n) => hostSpec(lab, n)),
        { ...hostSpec(lab, 'h7'), name: 'down', addr: lab.unusedAddr },
        local,
      ];
      const errors = await pool.connectAll(hosts);
      expect([...errors.keys()]).toEqual(['down']);
      expect(errors.get('down')).toBeInstanceOf(TransportError);
      expect(pool.stats.connectionsOpened).toBe(TRANSPORT_HOSTS.length);
      // Connected means connected: no new logins for later execs.
      expect(pool.get(hostSpec(lab, 'h8'))).toBeInstanceOf(SshTransport);
      const lt = pool.get(local);
      expect(lt).toBeInstanceOf(LocalTransport);
      expect(pool.get(local)).toBe(lt);
      expect((await lt.exec('echo local')).stdout).toBe('local\n');
      await Promise.all(TRANSPORT_HOSTS.map((n) => pool.get(hostSpec(lab, n)).exec('true')));
      expect(pool.stats.connectionsOpened).toBe(TRANSPORT_HOSTS.length);
      await pool.closeAll();
    });

    it('after closeAll a transport opens a fresh connection on demand', async () => {
      const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
      const t = pool.get(hostSpec(lab, 'h7'));
      await t.exec('true');
      await pool.closeAll();
      expect((await t.exec('echo again')).stdout).toBe('again\n');
      expect(pool.stats.connectionsOpened).toBe(2);
      await pool.closeAll();
    });

    it('commands that began before closeAll fail with it — the running one and one still queued for a channel — and nothing reconnects for them', async () => {
      const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts], maxChannelsPerConnection: 1 });
      const t = pool.get(hostSpec(lab, 'h7'));
      await t.exec('true');
      const marker = path.join(tmp, `queued-${Date.now()}`);
      let began!: () => void;
      const started = new Promise<void>((r) => (began = r));
      const running = t.exec('echo began; exec sleep 1', { onStdout: () => began() });
      const queued = t.exec(`touch ${marker}`); // waits: one channel per connection
      running.catch(() => undefined);
      queued.catch(() => undefined);
      await started; // the running command is running on the host
      await pool.closeAll();
      await expect(running).rejects.toThrow(/closed by Hades/);
      await expect(queued).rejects.toThrow(/closed by Hades before the command started/);
      await new Promise((r) => setTimeout(r, 300));
      expect(pool.stats.connectionsOpened).toBe(1);
      expect(fs.existsSync(marker)).toBe(false); // the queued command never ran anywhere
      // a command that begins after the close still opens a fresh connection
      expect((await t.exec('echo later')).stdout).toBe('later\n');
      expect(pool.stats.connectionsOpened).toBe(2);
      await pool.closeAll();
    });

    describe('handshake throttling', () => {
      const proxies: DelayProxy[] = [];
      let sshd: ExtraSshd;
      let kh: string;
      beforeAll(async () => {
        // One sshd of its own behind PROXIES delay proxies (15 ms each way, so a handshake
        // spans several round trips): each proxy address is its own pool key, and the sshd's
        // single log orders every connection's "Connection from" and "Accepted publickey".
        sshd = await startSshd(lab, { name: 'handshakes' });
        for (let i = 0; i < PROXIES; i++) proxies.push(await startLabProxy(lab, { host: sshd.host.addr, port: 22 }, 15));
        kh = path.join(tmp, 'kh-proxies');
        fs.writeFileSync(kh, `${proxies.map((p) => `${p.listen.host} ${sshd.hostKey}`).join('\n')}\n`);
      });
      afterAll(async () => {
        await Promise.all(proxies.map((p) => p.close()));
        await sshd?.stop();
      });

      /**
       * Connects to every proxy with the given bound; returns the most connections the sshd
       * had between accepting them and accepting their key (its log, in order), and how many.
       */
      async function connectAll(max: number): Promise<{ peak: number; connections: number }> {
        const from = logText(sshd.host).length;
        const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], maxConcurrentHandshakes: max });
        const specs = proxies.map((p, i) => ({ ...hostSpec(lab, 'h7'), name: `p${i}`, addr: p.listen.host }));
        const errors = await pool.connectAll(specs);
        expect(errors.size).toBe(0);
        await pool.closeAll();
        const inHandshake = new Set<string>();
        let peak = 0;
        let connections = 0;
        for (const line of logText(sshd.host).slice(from).split('\n')) {
          const open = /^Connection from \S+ port (\d+) on /.exec(line);
          const done = /^Accepted publickey for \S+ from \S+ port (\d+) /.exec(line);
          if (open) {
            inHandshake.add(open[1]!);
            connections++;
            peak = Math.max(peak, inHandshake.size);
          } else if (done) {
            expect(inHandshake.delete(done[1]!), line).toBe(true);
          }
        }
        expect(inHandshake.size).toBe(0); // every connection logged in
        return { peak, connections };
      }

      it('maxConcurrentHandshakes bounds how many connect at once (counted by the sshd)', async () => {
        expect(await connectAll(1)).toEqual({ peak: 1, connections: PROXIES });
        expect(await connectAll(2)).toEqual({ peak: 2, connections: PROXIES });
        // Unbounded enough: the handshakes really overlap.
        const parallel = await connectAll(32);
        expect(parallel.connections).toBe(PROXIES);
        expect(parallel.peak).toBeGreaterThanOrEqual(3);
      });
    });

    describe('under sshd MaxSessions', () => {
      let sshd: ExtraSshd;
      let kh: string;
      beforeAll(async () => {
        sshd = await startSshd(lab, { name: 'maxs', extraConfig: ['MaxSessions 2'] });
        kh = path.join(tmp, 'kh-maxs');
        fs.writeFileSync(kh, `${sshd.knownHostsLine}\n`);
      });
      afterAll(() => sshd?.stop());

      it('session refusals queue instead of failing (nothing re-runs: refused commands never started)', async () => {
        const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], maxChannelsPerConnection: 10 });
        const t = pool.get({ ...hostSpec(lab, 'h7'), name: 'maxs', addr: sshd.host.addr });
        const marker = path.join(tmp, 'maxs-runs');
        fs.chmodSync(tmp, 0o755);
        fs.writeFileSync(marker, '', { mode: 0o666 });
        fs.chmodSync(marker, 0o666);
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => t.exec(`echo ${i} >> ${marker}; sleep 0.05; echo ${i}`)));
        for (const [i, r] of results.entries()) expect(r).toEqual({ exitCode: 0, stdout: `${i}\n`, stderr: '' });
        // Each command ran exactly once (the lab dir is shared with the host: same machine, no private /tmp).
        const runs = fs
          .readFileSync(marker, 'utf8')
          .trim()
          .split('\n')
          .map(Number)
          .sort((a, b) => a - b);
        expect(runs).toEqual(Array.from({ length: 40 }, (_, i) => i));
        expect(logText(sshd.host)).toMatch(/no more sessions/);
        expect(acceptedLogins(sshd.host)).toBe(1);
        await pool.closeAll();
      });
    });

    describe('session channels opened ahead (one round trip per command)', () => {
      it('every command on a warm connection runs on the channel opened ahead of it; stdin and output intact', async () => {
        const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
        const t = pool.get(hostSpec(lab, 'h7')) as SshTransport;
        await pool.connectAll([hostSpec(lab, 'h7')]);
        for (let i = 0; i < 5; i++) {
          expect(await t.exec(`read x; echo "$x-${i}"`, { stdin: `v${i}\n` })).toEqual({ exitCode: 0, stdout: `v${i}-${i}\n`, stderr: '' });
          expect(await t.exec(`echo ${i}; echo e${i} >&2; exit ${i}`)).toEqual({ exitCode: i, stdout: `${i}\n`, stderr: `e${i}\n` });
        }
        // 10 commands, all on a spare; one more spare is open for the next command.
        expect(t.connection.stats).toEqual({ sessionsOpened: 11, spareUsed: 10 });
        await pool.closeAll();
      });

      describe('sshd allowing one session per connection (MaxSessions 1)', () => {
        let sshd: ExtraSshd;
        let kh: string;
        beforeAll(async () => {
          sshd = await startSshd(lab, { name: 'max1', extraConfig: ['MaxSessions 1'] });
          kh = path.join(tmp, 'kh-max1');
          fs.writeFileSync(kh, `${sshd.knownHostsLine}\n`);
        });
        afterAll(() => sshd?.stop());

        it('a refused spare is not asked for again; sequential and concurrent commands all run once', async () => {
          const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh] });
          const t = pool.get({ ...hostSpec(lab, 'h7'), name: 'max1', addr: sshd.host.addr }) as SshTransport;
          for (let i = 0; i < 4; i++) expect((await t.exec(`echo ${i}`)).stdout).toBe(`${i}\n`);
          const results = await Promise.all(Array.from({ length: 6 }, (_, i) => t.exec(`echo c${i}`)));
          for (const [i, r] of results.entries()) expect(r.stdout).toBe(`c${i}\n`);
          // The spare opened at connect served the first command; the next one was refused.
          expect(t.connection.stats.spareUsed).toBe(1);
          expect(acceptedLogins(sshd.host)).toBe(1);
          await pool.closeAll();
        });
      });

      it('a spare channel that was closed meanwhile is replaced, not used', async () => {
        // OpenSSH 9.2 does not time out sessions that never got a request (ChannelTimeout
        // leaves them alone), so close the spare the way a server would: the channel ends.
        const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
        const t = pool.get(hostSpec(lab, 'h7')) as SshTransport;
        expect((await t.exec('echo one')).stdout).toBe('one\n');
        const spare = await (t.connection as unknown as { spare: Promise<import('ssh2').ClientChannel> }).spare;
        await new Promise((r) => {
          spare.once('close', r);
          spare.resume(); // 'close' comes after the readable side ended
          spare.close();
        });
        expect((await t.exec('echo two')).stdout).toBe('two\n');
        expect(t.connection.stats).toEqual({ sessionsOpened: 4, spareUsed: 1 });
        await pool.closeAll();
      });
    });

    it('a host that stops answering is declared dead by keepalive and its exec rejects', async () => {
      const sshd = await startSshd(lab, { name: 'ka' });
      const kh = path.join(tmp, 'kh-ka');
      fs.writeFileSync(kh, `${sshd.knownHostsLine}\n`);
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], keepaliveIntervalMs: 200 });
      const t = pool.get({ ...hostSpec(lab, 'h7'), name: 'ka', addr: sshd.host.addr });
      let ppid = 0;
      const got = new Promise<void>((resolve) => {
        void t
          .exec('echo $PPID; exec sleep 300', {
            onStdout: (c) => {
              ppid = Number(c.toString().trim());
              resolve();
            },
          })
          .catch(() => undefined);
      });
      // Longer than the test's timeout: only keepalive can end this exec in time.
      const running = t.exec('sleep 300');
      await got;
      // Freeze this connection's session process: TCP stays up, nothing answers (like a hung host).
      process.kill(ppid, 'SIGSTOP');
      try {
        await expect(running).rejects.toThrow(/^ka: connection to .* dropped \(no keepalive answer\)/);
      } finally {
        process.kill(ppid, 'SIGCONT');
        await pool.closeAll();
        await sshd.stop();
      }
    });
  });
});
