/** Planning helpers for registry actions: expanded, then validated by the OCI grammar. */
import { validateDigest, validateName, validateTag } from '../registry/reference.js';
import type { PlanContext } from './types.js';

/** push/promote run in the orchestrator's own process (registry calls), which a timeout cannot kill mid-way. */
export const ORCHESTRATOR_NO_TIMEOUT = {
  why: 'it runs in the orchestrator, where a timeout could not stop it mid-way',
  hint: 'remove timeout; OCI registry calls are bounded by HADES_OCI_TIMEOUT and HADES_OCI_TRANSFER_TIMEOUT',
};

export function refField(ctx: PlanContext, raw: unknown, field: string, kind: 'name' | 'tag' | 'digest'): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  const v = ctx.expand(String(raw), field);
  const problem = kind === 'name' ? validateName(v) : kind === 'tag' ? validateTag(v) : validateDigest(v);
  if (problem) {
    ctx.problems.add(`${ctx.action.kind}.${field}: ${problem}`, ctx.fieldPos(field));
    return undefined;
  }
  return v;
}

export function registryField(ctx: PlanContext, raw: unknown, field: string): string | undefined {
  const v = typeof raw === 'string' ? ctx.expand(raw, field) : '';
  if (!v) {
    ctx.problems.add(`${ctx.action.kind}.${field}: expected a registry name`, ctx.fieldPos(field));
    return undefined;
  }
  return v;
}

export function digestEnv(manifestDigest: string, layerDigest: string): Record<string, string> {
  return { HADES_ARTIFACT_DIGEST: manifestDigest, HADES_ARTIFACT_SHA256: layerDigest.replace(/^sha256:/, '') };
}
