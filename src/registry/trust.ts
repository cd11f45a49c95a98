/**
 * Signing and verifying artifacts in any registry: the signature (signature.ts) over the
 * artifact's name and manifest digest, stored as an OCI referrer of the signed manifest
 * (fs/referrers.ts, oci/referrers.ts; the manifest in referrer-manifest.ts). Verification
 * fails closed: an artifact passes only with a valid signature of an allowed principal.
 */
import { RunError } from '../errors.js';
import { digestOf } from './digest.js';
import { FilesystemRegistry } from './fs/registry.js';
import { attachFsSignature, listFsSignatures } from './fs/referrers.js';
import { OciSettings } from './oci/settings.js';
import { attachOciSignature, listOciSignatures } from './oci/referrers.js';
import { signatureManifest, type StoredSignature } from './referrer-manifest.js';
import { checkSignature, signatureKey, signaturePayload, signPayload, type SignatureCheck, type SignKey } from './signature.js';
import type { Registry } from './types.js';

export function listSignatures(reg: Registry, name: string, manifestDigest: string): Promise<StoredSignature[]> {
  if (reg instanceof FilesystemRegistry) return listFsSignatures(reg, name, manifestDigest);
  if (reg instanceof OciSettings) return listOciSignatures(reg, name, manifestDigest);
  throw new RunError(`registry "${reg.name}" (${reg.type}) cannot store signatures`);
}

function attach(reg: Registry, name: string, manifest: Buffer, sig: Buffer): Promise<void> {
  if (reg instanceof FilesystemRegistry) return attachFsSignature(reg, name, manifest, sig);
  if (reg instanceof OciSettings) return attachOciSignature(reg, name, manifest, sig);
  throw new RunError(`registry "${reg.name}" (${reg.type}) cannot store signatures`);
}

export interface SignResult {
  referrer: string;
  /** True when the same signature was already attached (signing is idempotent for deterministic keys). */
  existed: boolean;
}

/** Signs name@manifestDigest with `key` and attaches the signature to it in `reg`. */
export async function signArtifact(
  reg: Registry,
  name: string,
  manifestDigest: string,
  key: SignKey,
  env: Record<string, string | undefined> = process.env,
): Promise<SignResult> {
  if (!reg.exportArtifact) throw new RunError(`registry "${reg.name}" (${reg.type}) cannot store signatures`);
  const subject = await reg.exportArtifact(name, { digest: manifestDigest });
  const sig = await signPayload(signaturePayload(name, manifestDigest), key, env);
  const same = (await listSignatures(reg, name, manifestDigest)).find((s) => s.signature.equals(sig));
  if (same) return { referrer: same.referrer, existed: true };
  const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const manifest = signatureManifest(
    { digest: manifestDigest, size: subject.manifest.length, mediaType: subject.manifestMediaType },
    name,
    sig,
    created,
  );
  await attach(reg, name, manifest, sig);
  return { referrer: digestOf(manifest), existed: false };
}

/** Copies every signature of name@manifestDigest from `from` to `to` (the same referrer bytes); returns how many were new. */
export async function copySignatures(from: Registry, to: Registry, name: string, manifestDigest: string): Promise<number> {
  const have = new Set((await listSignatures(to, name, manifestDigest)).map((s) => s.referrer));
  let n = 0;
  for (const s of await listSignatures(from, name, manifestDigest)) {
    if (have.has(s.referrer)) continue;
    await attach(to, name, s.manifest, s.signature);
    n++;
  }
  return n;
}

export type VerifyOutcome =
  | { ok: true; principal: string; key: string; signatures: number }
  | { ok: false; found: string; signatures: number; checks: SignatureCheck[] };

function describeCheck(c: SignatureCheck): string {
  if (c.ok) return `good signature by ${c.principal}`;
  if (c.reason === 'unknown key') return `unknown key (${c.key ?? '?'} is not in allowed_signers)`;
  if (c.reason === 'expired') return `expired (${c.detail})`;
  return `bad signature (${c.detail})`;
}

/** Checks the signatures of name@manifestDigest in `reg` against an allowed_signers file. */
export async function verifyArtifact(
  reg: Registry,
  name: string,
  manifestDigest: string,
  allowedSigners: string,
  onFound?: (signatures: Buffer[]) => Promise<void>,
): Promise<VerifyOutcome> {
  const sigs = (await listSignatures(reg, name, manifestDigest)).map((s) => s.signature);
  await onFound?.(sigs);
  return verifySignatures(sigs, name, manifestDigest, allowedSigners);
}

/** Checks signatures (sshsig blobs, e.g. kept in the local cache for --offline) of name@manifestDigest. */
export async function verifySignatures(
  sigs: Buffer[],
  name: string,
  manifestDigest: string,
  allowedSigners: string,
  none = 'no signature',
): Promise<VerifyOutcome> {
  if (!sigs.length) return { ok: false, found: none, signatures: 0, checks: [] };
  const payload = signaturePayload(name, manifestDigest);
  const checks: SignatureCheck[] = [];
  for (const s of sigs) {
    const c = await checkSignature(payload, s, allowedSigners);
    if (c.ok) return { ok: true, principal: c.principal, key: c.key, signatures: sigs.length };
    checks.push(c);
  }
  const found = checks.map(describeCheck);
  return {
    ok: false,
    found: sigs.length === 1 ? found[0]! : `${sigs.length} signatures: ${found.join('; ')}`,
    signatures: sigs.length,
    checks,
  };
}

/** An artifact without a valid signature of an allowed principal. */
export class SignatureRefused extends RunError {}

/** The error of a refused artifact: what, which digest, what was found, against which file. */
export function refusal(registry: string, ref: string, manifestDigest: string, allowedSigners: string, outcome: VerifyOutcome): RunError {
  const found = outcome.ok ? 'a good signature' : outcome.found;
  return new SignatureRefused(
    `refusing ${ref} (${manifestDigest}) from registry "${registry}": ${found} — it needs a valid signature of a principal in ${allowedSigners}`,
  );
}

/** Who signed name@manifestDigest, for ls/inspect: the verified principal when an allowed_signers is given, else the keys. */
export async function signers(reg: Registry, name: string, manifestDigest: string, allowedSigners?: string): Promise<string[]> {
  const sigs = await listSignatures(reg, name, manifestDigest);
  const payload = signaturePayload(name, manifestDigest);
  const out: string[] = [];
  for (const s of sigs) {
    if (allowedSigners) {
      const c = await checkSignature(payload, s.signature, allowedSigners);
      out.push(c.ok ? `${c.principal} (${c.key}, verified)` : describeCheck(c));
    } else {
      const key = await signatureKey(payload, s.signature);
      out.push(key ? `${key} (not checked: no verify.allowed_signers)` : 'bad signature (does not cover this name and digest)');
    }
  }
  return out;
}
