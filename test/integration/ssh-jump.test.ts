/**
 * Jump hosts. The lab's hidden host listens inside the jump host's network namespace
 * and its name resolves only in the jump host's /etc/hosts: nothing but hj can reach it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { TransportPool } from '../../src/transport/pool.js';
import { TransportError } from '../../src/transport/types.js';
import { acceptedLogins, hostSpec, labInventory, logText, describeLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';

describeLab('ssh jump hosts (real sshd)', (lab) => {
  const hidden = lab.hiddenHost!;
  const jump = lab.jumpHost!;
  const tmp = fs.mkdtempSync(path.join(lab.dir, 'jump-'));

  function directTcpip(log: string, target: string): number {
    return (log.match(new RegExp(`server_request_direct_tcpip: originator .* target ${target.replace(/\./g, '\\.')} port 22`, 'g')) ?? [])
      .length;
  }

  describe('jump hosts', () => {
    it('the hidden host is not reachable directly (name unresolvable, address not routed here)', async () => {
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [lab.knownHosts] });
      const { jump: _j, ...direct } = hostSpec(lab, 'hidden');
      await expect(pool.get(direct).connect()).rejects.toThrow(/^hidden: cannot resolve host name "hades-hidden"/);
      await expect(pool.get({ ...direct, name: 'hidden-ip', addr: hidden.realAddr }).connect()).rejects.toThrow(
        /^hidden-ip: connection refused by /,
      );
      await pool.closeAll();
    });

    it("reaches it through `jump: hj`, over the jump host's pooled connection", async () => {
      const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
      const beforeJump = directTcpip(logText(jump), hidden.addr);
      const beforeHidden = acceptedLogins(hidden);
      const t = pool.get(hostSpec(lab, 'hidden'));
      const hj = pool.get(hostSpec(lab, 'hj'));
      const [r1, r2, r3] = await Promise.all([t.exec('echo hidden; id -un'), t.exec('true'), hj.exec('echo jump')]);
      expect(r1).toEqual({ exitCode: 0, stdout: `hidden\n${lab.user}\n`, stderr: '' });
      expect(r2.exitCode).toBe(0);
      expect(r3.stdout).toBe('jump\n');
      // The jump host opened exactly one direct-tcpip channel to the hidden host: the
      // target's single connection went through it. hj itself was connected once (shared).
      expect(directTcpip(logText(jump), hidden.addr) - beforeJump).toBe(1);
      expect(acceptedLogins(hidden) - beforeHidden).toBe(1);
      expect(pool.stats.connectionsOpened).toBe(2);
      await pool.closeAll();
    });

    it('the tunnel is made from the jump host: a jump that cannot reach the target says so', async () => {
      const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
      const e = await pool
        .get({ ...hostSpec(lab, 'hidden'), jump: 'h7' })
        .connect()
        .catch((x: Error) => x);
      expect(e).toBeInstanceOf(TransportError);
      expect((e as Error).message).toMatch(
        /^hidden: cannot reach hades-hidden:22 through jump host h7: could not open a tunnel to hades-hidden:22 \(h7 says: Name or service not known\)$/,
      );
      await pool.closeAll();
    });

    it('a jump host that is down fails the target with an error naming both', async () => {
      const inv = labInventory(lab);
      inv.set('down', { ...hostSpec(lab, 'h7'), name: 'down', addr: lab.unusedAddr });
      const pool = new TransportPool({ hosts: inv, knownHostsFiles: [lab.knownHosts] });
      await expect(pool.get({ ...hostSpec(lab, 'hidden'), jump: 'down' }).connect()).rejects.toThrow(
        /^hidden: cannot reach hades-hidden:22 through jump host down: connection refused by /,
      );
      await pool.closeAll();
    });

    it('jump loops are reported, not followed', () => {
      const inv = labInventory(lab);
      inv.set('a', { ...hostSpec(lab, 'h7'), name: 'a', jump: 'b' });
      inv.set('b', { ...hostSpec(lab, 'h8'), name: 'b', jump: 'a' });
      const pool = new TransportPool({ hosts: inv, knownHostsFiles: [lab.knownHosts] });
      expect(() => pool.get(inv.get('a')!)).toThrow(/jump hosts form a loop: a -> b -> a/);
    });

    describe('a jump-only bastion (sshd MaxSessions 0: forwarding, no sessions)', () => {
      let bastion: ExtraSshd;
      let kh: string;
      beforeAll(async () => {
        bastion = await startSshd(lab, { name: 'fwdonly', extraConfig: ['MaxSessions 0'] });
        kh = path.join(tmp, 'kh-fwdonly');
        fs.writeFileSync(kh, `${fs.readFileSync(lab.knownHosts, 'utf8') + bastion.knownHostsLine}\n`);
      });
      afterAll(() => bastion?.stop());

      it('still tunnels: the session channel Hades opens ahead on each connection is refused quietly', async () => {
        const inv = labInventory(lab);
        inv.set('fwdonly', { ...hostSpec(lab, 'h7'), name: 'fwdonly', addr: bastion.host.addr });
        const pool = new TransportPool({ hosts: inv, knownHostsFiles: [kh], connectTimeoutMs: 1_000 });
        const target = { ...hostSpec(lab, 'h8'), jump: 'fwdonly' };
        for (let i = 0; i < 3; i++) expect((await pool.get(target).exec(`echo via-bastion-${i}`)).stdout).toBe(`via-bastion-${i}\n`);
        // The bastion itself runs nothing: a command there fails naming the refusal (after the
        // connect timeout: a refusal can also mean sessions still closing), never hangs.
        await expect(pool.get(inv.get('fwdonly')!).exec('true')).rejects.toThrow(/^fwdonly: .* keeps refusing to open a session channel/);
        await pool.closeAll();
      });
    });

    describe('chains', () => {
      let bastion: ExtraSshd;
      let kh: string;
      beforeAll(async () => {
        bastion = await startSshd(lab, { name: 'bastion', logLevel: 'DEBUG1' });
        kh = path.join(tmp, 'kh-chain');
        fs.writeFileSync(kh, `${fs.readFileSync(lab.knownHosts, 'utf8') + bastion.knownHostsLine}\n`);
      });
      afterAll(() => bastion?.stop());

      it('hidden → hj → bastion: a jump of a jump, by recursion', async () => {
        const inv = labInventory(lab);
        inv.set('bastion', { ...hostSpec(lab, 'h7'), name: 'bastion', addr: bastion.host.addr });
        inv.set('hj', { ...inv.get('hj')!, jump: 'bastion' });
        const pool = new TransportPool({ hosts: inv, knownHostsFiles: [kh] });
        const before = directTcpip(logText(jump), hidden.addr);
        expect((await pool.get(inv.get('hidden')!).exec('echo deep')).stdout).toBe('deep\n');
        expect(directTcpip(logText(bastion.host), jump.addr)).toBe(1);
        expect(directTcpip(logText(jump), hidden.addr) - before).toBe(1);
        expect(acceptedLogins(bastion.host)).toBe(1);
        expect(pool.stats.connectionsOpened).toBe(3);
        await pool.closeAll();
      });

      it('ProxyJump-style chain "bastion,hj" and user@addr:port jumps (credentials from ssh config)', async () => {
        const cfg = path.join(tmp, 'ssh_config_chain');
        fs.writeFileSync(cfg, `Host ${lab.base}.* 198.18.* 198.19.*\n  User ${lab.user}\n  IdentityFile ${lab.clientKey}\n`);
        const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], sshConfigPath: cfg });
        const before = directTcpip(logText(bastion.host), jump.addr);
        const spec: HostSpec = {
          ...hostSpec(lab, 'hidden'),
          jump: `${lab.user}@${bastion.host.addr}:22,${lab.user}@${jump.addr}`,
        };
        expect((await pool.get(spec).exec('echo chained')).stdout).toBe('chained\n');
        expect(directTcpip(logText(bastion.host), jump.addr) - before).toBe(1);
        await pool.closeAll();
      });
    });
  });
});
