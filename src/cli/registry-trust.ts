/**
 * `hades registry sign <registry> NAME:TAG --key K` and `hades registry verify <registry>
 * NAME:TAG` (README "Trust"): the same signing and verification as push/pull, by hand. `verify`
 * exits 0 only for a valid signature of an allowed principal, else 1 naming what was found.
 */
import { resolve } from 'node:path';
import type { Hadesfile, RegistrySpec } from '../config/model.js';
import { EXIT, RunError, UserError } from '../errors.js';
import { parseReference } from '../registry/reference.js';
import { refusal, signArtifact, signers, verifyArtifact } from '../registry/trust.js';
import type { Registry } from '../registry/types.js';
import { loadRegistryFiles as loadFiles, openForCli, printErr, printResult } from './registry-output.js';
import type { RegOptions } from './registry-handlers.js';

function specOf(hf: Hadesfile, name: string): RegistrySpec {
  const spec = hf.registries.get(name);
  if (!spec)
    throw new UserError({
      message: `unknown registry "${name}"`,
      hint: hf.registries.size ? `registries: ${[...hf.registries.keys()].join(', ')}` : 'no registries are declared',
    });
  return spec;
}

function refOf(text: string): { name: string; tag?: string; digest?: string } {
  const r = parseReference(text);
  if (typeof r === 'string') throw new UserError({ message: `${JSON.stringify(text)}: ${r}`, hint: 'write NAME:TAG (or NAME@sha256:…)' });
  if (r.tag === undefined && r.digest === undefined)
    throw new UserError({ message: `${JSON.stringify(text)} has no tag or digest`, hint: 'write NAME:TAG or NAME@sha256:…' });
  return r;
}

function print(opts: RegOptions, json: unknown, text: string): void {
  printResult(opts.output, json, text);
}

export async function signCommand(
  regName: string,
  text: string,
  opts: RegOptions & { key?: string; passphraseEnv?: string },
): Promise<number> {
  const hf = loadFiles(opts);
  const spec = specOf(hf, regName);
  const key = opts.key
    ? { key: resolve(process.cwd(), opts.key), ...(opts.passphraseEnv ? { passphraseEnv: opts.passphraseEnv } : {}) }
    : spec.signWith;
  if (!key)
    throw new UserError({
      message: `registry sign needs a key`,
      hint: `add --key ~/.ssh/release_ed25519 (or sign_with: on registry "${regName}")`,
    });
  const r = refOf(text);
  const reg = openForCli(spec);
  const d = await reg.resolve(r.name, r);
  const res = await signArtifact(reg, r.name, d.manifestDigest, key);
  print(
    opts,
    { registry: regName, name: r.name, digest: d.manifestDigest, referrer: res.referrer, existed: res.existed },
    `${res.existed ? 'already signed' : 'signed'} ${text} (${d.manifestDigest}) with ${key.key}: signature ${res.referrer}`,
  );
  return EXIT.ok;
}

export async function verifyCommand(regName: string, text: string, opts: RegOptions & { allowedSigners?: string }): Promise<number> {
  const hf = loadFiles(opts);
  const spec = specOf(hf, regName);
  const allowed = opts.allowedSigners ? resolve(process.cwd(), opts.allowedSigners) : spec.verify?.allowedSigners;
  if (!allowed)
    throw new UserError({
      message: `registry verify needs an allowed_signers file`,
      hint: `add --allowed-signers FILE (or verify: {allowed_signers: FILE} on registry "${regName}")`,
    });
  const r = refOf(text);
  const reg = openForCli(spec);
  const d = await reg.resolve(r.name, r);
  const outcome = await verifyArtifact(reg, r.name, d.manifestDigest, allowed);
  if (opts.output === 'json')
    print(opts, { registry: regName, name: r.name, digest: d.manifestDigest, allowedSigners: allowed, ...outcome }, '');
  if (!outcome.ok) {
    const e = refusal(regName, text, d.manifestDigest, allowed, outcome);
    if (opts.output === 'json') {
      printErr(`hades: ${e.message}`);
      return EXIT.failed;
    }
    throw e;
  }
  if (opts.output !== 'json')
    print(opts, {}, `good signature: ${text} (${d.manifestDigest}) signed by ${outcome.principal} (${outcome.key})`);
  return EXIT.ok;
}

/** "signed by" lines of inspect/ls: verified principals when the registry has verify:, else the keys. */
export async function signedBy(spec: RegistrySpec, name: string, manifestDigest: string): Promise<string[]> {
  try {
    return await signers(openForCli(spec), name, manifestDigest, spec.verify?.allowedSigners);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new RunError(`registry "${spec.name}": cannot list the signatures of ${name}@${manifestDigest}: ${(e as Error).message}`);
  }
}

/** `registry push` / `registry promote`: the destination's `sign_with:` signs what they publish. */
export async function signByDefault(spec: RegistrySpec, reg: Registry, name: string, manifestDigest: string): Promise<string> {
  if (!spec.signWith) return '';
  const res = await signArtifact(reg, name, manifestDigest, spec.signWith);
  return res.existed ? ' (already signed)' : ` (signed with ${spec.signWith.key})`;
}

/** `registry pull` from a registry with `verify:`: refused (nothing written) unless signed by an allowed principal. */
export async function verifyByDefault(spec: RegistrySpec, reg: Registry, ref: string, name: string, manifestDigest: string): Promise<void> {
  if (!spec.verify) return;
  const outcome = await verifyArtifact(reg, name, manifestDigest, spec.verify.allowedSigners);
  if (!outcome.ok) throw refusal(spec.name, ref, manifestDigest, spec.verify.allowedSigners, outcome);
}
