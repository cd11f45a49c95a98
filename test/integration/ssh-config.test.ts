/**
 * ~/.ssh/config honoured for what the HostSpec leaves out — against a real sshd.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { TransportPool } from '../../src/transport/pool.js';
import { acceptedLogins, describeLab } from '../lab/helpers.js';
import { type DelayProxy, type ExtraSshd, startDelayProxy, startSshd } from '../lab/lab.js';

describeLab('ssh config (real sshd)', (lab) => {
  const tmp = fs.mkdtempSync(path.join(lab.dir, 'sshcfg-'));

  describe('ssh config (integration)', () => {
    let sshd: ExtraSshd;
    let proxy: DelayProxy;
    let cfgPath: string;
    let kh: string;
    const proxyAddr = `${lab.base}.196`;

    beforeAll(async () => {
      sshd = await startSshd(lab, { name: 'cfg' });
      // The only way to this sshd on port 2222 is this forwarder: so Port must come from the config.
      proxy = await startDelayProxy({ host: proxyAddr, port: 2222 }, { host: sshd.host.addr, port: 22 }, 0);
      cfgPath = path.join(tmp, 'config');
      fs.writeFileSync(
        cfgPath,
        [
          'Host web-? !web-9',
          `  HostName ${proxyAddr}`,
          `  User ${lab.user}`,
          '  Port 2222',
          `  IdentityFile ${lab.clientKey}`,
          'Host *',
          '  User nobody-here',
          '',
        ].join('\n'),
      );
      kh = path.join(tmp, 'known_hosts');
      fs.writeFileSync(kh, `[${proxyAddr}]:2222 ${sshd.hostKey}\n`);
    });
    afterAll(async () => {
      await proxy?.close();
      await sshd?.stop();
    });

    const bare = (name: string, addr: string): HostSpec => ({
      name,
      addr,
      local: false,
      order: 0,
      pos: { file: 'h.yaml', line: 1, col: 1 },
    });

    it('HostName, User, Port and IdentityFile come from the matching Host block', async () => {
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], sshConfigPath: cfgPath, env: {} });
      const r = await pool.get(bare('web', 'web-1')).exec('id -un');
      expect(r).toEqual({ exitCode: 0, stdout: `${lab.user}\n`, stderr: '' });
      expect(proxy.connections).toBe(1);
      expect(acceptedLogins(sshd.host, lab.user)).toBe(1);
      await pool.closeAll();
    });

    it('the HostSpec wins: its user is used even though the config names another', async () => {
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], sshConfigPath: cfgPath, env: {} });
      const r = await pool.get({ ...bare('web', 'web-2'), user: lab.sudoUser }).exec('id -un');
      expect(r.stdout).toBe(`${lab.sudoUser}\n`);
      await pool.closeAll();
    });

    it('a negated pattern keeps a host out of the block (no HostName, Port or IdentityFile from it)', async () => {
      const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [kh], sshConfigPath: cfgPath, env: { HOME: tmp } });
      expect(pool.endpoint(bare('web9', 'web-9'))).toMatchObject({ addr: 'web-9', port: 22, user: 'nobody-here', identityFiles: [] });
      await expect(pool.get(bare('web9', 'web-9')).connect()).rejects.toThrow(/^web9: no credentials to offer to web-9:22/);
      await pool.closeAll();
    });
  });
});
