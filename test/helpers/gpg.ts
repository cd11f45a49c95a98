/** Real OpenPGP keys for tests, made by the machine's `gpg` in a private GNUPGHOME. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GpgHome {
  home: string;
  gpg(args: string[], input?: Buffer | string): Buffer;
  /** Makes an ed25519 signing key; returns its fingerprint (uppercase hex, as gpg prints it). */
  genKey(uid: string): string;
  close(): void;
}

export function gpgHome(): GpgHome {
  const home = mkdtempSync(join(tmpdir(), 'hades-gnupg-'));
  const env = { ...process.env, GNUPGHOME: home };
  const gpg = (args: string[], input?: Buffer | string) =>
    execFileSync('gpg', ['--batch', '--quiet', '--no-tty', ...args], { env, input: input ?? '', stdio: ['pipe', 'pipe', 'pipe'] });
  return {
    home,
    gpg,
    genKey(uid) {
      gpg(['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
      const fprs = gpg(['--with-colons', '--fingerprint', uid]).toString('utf8');
      const m = /^fpr:+([0-9A-F]{40}):/m.exec(fprs);
      if (!m) throw new Error(`no fingerprint for ${uid} in ${fprs}`);
      return m[1]!;
    },
    close() {
      try {
        execFileSync('gpgconf', ['--kill', 'all'], { env, stdio: 'ignore' });
      } catch {
        // no agent was started
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
