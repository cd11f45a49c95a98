/**
 * The trust fields of registry actions (README "Trust"): `sign: {key, passphrase_env?}` on push
 * and promote (default: the destination registry's `sign_with:`), `verify: {allowed_signers}`
 * on pull (default: the registry's `verify:`). Planned here, so the dry-run shows them.
 */
import { resolveUserPath } from '../config/build.js';
import type { SignKeySpec, VerifySpec } from '../config/model.js';
import { signKeyOf, verifyOf } from '../config/trust.js';
import type { PlanContext } from './types.js';

export interface PlannedSign extends SignKeySpec {
  /** "sign:" or `registry "prod" sign_with:` */
  from: string;
}

export interface PlannedVerify extends VerifySpec {
  from: string;
}

const pathIn = (ctx: PlanContext, field: string) => (p: string) => resolveUserPath(ctx.job.baseDir, ctx.expand(p, field));

export function signField(ctx: PlanContext, raw: unknown, registry: string): PlannedSign | undefined {
  const own = signKeyOf(raw, pathIn(ctx, 'sign'));
  if (own) return { ...own, from: 'sign:' };
  const dflt = ctx.registries?.get(registry)?.signWith;
  return dflt ? { ...dflt, from: `registry "${registry}" sign_with:` } : undefined;
}

export function verifyField(ctx: PlanContext, raw: unknown, registry: string): PlannedVerify | undefined {
  const own = verifyOf(raw, pathIn(ctx, 'verify'));
  if (own) return { ...own, from: 'verify:' };
  const dflt = ctx.registries?.get(registry)?.verify;
  return dflt ? { ...dflt, from: `registry "${registry}" verify:` } : undefined;
}

export function signLine(s: PlannedSign, ref: string): string {
  return `sign ${ref} with ${s.key}${s.passphraseEnv ? ` (passphrase from $${s.passphraseEnv})` : ''} (${s.from}): ssh-keygen -Y sign -n hades-artifact over its name and manifest digest, attached as an OCI referrer`;
}

export function verifyLine(v: PlannedVerify): string {
  return `verify signature (allowed_signers ${v.allowedSigners}, ${v.from}) once per run on the orchestrator: before the host locks and step 1 (for an artifact this plan publishes: when the pull first runs), before any host receives a byte; refused unless signed by an allowed principal`;
}

export const SIGN_SCHEMA = {
  sign: { $ref: '#/definitions/signKey' },
};
