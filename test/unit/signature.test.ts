/**
 * Artifact signatures with real ssh-keygen (registry/signature.ts): the documented payload,
 * signing with a key file (passphrase through SSH_ASKPASS from an env var) and through an
 * ssh-agent, and each verdict of checkSignature against real allowed_signers files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signatureManifest, signatureLayer } from '../../src/registry/referrer-manifest.js';
import { checkSignature, signaturePayload, signPayload } from '../../src/registry/signature.js';

const dir = mkdtempSync(join(tmpdir(), 'hades-sig-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const key = (name: string, passphrase = '') => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', join(dir, name)]);
  return join(dir, name);
};
const pub = (k: string) => readFileSync(`${k}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
const release = key('release');
const rogue = key('rogue');
const locked = key('locked', 'correct horse');
const allowed = join(dir, 'allowed_signers');
writeFileSync(allowed, `release@example.com ${pub(release)}\nlocked@example.com ${pub(locked)}\n`);
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

describe('artifact signatures (real ssh-keygen)', () => {
  it('the signed payload is the documented canonical text', () => {
    expect(signaturePayload('team/app', D1).toString()).toBe(`hades-artifact-signature v1\nname: team/app\ndigest: ${D1}\n`);
  });

  it('a signature by an allowed key over the payload verifies, naming the principal', async () => {
    const sig = await signPayload(signaturePayload('app', D1), { key: release });
    expect(sig.toString()).toMatch(/^-----BEGIN SSH SIGNATURE-----/);
    const c = await checkSignature(signaturePayload('app', D1), sig, allowed);
    expect(c).toMatchObject({ ok: true, principal: 'release@example.com' });
    expect(c.ok && c.key).toMatch(/^ED25519 key SHA256:/);
  });

  it('a signature made by hand with ssh-keygen -Y sign -n hades-artifact over the same text verifies', async () => {
    const file = join(dir, 'payload');
    writeFileSync(file, `hades-artifact-signature v1\nname: app\ndigest: ${D1}\n`);
    execFileSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', release, '-n', 'hades-artifact', file]);
    const c = await checkSignature(signaturePayload('app', D1), readFileSync(`${file}.sig`), allowed);
    expect(c).toMatchObject({ ok: true, principal: 'release@example.com' });
  });

  it('refuses another digest, another name, an unknown key and an expired key', async () => {
    const sig = await signPayload(signaturePayload('app', D1), { key: release });
    expect(await checkSignature(signaturePayload('app', D2), sig, allowed)).toMatchObject({ ok: false, reason: 'bad signature' });
    expect(await checkSignature(signaturePayload('other', D1), sig, allowed)).toMatchObject({ ok: false, reason: 'bad signature' });
    const bad = await signPayload(signaturePayload('app', D1), { key: rogue });
    expect(await checkSignature(signaturePayload('app', D1), bad, allowed)).toMatchObject({ ok: false, reason: 'unknown key' });
    const expired = join(dir, 'allowed_expired');
    writeFileSync(expired, `release@example.com valid-before="20200101" ${pub(release)}\n`);
    const c = await checkSignature(signaturePayload('app', D1), sig, expired);
    expect(c).toMatchObject({ ok: false, reason: 'expired' });
    expect(!c.ok && c.detail).toMatch(/expired/);
    expect(await checkSignature(signaturePayload('app', D1), Buffer.from('not a signature'), allowed)).toMatchObject({
      ok: false,
      reason: 'bad signature',
    });
  });

  it('a key with a passphrase signs with passphrase_env (through SSH_ASKPASS); without it, a clear error', async () => {
    const sig = await signPayload(signaturePayload('app', D1), { key: locked, passphraseEnv: 'SIGN_PW' }, { SIGN_PW: 'correct horse' });
    expect(await checkSignature(signaturePayload('app', D1), sig, allowed)).toMatchObject({ ok: true, principal: 'locked@example.com' });
    await expect(signPayload(signaturePayload('app', D1), { key: locked, passphraseEnv: 'SIGN_PW' }, { SIGN_PW: 'wrong' })).rejects.toThrow(
      /cannot sign with .*locked.*passphrase/,
    );
    await expect(signPayload(signaturePayload('app', D1), { key: locked, passphraseEnv: 'SIGN_PW' }, {})).rejects.toThrow(
      /passphrase_env SIGN_PW is not set/,
    );
    await expect(signPayload(signaturePayload('app', D1), { key: locked })).rejects.toThrow(/cannot sign with/);
  });

  it('a .pub key signs through the ssh-agent', async () => {
    const sock = join(dir, 'agent.sock');
    const out = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' });
    const pid = /SSH_AGENT_PID=(\d+)/.exec(out)![1]!;
    try {
      expect(spawnSync('ssh-add', ['-q', release], { env: { ...process.env, SSH_AUTH_SOCK: sock } }).status).toBe(0);
      const sig = await signPayload(signaturePayload('app', D1), { key: `${release}.pub` }, { SSH_AUTH_SOCK: sock });
      expect(await checkSignature(signaturePayload('app', D1), sig, allowed)).toMatchObject({ ok: true, principal: 'release@example.com' });
    } finally {
      process.kill(Number(pid));
    }
  });

  it('the referrer manifest names its subject; only a Hades signature of that subject is read back', () => {
    const sig = Buffer.from('SIG');
    const m = JSON.parse(signatureManifest({ digest: D1, size: 500 }, 'app', sig, '2026-01-01T00:00:00Z').toString());
    expect(m.artifactType).toBe('application/vnd.hades.signature.v1');
    expect(m.subject).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D1, size: 500 });
    expect(signatureLayer(m, D1)).toEqual({ digest: m.layers[0].digest, size: 3 });
    expect(signatureLayer(m, D2)).toBeUndefined();
    expect(signatureLayer({ ...m, artifactType: 'other' }, D1)).toBeUndefined();
  });
});
