/**
 * Artifact signatures with SSH keys (OpenSSH `ssh-keygen -Y`): what is signed, how it is
 * signed and how a signature is checked against an allowed_signers file. Backend-independent;
 * where signatures are stored (OCI referrers) is referrers.ts, the run-wide use trust.ts.
 *
 * The signed payload is a small canonical text (documented in README "Trust", so an operator
 * can reproduce it and sign it by hand with `ssh-keygen -Y sign -n hades-artifact`):
 *
 *     hades-artifact-signature v1
 *     name: <artifact name, without the registry's url>
 *     digest: <manifest digest>
 *
 * (each line ends with "\n"). The name is part of it, so a signature cannot be replayed onto
 * another artifact name; the digest is the manifest's, which pins every byte of the artifact.
 *
 * Passphrases never reach argv or disk: ssh-keygen asks SSH_ASKPASS (forced), a two-line
 * script that prints the variable named by passphrase_env from its own environment. A key
 * whose path ends in .pub signs through the SSH agent (SSH_AUTH_SOCK), as ssh-keygen does.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunError, UserError } from '../errors.js';

export const SIGNATURE_NAMESPACE = 'hades-artifact';
/** The artifactType of a signature referrer manifest, and the media type of its one layer. */
export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.hades.signature.v1';
export const SIGNATURE_MEDIA_TYPE = 'application/vnd.hades.signature.v1+sshsig';
/** Annotation of the referrer: the artifact name the signature covers (informational; the payload decides). */
export const SIGNATURE_NAME_ANNOTATION = 'io.hades.signature.name';
const MAX_SIGNATURE_BYTES = 64 * 1024;

export interface SignKey {
  /** Absolute path of a private key file, or of a public key whose private half is in the SSH agent. */
  key: string;
  /** The environment variable holding the key file's passphrase. */
  passphraseEnv?: string;
}

export interface VerifySpec {
  /** Absolute path of an OpenSSH allowed_signers file. */
  allowedSigners: string;
}

export function signaturePayload(name: string, manifestDigest: string): Buffer {
  return Buffer.from(`hades-artifact-signature v1\nname: ${name}\ndigest: ${manifestDigest}\n`, 'utf8');
}

interface KeygenResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function keygen(args: string[], o: { input?: Buffer; env?: NodeJS.ProcessEnv; detached?: boolean } = {}): Promise<KeygenResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh-keygen', args, {
      env: o.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // No controlling terminal: ssh-keygen can only ask SSH_ASKPASS, never prompt on a tty.
      detached: o.detached === true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new RunError(`cannot run ssh-keygen (${e.code ?? e.message}): install OpenSSH's ssh-keygen (8.2 or newer)`)),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? Buffer.alloc(0));
  });
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(join(tmpdir(), 'hades-sig-'));
  try {
    return await fn(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}

/** `ssh-keygen -Y sign -n hades-artifact` over the payload: the armored signature. */
export async function signPayload(payload: Buffer, key: SignKey, env: Record<string, string | undefined> = process.env): Promise<Buffer> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (key.passphraseEnv !== undefined && (env[key.passphraseEnv] === undefined || env[key.passphraseEnv] === ''))
    throw new UserError({
      message: `signing key ${key.key}: passphrase_env ${key.passphraseEnv} is not set`,
      hint: `export ${key.passphraseEnv}=… (the passphrase of ${key.key})`,
    });
  return withTemp(async (dir) => {
    const file = join(dir, 'payload');
    await fsp.writeFile(file, payload, { mode: 0o600 });
    if (key.passphraseEnv !== undefined) {
      const askpass = join(dir, 'askpass');
      // Prints the passphrase from its environment: the secret is never in a file or in argv.
      await fsp.writeFile(askpass, `#!/bin/sh\nprintf '%s\\n' "$${key.passphraseEnv}"\n`, { mode: 0o700 });
      childEnv.SSH_ASKPASS = askpass;
      childEnv.SSH_ASKPASS_REQUIRE = 'force';
    } else {
      childEnv.SSH_ASKPASS_REQUIRE = 'never';
    }
    const r = await keygen(['-Y', 'sign', '-q', '-f', key.key, '-n', SIGNATURE_NAMESPACE, file], { env: childEnv, detached: true });
    if (r.code !== 0) {
      const why = lastLine(r.stderr) || `exit ${r.code}`;
      const hint = /passphrase/i.test(r.stderr)
        ? key.passphraseEnv
          ? `check ${key.passphraseEnv}`
          : 'the key has a passphrase: add passphrase_env: NAME (or load it into ssh-agent and give its .pub file)'
        : /agent/i.test(r.stderr)
          ? 'a .pub key signs through ssh-agent: start it and ssh-add the private key (SSH_AUTH_SOCK)'
          : undefined;
      throw new UserError({ message: `cannot sign with ${key.key}: ${why}`, ...(hint ? { hint } : {}) });
    }
    return fsp.readFile(`${file}.sig`);
  });
}

export type SignatureCheck =
  | { ok: true; principal: string; key: string }
  | { ok: false; reason: 'unknown key' | 'bad signature' | 'expired'; key?: string; principal?: string; detail: string };

/** The key fingerprint in a signature ("ED25519 key SHA256:…"), when it is a well-formed signature over `payload`. */
export async function signatureKey(payload: Buffer, sig: Buffer): Promise<string | undefined> {
  return withTemp(async (dir) => {
    const sigFile = join(dir, 'sig');
    await fsp.writeFile(sigFile, sig);
    const r = await keygen(['-Y', 'check-novalidate', '-n', SIGNATURE_NAMESPACE, '-s', sigFile], { input: payload });
    const m = /signature with (.+? key \S+)/.exec(r.stdout + r.stderr);
    return r.code === 0 && m ? m[1] : undefined;
  });
}

/**
 * One signature against an allowed_signers file: `ssh-keygen -Y find-principals` (is its key
 * listed, and valid now?) then `-Y verify -I <principal>` over the payload.
 */
export async function checkSignature(payload: Buffer, sig: Buffer, allowedSigners: string): Promise<SignatureCheck> {
  if (sig.length > MAX_SIGNATURE_BYTES)
    return { ok: false, reason: 'bad signature', detail: `${sig.length} bytes, too large for a signature` };
  try {
    await fsp.access(allowedSigners);
  } catch {
    throw new UserError({
      message: `allowed_signers file ${allowedSigners} does not exist`,
      hint: 'write one line per key: PRINCIPAL ssh-ed25519 AAAA… (see README "Trust")',
    });
  }
  return withTemp(async (dir) => {
    const sigFile = join(dir, 'sig');
    await fsp.writeFile(sigFile, sig);
    const key = await signatureKey(payload, sig);
    const found = await keygen(['-Y', 'find-principals', '-f', allowedSigners, '-s', sigFile]);
    if (found.code !== 0) {
      const expired = found.stderr.split('\n').find((l) => /expired|not yet valid/.test(l));
      if (expired) return { ok: false, reason: 'expired', ...(key ? { key } : {}), detail: expired.replace(/^[^:]*:\d+: /, '').trim() };
      if (!key) {
        // Not a signature over this payload at all (another digest or name), or not a signature.
        return { ok: false, reason: 'bad signature', detail: 'its key is not in allowed_signers and it does not cover this payload' };
      }
      return { ok: false, reason: 'unknown key', key, detail: `${key} is not in ${allowedSigners}` };
    }
    const principals = found.stdout
      .split('\n')
      .flatMap((l) => l.split(','))
      .map((p) => p.trim())
      .filter(Boolean);
    let last = '';
    for (const principal of principals) {
      const r = await keygen(['-Y', 'verify', '-f', allowedSigners, '-I', principal, '-n', SIGNATURE_NAMESPACE, '-s', sigFile], {
        input: payload,
      });
      if (r.code === 0) return { ok: true, principal, key: key ?? '?' };
      last = lastLine(r.stderr) || `exit ${r.code}`;
    }
    return {
      ok: false,
      reason: 'bad signature',
      ...(principals[0] ? { principal: principals[0] } : {}),
      detail: `by ${principals.join(', ')}, but not over this name and digest (${last})`,
    };
  });
}
