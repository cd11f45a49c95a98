import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { SshConfig, tokenizeLine } from '../../src/transport/ssh/config.js';
import { TransportPool } from '../../src/transport/pool.js';
import type { HostSpec } from '../../src/config/model.js';

const home = os.homedir();

describe('ssh config', () => {
  const cfg = SshConfig.fromText(
    [
      '# personal config',
      'Host web-* !web-legacy',
      '    HostName %h.internal.example.com',
      '    User deploy',
      '    Port 2222',
      '    IdentityFile ~/.ssh/deploy_%r',
      '',
      'Host web-legacy',
      '  HostName 10.9.9.9',
      '',
      'Host db?',
      '  User=dba',
      '  ProxyJump bastion.example.com',
      '  IdentityFile "/keys/with space"',
      '',
      'Host *',
      '  User fallback',
      '  Port 22',
      '  IdentityFile ~/.ssh/id_fallback',
      '  ConnectTimeout 7',
      '  IdentitiesOnly yes',
    ].join('\n'),
    '/cfg',
  );

  it('first match wins per keyword; IdentityFile accumulates; tokens and ~ expand', () => {
    expect(cfg.resolve('web-1')).toEqual({
      hostName: 'web-1.internal.example.com',
      user: 'deploy',
      port: 2222,
      identityFiles: [`${home}/.ssh/deploy_deploy`, `${home}/.ssh/id_fallback`],
      connectTimeoutMs: 7000,
      identitiesOnly: true,
    });
  });

  it('negated patterns exclude a host from a block', () => {
    const r = cfg.resolve('web-legacy');
    expect(r.hostName).toBe('10.9.9.9');
    expect(r.user).toBe('fallback');
    expect(r.port).toBe(22);
  });

  it('? matches one character; quoted values; Keyword=value', () => {
    const r = cfg.resolve('db1');
    expect(r).toMatchObject({ user: 'dba', proxyJump: 'bastion.example.com' });
    expect(r.hostName).toBeUndefined();
    expect(r.identityFiles[0]).toBe('/keys/with space');
    expect(cfg.resolve('db10').proxyJump).toBeUndefined();
  });

  it('patterns are case-insensitive, like OpenSSH', () => {
    expect(cfg.resolve('WEB-2').user).toBe('deploy');
  });

  it('ProxyJump none disables a later value; Match all applies; other Match criteria never guess', () => {
    const c = SshConfig.fromText(
      ['Host a', '  ProxyJump none', 'Match exec "true"', '  User never', 'Match all', '  User everyone', 'Host *', '  ProxyJump j'].join(
        '\n',
      ),
    );
    expect(c.resolve('a')).toEqual({ identityFiles: [], user: 'everyone' });
    expect(c.resolve('b')).toEqual({ identityFiles: [], user: 'everyone', proxyJump: 'j' });
  });

  it('Include: globs, relative to ~/.ssh, conditional inside a Host block', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshcfg-'));
    fs.mkdirSync(path.join(dir, 'conf.d'));
    fs.writeFileSync(path.join(dir, 'conf.d', '10-a.conf'), 'Host inc-*\n  User included\n');
    fs.writeFileSync(path.join(dir, 'conf.d', '20-b.conf'), 'Port 2200\n');
    fs.writeFileSync(path.join(dir, 'only-x.conf'), 'User from-x\n');
    const main = path.join(dir, 'config');
    fs.writeFileSync(main, `Include ${dir}/conf.d/*.conf\nHost x\n  Include ${dir}/only-x.conf\nHost *\n  User last\n`);
    const c = new SshConfig(main);
    // As in OpenSSH, the `Host inc-*` of 10-a.conf still governs 20-b.conf (same Include).
    expect(c.resolve('inc-1')).toEqual({ identityFiles: [], user: 'included', port: 2200 });
    expect(c.resolve('y').port).toBeUndefined();
    expect(c.resolve('x').user).toBe('from-x');
    expect(c.resolve('y').user).toBe('last');
    fs.rmSync(dir, { recursive: true });
  });

  it('a missing file is an empty config', () => {
    expect(new SshConfig('/nonexistent/ssh_config').resolve('h')).toEqual({ identityFiles: [] });
  });

  it('bad values are user errors with file:line', () => {
    const c = SshConfig.fromText('Host *\n  Port eighty\n', '/my/config');
    const e = (() => {
      try {
        c.resolve('h');
      } catch (x) {
        return x;
      }
    })() as UserError;
    expect(e).toBeInstanceOf(UserError);
    expect(e.format()).toBe('/my/config:2:1: error: ssh config: bad Port "eighty"\n    hint: a number 1-65535');
  });

  it('tokenizer', () => {
    expect(tokenizeLine('  # x')).toBeNull();
    expect(tokenizeLine('Host a b  c # trailing')).toEqual({ key: 'host', args: ['a', 'b', 'c'] });
    expect(tokenizeLine('IdentityFile="/a b/c"')).toEqual({ key: 'identityfile', args: ['/a b/c'] });
    expect(tokenizeLine('User = me')).toEqual({ key: 'user', args: ['me'] });
  });
});

describe('pool endpoint: HostSpec wins over ssh config', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshcfg-'));
  const cfgPath = path.join(dir, 'config');
  fs.writeFileSync(
    cfgPath,
    'Host app\n  HostName 10.1.2.3\n  User cfguser\n  Port 2201\n  IdentityFile /cfg/key\n  ProxyJump jumper\n  ConnectTimeout 3\n',
  );
  const base: HostSpec = { name: 'app1', addr: 'app', local: false, order: 0, pos: { file: 'h.yaml', line: 1, col: 1 } };

  it('takes what the HostSpec leaves out', () => {
    const pool = new TransportPool({ hosts: new Map(), sshConfigPath: cfgPath });
    expect(pool.endpoint(base)).toMatchObject({
      addr: '10.1.2.3',
      user: 'cfguser',
      port: 2201,
      identityFiles: ['/cfg/key'],
      identitySource: 'config',
      jump: 'jumper',
      connectTimeoutMs: 3000,
    });
  });

  it('HostSpec values win; the global timeout beats the config one', () => {
    const pool = new TransportPool({ hosts: new Map(), sshConfigPath: cfgPath, connectTimeoutMs: 4000 });
    const ep = pool.endpoint({ ...base, user: 'me', port: 22, identityFile: '/mine', jump: 'j2' });
    expect(ep).toMatchObject({
      addr: '10.1.2.3',
      user: 'me',
      port: 22,
      identityFiles: ['/mine'],
      identitySource: 'host',
      jump: 'j2',
      connectTimeoutMs: 4000,
    });
    expect(pool.endpoint({ ...base, connectTimeoutMs: 1500 }).connectTimeoutMs).toBe(1500);
  });

  it('no config at all: current user, port 22, default keys, 10 s', () => {
    const pool = new TransportPool({ hosts: new Map(), sshConfigPath: path.join(dir, 'none') });
    expect(pool.endpoint(base)).toMatchObject({
      addr: 'app',
      user: os.userInfo().username,
      port: 22,
      identityFiles: [],
      identitySource: 'default',
      connectTimeoutMs: 10_000,
    });
  });
});
