/**
 * Host keys are verified against known_hosts, by a real sshd, with files written by the
 * real OpenSSH tools (ssh-keygen -H for hashed entries).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { HostKeyError } from '../../src/transport/ssh/known-hosts.js';
import { TransportPool } from '../../src/transport/pool.js';
import { hostSpec, describeLab } from '../lab/helpers.js';
import { type DelayProxy, type ExtraSshd, startDelayProxy, startSshd } from '../lab/lab.js';

describeLab('ssh host keys (real sshd)', (lab) => {
  let tmp: string;
  let sshd: ExtraSshd;
  let spec: HostSpec;
  let fp: string; // SHA256 fingerprint as ssh-keygen prints it
  let n = 0;

  function khFile(lines: string[]): string {
    const f = path.join(tmp, `kh-${++n}`);
    fs.writeFileSync(f, `${lines.join('\n')}\n`);
    return f;
  }

  async function tryConnect(files: string[], opts: { acceptNewHosts?: boolean; host?: HostSpec } = {}): Promise<Error | null> {
    const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: files, ...opts });
    try {
      const r = await pool.get(opts.host ?? spec).exec('echo ok');
      expect(r.stdout).toBe('ok\n');
      return null;
    } catch (e) {
      return e as Error;
    } finally {
      await pool.closeAll();
    }
  }

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(lab.dir, 'hostkeys-'));
    sshd = await startSshd(lab, { name: 'hk' });
    spec = { ...hostSpec(lab, 'h7'), name: 'hk', addr: sshd.host.addr };
    const pubFile = path.join(tmp, 'hk.pub');
    fs.writeFileSync(pubFile, `${sshd.hostKey}\n`);
    fp = execFileSync('ssh-keygen', ['-l', '-f', pubFile], { encoding: 'utf8' }).split(' ')[1]!;
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
  afterAll(() => sshd?.stop());

  describe('host key verification', () => {
    it('a known host connects; an unknown one is refused with its fingerprint and how to accept it', async () => {
      expect(await tryConnect([khFile([sshd.knownHostsLine])])).toBeNull();
      const e = await tryConnect([lab.knownHosts]);
      expect(e).toBeInstanceOf(HostKeyError);
      const hk = e as HostKeyError;
      expect(hk.problem).toBe('unknown');
      expect(hk.fingerprint).toBe(fp);
      expect(hk.keyType).toBe('ssh-ed25519');
      expect(hk.message).toContain(`hk: unknown host key for ${sshd.host.addr}: ssh-ed25519 ${fp}`);
      expect(hk.message).toContain('--accept-new-hosts');
      expect(hk.message).toContain(`ssh-keyscan -p 22 ${sshd.host.addr} >> ${lab.knownHosts}`);
    });

    it('connectAll reports host-key errors per host (the caller decides)', async () => {
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [lab.knownHosts] });
      const errors = await pool.connectAll([spec, hostSpec(lab, 'h8')]);
      await pool.closeAll();
      expect([...errors.keys()]).toEqual(['hk']);
      expect(errors.get('hk')).toBeInstanceOf(HostKeyError);
    });

    it('acceptNewHosts accepts an unknown host and appends it; the next run needs no flag', async () => {
      const primary = path.join(tmp, 'fresh', 'ssh', 'known_hosts');
      expect(await tryConnect([primary, lab.knownHosts], { acceptNewHosts: true })).toBeNull();
      expect(fs.readFileSync(primary, 'utf8')).toBe(`${sshd.knownHostsLine}\n`);
      expect(fs.statSync(primary).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(primary)).mode & 0o777).toBe(0o700);
      expect(await tryConnect([primary, lab.knownHosts])).toBeNull();
      // Accepting again does not duplicate: the host is known now.
      expect(await tryConnect([primary], { acceptNewHosts: true })).toBeNull();
      expect(fs.readFileSync(primary, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
      // ssh itself agrees with what we wrote.
      const out = execFileSync('ssh-keygen', ['-F', sshd.host.addr, '-f', primary], { encoding: 'utf8' });
      expect(out).toContain(sshd.hostKey);
    });

    it('appending keeps an existing file intact (even without a trailing newline)', async () => {
      const f = path.join(tmp, 'kh-nonl');
      fs.writeFileSync(
        f,
        `# mine\n${lab.hosts[0]!.addr} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake`,
      );
      expect(await tryConnect([f], { acceptNewHosts: true })).toBeNull();
      const lines = fs.readFileSync(f, 'utf8').split('\n');
      expect(lines[0]).toBe('# mine');
      expect(lines[2]).toBe(sshd.knownHostsLine);
    });

    it('a CHANGED key is refused even with acceptNewHosts, naming file:line of the known key', async () => {
      const other = path.join(tmp, 'other_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      const otherPub = fs.readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
      const f = khFile(['# line 1', `${sshd.host.addr} ${otherPub}`]);
      const before = fs.readFileSync(f, 'utf8');
      const e = await tryConnect([f], { acceptNewHosts: true });
      expect(e).toBeInstanceOf(HostKeyError);
      expect((e as HostKeyError).problem).toBe('changed');
      expect(e!.message).toContain(`hk: HOST KEY CHANGED for ${sshd.host.addr}: it presented ssh-ed25519 ${fp}`);
      expect(e!.message).toContain(`${f}:2 (ssh-ed25519 SHA256:`);
      expect(e!.message).toContain('refuses to connect, whatever the flags');
      expect(e!.message).toContain(`ssh-keygen -R ${sshd.host.addr} -f ${f}`);
      expect(fs.readFileSync(f, 'utf8')).toBe(before);
    });

    it('known only with a key of another type that matches nothing: CHANGED (OpenSSH semantics)', async () => {
      const ec = path.join(tmp, 'ec_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', ec]);
      const ecPub = fs.readFileSync(`${ec}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
      const e = await tryConnect([khFile([`${sshd.host.addr} ${ecPub}`])], { acceptNewHosts: true });
      expect((e as HostKeyError).problem).toBe('changed');
    });

    it('prefers the host-key algorithm already known, like OpenSSH (sshd with ed25519 + rsa, only rsa known)', async () => {
      const rsa = path.join(tmp, 'ssh_host_rsa_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
      const two = await startSshd(lab, { name: 'hk2', extraConfig: [`HostKey ${rsa}`] });
      try {
        const rsaPub = fs.readFileSync(`${rsa}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
        const host = { ...spec, name: 'hk2', addr: two.host.addr };
        expect(await tryConnect([khFile([`${two.host.addr} ${rsaPub}`])], { host })).toBeNull();
        expect(await tryConnect([khFile([two.knownHostsLine])], { host })).toBeNull();
      } finally {
        await two.stop();
      }
    });

    it('hashed entries (ssh-keygen -H) match', async () => {
      const f = khFile([`${lab.hosts[1]!.addr} ${sshd.hostKey}`, sshd.knownHostsLine]);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'pipe' });
      const text = fs.readFileSync(f, 'utf8');
      expect(text).toMatch(/^\|1\|/);
      expect(text).not.toContain(sshd.host.addr);
      expect(await tryConnect([f])).toBeNull();
    });

    it('comma-separated host lists and wildcard patterns match; a negated pattern vetoes', async () => {
      expect(await tryConnect([khFile([`other.example,${sshd.host.addr} ${sshd.hostKey}`])])).toBeNull();
      expect(await tryConnect([khFile([`${lab.base}.* ${sshd.hostKey}`])])).toBeNull();
      const vetoed = await tryConnect([khFile([`${lab.base}.*,!${sshd.host.addr} ${sshd.hostKey}`])]);
      expect((vetoed as HostKeyError).problem).toBe('unknown');
    });

    it('@revoked keys are refused, whatever else says, even with acceptNewHosts', async () => {
      const f = khFile([sshd.knownHostsLine, `@revoked * ${sshd.hostKey}`]);
      const e = await tryConnect([f], { acceptNewHosts: true });
      expect((e as HostKeyError).problem).toBe('revoked');
      expect(e!.message).toContain(`is marked @revoked at ${f}:2`);
    });

    it('@cert-authority lines never vouch for a plain host key', async () => {
      const e = await tryConnect([khFile([`@cert-authority ${sshd.host.addr} ${sshd.hostKey}`])]);
      expect((e as HostKeyError).problem).toBe('unknown');
    });

    describe('non-22 ports: [addr]:port entries', () => {
      let proxy: DelayProxy;
      let onPort: HostSpec;
      beforeAll(async () => {
        proxy = await startDelayProxy({ host: `${lab.base}.197`, port: 2222 }, { host: sshd.host.addr, port: 22 }, 0);
        onPort = { ...spec, name: 'hk-2222', addr: `${lab.base}.197`, port: 2222 };
      });
      afterAll(() => proxy?.close());

      it('matches [addr]:port (plain and hashed), and a port-less entry does not', async () => {
        const a = `${lab.base}.197`;
        expect(await tryConnect([khFile([`[${a}]:2222 ${sshd.hostKey}`])], { host: onPort })).toBeNull();
        const hashed = khFile([`[${a}]:2222 ${sshd.hostKey}`]);
        execFileSync('ssh-keygen', ['-q', '-H', '-f', hashed], { stdio: 'pipe' });
        expect(fs.readFileSync(hashed, 'utf8')).toMatch(/^\|1\|/);
        expect(await tryConnect([hashed], { host: onPort })).toBeNull();
        const plain = await tryConnect([khFile([`${a} ${sshd.hostKey}`])], { host: onPort });
        expect((plain as HostKeyError).problem).toBe('unknown');
        expect(plain!.message).toContain(`unknown host key for ${a} port 2222`);
        expect(plain!.message).toContain(`ssh-keyscan -p 2222 ${a}`);
      });

      it('accept-new writes the [addr]:port form, which OpenSSH finds', async () => {
        const f = path.join(tmp, 'kh-port-accept');
        expect(await tryConnect([f], { acceptNewHosts: true, host: onPort })).toBeNull();
        expect(fs.readFileSync(f, 'utf8')).toBe(`[${lab.base}.197]:2222 ${sshd.hostKey}\n`);
        const out = execFileSync('ssh-keygen', ['-F', `[${lab.base}.197]:2222`, '-f', f], { encoding: 'utf8' });
        expect(out).toContain(sshd.hostKey);
      });
    });
  });
});
