/**
 * The trust fields of the hadesfile (README "Trust"): `sign_with:` / `verify:` on a registry,
 * `sign:` on push and promote, `verify:` on pull. The schema checks their shape; this turns
 * them into the model, with paths made absolute by the caller's `path` function.
 */
import type { RegistryTrust, SignKeySpec, VerifySpec } from './model.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function signKeyOf(v: unknown, path: (p: string) => string): SignKeySpec | undefined {
  if (!isObj(v) || !str(v.key)) return undefined;
  return { key: path(v.key as string), ...(str(v.passphrase_env) ? { passphraseEnv: v.passphrase_env as string } : {}) };
}

export function verifyOf(v: unknown, path: (p: string) => string): VerifySpec | undefined {
  if (!isObj(v) || !str(v.allowed_signers)) return undefined;
  return { allowedSigners: path(v.allowed_signers as string) };
}

export function registryTrust(r: Record<string, unknown>, path: (p: string) => string): RegistryTrust {
  const signWith = signKeyOf(r.sign_with, path);
  const verify = verifyOf(r.verify, path);
  return { ...(signWith ? { signWith } : {}), ...(verify ? { verify } : {}) };
}
