/**
 * The lab's users and private filesystems, as the action layer will rely on them:
 * sudo -n for the sudo user, a clear refusal for the other, shell.ts wrappers end to end.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { TransportPool } from '../../src/transport/pool.js';
import { becomeWrap, envScript, quote, runWithEnv } from '../../src/shell/command.js';
import { hostSpec, labInventory, describeLab } from '../lab/helpers.js';

describeLab('sudo and private filesystems (real sshd)', (lab) => {
  const pool = new TransportPool({ hosts: labInventory(lab), knownHostsFiles: [lab.knownHosts] });
  afterAll(() => pool.closeAll());

  describe('sudo on lab hosts', () => {
    it('the sudo user gets root with sudo -n', async () => {
      const t = pool.get(hostSpec(lab, 'h8', { name: 'h8-sudo', user: lab.sudoUser }));
      expect(await t.exec('sudo -n id -u')).toEqual({ exitCode: 0, stdout: '0\n', stderr: '' });
      expect((await t.exec(becomeWrap('id -un', 'root'))).stdout).toBe('root\n');
      expect((await t.exec(becomeWrap('id -un', lab.user))).stdout).toBe(`${lab.user}\n`);
    });

    it('the no-sudo user is refused without a prompt', async () => {
      const t = pool.get(hostSpec(lab, 'h8', { name: 'h8-nosudo', user: lab.nosudoUser }));
      const r = await t.exec('sudo -n id -u');
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/password is required|not in the sudoers/);
    });

    it('runWithEnv: values travel on stdin, survive quoting, and reach the command under sudo', async () => {
      const t = pool.get(hostSpec(lab, 'h8', { name: 'h8-sudo', user: lab.sudoUser }));
      const env = { GREETING: `it's "quoted" $HOME \`x\`\nline2`, EMPTY: '' };
      const r = await t.exec(runWithEnv('printf "%s|%s|%s" "$GREETING" "$EMPTY" "$(id -u)"', 'root'), { stdin: envScript(env) });
      expect(r).toEqual({ exitCode: 0, stdout: `${env.GREETING}||0`, stderr: '' });
    });
  });

  describe('private filesystems per host', () => {
    it('a file written under /opt on h7 is invisible on h8 and on the orchestrator', async () => {
      const name = `/opt/lab-${randomBytes(6).toString('hex')}`;
      const a = pool.get(hostSpec(lab, 'h7', { name: 'h7-sudo', user: lab.sudoUser }));
      const b = pool.get(hostSpec(lab, 'h8', { name: 'h8-sudo', user: lab.sudoUser }));
      expect((await a.exec(becomeWrap(`echo one > ${quote(name)} && cat ${quote(name)}`, 'root'))).stdout).toBe('one\n');
      expect((await b.exec(`test -e ${quote(name)}; echo $?`)).stdout).toBe('1\n');
      expect(fs.existsSync(name)).toBe(false);
      for (const d of ['/opt', '/srv', '/var/lib/app', '/etc/app']) {
        expect((await a.exec(`stat -f -c %T ${d}`)).stdout).toBe('tmpfs\n');
      }
    });
  });
});
