/**
 * Credential loading (identity files, passphrase_env, agent) without any sshd: keys made by
 * the real ssh-keygen in a temp dir, parsed by ssh2 as a connection would.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ParsedKey } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CredentialEndpoint, loadCredentials } from '../../src/transport/ssh/credentials.js';
import { TransportError } from '../../src/transport/types.js';

const PASS = 'correct horse battery staple';

describe('ssh credentials (real ssh-keygen keys, no sshd)', () => {
  let dir: string;
  let plain: string;
  let encrypted: string;
  let pkcs8: string;
  let home: string;

  const keygen = (file: string, ...args: string[]) =>
    execFileSync('ssh-keygen', ['-q', ...args, '-C', 'test', '-f', file], { stdio: 'ignore' });

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hades-creds-'));
    plain = path.join(dir, 'plain');
    encrypted = path.join(dir, 'encrypted');
    pkcs8 = path.join(dir, 'pkcs8');
    keygen(plain, '-t', 'ed25519', '-N', '');
    keygen(encrypted, '-t', 'ed25519', '-N', PASS);
    keygen(pkcs8, '-t', 'ecdsa', '-m', 'PKCS8', '-N', ''); // a format ssh2 cannot read
    home = path.join(dir, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ep = (over: Partial<CredentialEndpoint>): CredentialEndpoint => ({
    name: 'web1',
    addr: '10.0.0.5',
    port: 2222,
    identityFiles: [],
    identitySource: 'host',
    ...over,
  });

  const failure = (fn: () => unknown): TransportError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(TransportError);
      expect((e as TransportError).host).toBe('web1');
      return e as TransportError;
    }
    throw new Error('expected loadCredentials to throw');
  };

  const keyOf = (m: ReturnType<ReturnType<typeof loadCredentials>['list'][number]['method']>): ParsedKey => {
    expect(m.type).toBe('publickey');
    return (m as { key: ParsedKey }).key;
  };

  it('a plain key: offered as publickey for the user, before the agent; IdentitiesOnly drops the agent', () => {
    const c = loadCredentials(ep({ identityFiles: [plain] }), { SSH_AUTH_SOCK: '/run/agent.sock' });
    expect(c.list.map((x) => x.label)).toEqual([`publickey (key ${plain})`, 'agent (SSH_AUTH_SOCK)']);
    expect(c.notes).toEqual([]);
    const m = c.list[0]!.method('deploy');
    expect(m.username).toBe('deploy');
    expect(keyOf(m).type).toBe('ssh-ed25519');
    expect(keyOf(m).isPrivateKey()).toBe(true);
    expect(c.list[1]!.method('deploy')).toEqual({ type: 'agent', username: 'deploy', agent: '/run/agent.sock' });
    const only = loadCredentials(ep({ identityFiles: [plain], identitiesOnly: true }), { SSH_AUTH_SOCK: '/run/agent.sock' });
    expect(only.list.map((x) => x.label)).toEqual([`publickey (key ${plain})`]);
  });

  it('an encrypted key is decrypted with the passphrase from the passphrase_env variable', () => {
    const c = loadCredentials(ep({ identityFiles: [encrypted], passphraseEnv: 'WEB_KEY_PASS' }), { WEB_KEY_PASS: PASS });
    expect(c.list.map((x) => x.label)).toEqual([`publickey (key ${encrypted})`]);
    const key = keyOf(c.list[0]!.method('deploy'));
    expect(key.type).toBe('ssh-ed25519');
    expect(key.isPrivateKey()).toBe(true);
  });

  it('an encrypted key without its passphrase: names the variable, or says to set passphrase_env', () => {
    expect(failure(() => loadCredentials(ep({ identityFiles: [encrypted], passphraseEnv: 'WEB_KEY_PASS' }), {})).message).toBe(
      `web1: identity_file ${encrypted} is encrypted and the environment variable WEB_KEY_PASS (passphrase_env) is not set`,
    );
    expect(failure(() => loadCredentials(ep({ identityFiles: [encrypted] }), { WEB_KEY_PASS: PASS })).message).toBe(
      `web1: identity_file ${encrypted} is encrypted; set passphrase_env to the name of an environment variable holding its passphrase, or load it into ssh-agent`,
    );
  });

  it('a wrong passphrase fails naming the file and the variable (never the passphrase)', () => {
    const e = failure(() => loadCredentials(ep({ identityFiles: [encrypted], passphraseEnv: 'WEB_KEY_PASS' }), { WEB_KEY_PASS: 'not it' }));
    expect(e.message).toBe(
      `web1: cannot decrypt identity_file ${encrypted} with the passphrase from WEB_KEY_PASS: OpenSSH key integrity check failed -- bad passphrase?`,
    );
    expect(e.message).not.toContain('not it');
  });

  it('a missing file: an error for the host identity_file, a note for one from ssh config', () => {
    const missing = path.join(dir, 'nope');
    expect(failure(() => loadCredentials(ep({ identityFiles: [missing] }), {})).message).toBe(
      `web1: identity_file ${missing} does not exist`,
    );
    const c = loadCredentials(ep({ identityFiles: [missing, plain], identitySource: 'config' }), {});
    expect(c.list.map((x) => x.label)).toEqual([`publickey (key ${plain})`]);
    expect(c.notes).toEqual([`${missing} does not exist`]);
    expect(failure(() => loadCredentials(ep({ identityFiles: [missing], identitySource: 'config' }), {})).message).toBe(
      `web1: no credentials to offer to 10.0.0.5:2222: none of the identity files is usable (${missing} does not exist)`,
    );
  });

  it('an unsupported key format and a public key given as identity_file', () => {
    expect(failure(() => loadCredentials(ep({ identityFiles: [pkcs8] }), {})).message).toBe(
      `web1: cannot read identity_file ${pkcs8}: Unsupported key format`,
    );
    expect(failure(() => loadCredentials(ep({ identityFiles: [`${plain}.pub`] }), {})).message).toBe(
      `web1: identity_file ${plain}.pub is not a private key`,
    );
    const c = loadCredentials(ep({ identityFiles: [pkcs8, `${plain}.pub`, plain], identitySource: 'config' }), {});
    expect(c.list.map((x) => x.label)).toEqual([`publickey (key ${plain})`]);
    expect(c.notes).toEqual([`${pkcs8} skipped: Unsupported key format`, `${plain}.pub skipped: not a private key`]);
  });

  it('default keys under HOME: the agent first, an encrypted default key skipped with a note', () => {
    const sshDir = path.join(home, '.ssh');
    const ed = path.join(sshDir, 'id_ed25519');
    const rsa = path.join(sshDir, 'id_rsa');
    fs.copyFileSync(encrypted, ed);
    fs.copyFileSync(plain, rsa);
    try {
      // passphrase_env never applies to default keys.
      const c = loadCredentials(ep({ identitySource: 'default', passphraseEnv: 'WEB_KEY_PASS' }), {
        HOME: home,
        SSH_AUTH_SOCK: '/run/agent.sock',
        WEB_KEY_PASS: PASS,
      });
      expect(c.list.map((x) => x.label)).toEqual(['agent (SSH_AUTH_SOCK)', `publickey (key ${rsa})`]);
      expect(c.notes).toEqual([`${ed} skipped: encrypted (use identity_file with passphrase_env, or an agent)`]);
      fs.rmSync(rsa);
      expect(failure(() => loadCredentials(ep({ identitySource: 'default' }), { HOME: home })).message).toBe(
        `web1: no credentials to offer to 10.0.0.5:2222: no identity_file, SSH_AUTH_SOCK is not set, and none of ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa is usable` +
          ` (${ed} skipped: encrypted (use identity_file with passphrase_env, or an agent))`,
      );
    } finally {
      fs.rmSync(sshDir, { recursive: true, force: true });
      fs.mkdirSync(sshDir);
    }
  });
});
