/**
 * Failure modes against real sockets and a real sshd: every error names the host and
 * says what went wrong, fast, and nothing hangs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { TransportPool } from '../../src/transport/pool.js';
import { TransportError } from '../../src/transport/types.js';
import { acceptedLogins, hostSpec, labHost, describeLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';

describeLab('ssh failures (real sshd)', (lab) => {
  const tmp = fs.mkdtempSync(path.join(lab.dir, 'failures-'));

  function pool(extra: Partial<ConstructorParameters<typeof TransportPool>[0]> = {}): TransportPool {
    return new TransportPool({ hosts: new Map(), knownHostsFiles: [lab.knownHosts], env: {}, ...extra });
  }

  async function failure(p: TransportPool, spec: HostSpec): Promise<{ err: TransportError; ms: number }> {
    const t0 = Date.now();
    try {
      await p.get(spec).connect();
    } catch (e) {
      expect(e).toBeInstanceOf(TransportError);
      return { err: e as TransportError, ms: Date.now() - t0 };
    } finally {
      await p.closeAll();
    }
    throw new Error('connect unexpectedly succeeded');
  }

  describe('connection failures', () => {
    it('nothing listening: a clear "refused" error, fast', async () => {
      // A connect timeout far beyond the test's own: a refusal that waited for it (or retried
      // until it) would time the test out.
      const { err } = await failure(pool(), { ...hostSpec(lab, 'h7'), name: 'web9', addr: lab.unusedAddr, connectTimeoutMs: 600_000 });
      expect(err.host).toBe('web9');
      expect(err.message).toMatch(new RegExp(`^web9: connection refused by ${lab.unusedAddr.replace(/\./g, '\\.')}:22`));
      // Another inventory name for the same user@addr:port shares the connection, but its
      // errors carry its own name.
      const p = pool();
      const first = p.get({ ...hostSpec(lab, 'h7'), name: 'web9', addr: lab.unusedAddr });
      const second = p.get({ ...hostSpec(lab, 'h7'), name: 'web9-alias', addr: lab.unusedAddr });
      await expect(first.connect()).rejects.toThrow(/^web9: connection refused/);
      const e = (await second.connect().then(
        () => null,
        (x: unknown) => x,
      )) as TransportError;
      expect(e).toBeInstanceOf(TransportError);
      expect(e.host).toBe('web9-alias');
      expect(e.message).toMatch(/^web9-alias: connection refused/);
      await p.closeAll();
    });

    it('a host name that does not resolve: DNS error naming the name', async () => {
      const { err } = await failure(pool(), { ...hostSpec(lab, 'h7'), name: 'ghost', addr: 'no-such-host.invalid' });
      expect(err.message).toMatch(/^ghost: cannot resolve host name "no-such-host\.invalid"/);
    });

    it('a TCP server that never speaks SSH: timeout bounded by connectTimeoutMs', async () => {
      const sockets: net.Socket[] = [];
      const silent = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, `${lab.base}.198`, r));
      const port = (silent.address() as net.AddressInfo).port;
      try {
        // Two hosts on the same silent server, 1 s and 3 s: each gives up at its own timeout
        // (not before it), so the 1 s one is refused first — order, not a wall-clock bound.
        const settled: string[] = [];
        const mute = (name: string, connectTimeoutMs: number) =>
          failure(pool(), { ...hostSpec(lab, 'h7'), name, addr: `${lab.base}.198`, port, connectTimeoutMs }).then((f) => {
            settled.push(name);
            return f;
          });
        const [short, long] = await Promise.all([mute('mute', 1_000), mute('mute3', 3_000)]);
        expect(short.err.message).toMatch(/^mute: no answer within 1s: connected to .* but got no SSH answer/);
        expect(long.err.message).toMatch(/^mute3: no answer within 3s: connected to .* but got no SSH answer/);
        expect(short.ms).toBeGreaterThanOrEqual(950);
        expect(long.ms).toBeGreaterThanOrEqual(2_950);
        expect(settled).toEqual(['mute', 'mute3']);
        // The global option applies when the host sets none.
        const g = await failure(pool({ connectTimeoutMs: 500 }), { ...hostSpec(lab, 'h7'), name: 'mute', addr: `${lab.base}.198`, port });
        expect(g.err.message).toMatch(/no answer within 0\.5s/);
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });

    it('a server that hangs up at once: "closed the connection before the SSH handshake"', async () => {
      const rude = net.createServer((s) => s.destroy());
      await new Promise<void>((r) => rude.listen(0, `${lab.base}.198`, r));
      const port = (rude.address() as net.AddressInfo).port;
      try {
        const { err } = await failure(pool(), { ...hostSpec(lab, 'h7'), name: 'rude', addr: `${lab.base}.198`, port });
        expect(err.message).toMatch(/^rude: .*closed the connection/);
      } finally {
        rude.close();
      }
    });

    it('wrong key: auth error naming the user and every method tried', async () => {
      const wrong = path.join(tmp, 'wrong_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrong]);
      const agent = startAgent();
      try {
        const { err } = await failure(pool({ env: { SSH_AUTH_SOCK: agent.sock } }), { ...hostSpec(lab, 'h7'), identityFile: wrong });
        expect(err.message).toContain(`h7: authentication failed for user "${lab.user}" at ${labHost(lab, 'h7').addr}:22`);
        expect(err.message).toContain(`tried publickey (key ${wrong}), agent (SSH_AUTH_SOCK)`);
        expect(err.message).toMatch(/hint: check the user, identity_file/);
      } finally {
        agent.stop();
      }
    });

    it('an agent holding the key is enough (no identity_file)', async () => {
      const agent = startAgent();
      try {
        execFileSync('ssh-add', ['-q', lab.clientKey], { env: { SSH_AUTH_SOCK: agent.sock } });
        const p = pool({ env: { SSH_AUTH_SOCK: agent.sock } });
        const { identityFile: _drop, ...spec } = hostSpec(lab, 'h7');
        expect((await p.get(spec).exec('id -un')).stdout).toBe(`${lab.user}\n`);
        await p.closeAll();
      } finally {
        agent.stop();
      }
    });

    it('no identity at all: says what it looked for', async () => {
      const { identityFile: _drop, ...spec } = hostSpec(lab, 'h7');
      const { err } = await failure(pool({ env: { HOME: tmp } }), spec);
      // HOME of this process (root) has no ~/.ssh/id_* here; SSH_AUTH_SOCK is not in env.
      expect(err.message).toMatch(/no credentials to offer .*SSH_AUTH_SOCK is not set/);
    });

    it('encrypted identity_file: passphrase from passphrase_env; clear errors when missing or wrong', async () => {
      const enc = path.join(tmp, 'enc_key');
      fs.copyFileSync(lab.clientKey, enc);
      fs.chmodSync(enc, 0o600);
      execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 's3cret pass', '-f', enc]);
      const spec = { ...hostSpec(lab, 'h7'), identityFile: enc, passphraseEnv: 'HADES_TEST_PASS' };
      const missing = await failure(pool(), spec);
      expect(missing.err.message).toBe(
        `h7: identity_file ${enc} is encrypted and the environment variable HADES_TEST_PASS (passphrase_env) is not set`,
      );
      const bad = await failure(pool({ env: { HADES_TEST_PASS: 'nope' } }), spec);
      expect(bad.err.message).toMatch(/cannot decrypt identity_file .* with the passphrase from HADES_TEST_PASS/);
      const p = pool({ env: { HADES_TEST_PASS: 's3cret pass' } });
      expect((await p.get(spec).exec('echo in')).stdout).toBe('in\n');
      await p.closeAll();
      const none = await failure(pool(), { ...spec, passphraseEnv: undefined });
      expect(none.err.message).toMatch(/is encrypted; set passphrase_env/);
    });

    it('a missing identity_file is an error, not a silent fallback', async () => {
      const { err } = await failure(pool(), { ...hostSpec(lab, 'h7'), identityFile: path.join(tmp, 'nope') });
      expect(err.message).toBe(`h7: identity_file ${path.join(tmp, 'nope')} does not exist`);
    });

    it('a failed connect stays failed (no hidden retry) until close()', async () => {
      const p = pool();
      const t = p.get({ ...hostSpec(lab, 'h7'), name: 'web9', addr: lab.unusedAddr });
      const e1 = await t.connect().catch((e: Error) => e);
      const e2 = await t.exec('true').catch((e: Error) => e);
      expect(e2).toBe(e1);
      await p.closeAll();
    });
  });

  describe('connection dropped mid-command', () => {
    let sshd: ExtraSshd;
    let kh: string;
    beforeAll(async () => {
      sshd = await startSshd(lab, { name: 'drop' });
      kh = path.join(tmp, 'kh-drop');
      fs.writeFileSync(kh, `${sshd.knownHostsLine}\n`);
    });
    afterAll(() => sshd?.stop());

    it('killing the session process rejects every running exec within seconds', async () => {
      const p = pool({ knownHostsFiles: [kh] });
      const t = p.get({ ...hostSpec(lab, 'h7'), name: 'drop', addr: sshd.host.addr });
      // Each command prints its session process ($PPID) and its own pid, then becomes a
      // sleep that outlives the test's timeout: only the dropped connection can end the execs.
      const pids: Array<{ ppid: number; pid: number }> = [];
      let started!: () => void;
      const allStarted = new Promise<void>((r) => (started = r));
      const cmd = (secs: number) =>
        t.exec(`echo $PPID $$; exec sleep ${secs}`, {
          onStdout: (c) => {
            const [ppid, pid] = c.toString().trim().split(' ').map(Number);
            pids.push({ ppid: ppid!, pid: pid! });
            if (pids.length === 2) started();
          },
        });
      const running = cmd(300);
      const other = cmd(299);
      await allStarted;
      const ppid = pids[0]!.ppid;
      expect(pids[1]!.ppid).toBe(ppid); // one connection, one session process
      // $PPID of the command is this connection's "sshd: user@notty" process.
      expect(fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8')).toMatch(/^sshd: hades-lab@notty/);
      process.kill(ppid, 'SIGKILL');
      const [a, b] = await Promise.allSettled([running, other]);
      // Both rejected while their commands still ran on the host (same machine: pids visible).
      try {
        for (const { pid } of pids) expect(() => process.kill(pid, 0)).not.toThrow();
      } finally {
        for (const { pid } of pids)
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
      }
      for (const r of [a, b]) {
        expect(r.status).toBe('rejected');
        const e = (r as PromiseRejectedResult).reason as Error;
        expect(e).toBeInstanceOf(TransportError);
        expect(e.message).toMatch(
          /^drop: connection to .* dropped \(.*\) while the command was running; its outcome on the host is unknown/,
        );
      }
      // Not silently reconnected.
      await expect(t.exec('true')).rejects.toThrow(/was lost earlier .*not reconnecting/);
      expect(acceptedLogins(sshd.host)).toBe(1);
      await p.closeAll();
    });

    it('stopping the whole sshd mid-command also rejects promptly', async () => {
      const own = await startSshd(lab, { name: 'drop2' });
      const kh2 = path.join(tmp, 'kh-drop2');
      fs.writeFileSync(kh2, `${own.knownHostsLine}\n`);
      const p = pool({ knownHostsFiles: [kh2] });
      const t = p.get({ ...hostSpec(lab, 'h7'), name: 'drop2', addr: own.host.addr });
      await t.connect();
      // Outlives the test's timeout: only the dropped connection can end this exec in time.
      let began!: () => void;
      const started = new Promise<void>((r) => (began = r));
      const running = t.exec('echo started; exec sleep 300', { onStdout: () => began() });
      running.catch(() => undefined);
      await started;
      await own.stop();
      await expect(running).rejects.toThrow(/drop2: connection to .* dropped/);
      await p.closeAll();
    });
  });

  function startAgent(): { sock: string; stop(): void } {
    const sock = path.join(tmp, `agent-${Math.random().toString(36).slice(2)}.sock`);
    const out = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' });
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]);
    return {
      sock,
      stop: () => {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      },
    };
  }
});
