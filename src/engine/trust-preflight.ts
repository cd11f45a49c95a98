/**
 * Signature checks before a run touches anything (README "Trust"): every pull with `verify:`
 * whose artifact already exists when the run starts is resolved and verified before the host
 * locks are taken and before step 1 — a refusal stops the run with no host contacted. A pull
 * of an artifact the same plan publishes (a push or promote to that registry and name) is
 * verified when it runs instead (it does not exist yet), still once per run and before any
 * host receives a byte of it.
 */
import type { PullEntry } from '../actions/pull.js';
import type { RunPlan } from '../plan/types.js';
import { SignatureRefused } from '../registry/trust.js';
import type { RunArtifacts } from './artifacts.js';

export async function verifyBeforeRun(plan: RunPlan, artifacts: RunArtifacts): Promise<void> {
  const produced = new Set<string>();
  const pulls = new Map<string, PullEntry>();
  for (const step of plan.steps) {
    if (step.skipped) continue;
    for (const b of step.batches)
      for (const h of b.hosts)
        for (const a of h.actions) {
          if (a.kind === 'push') produced.add(`${a.registry}\0${a.name}`);
          if (a.kind === 'promote') produced.add(`${a.to}\0${a.name}`);
          if (a.kind === 'pull' && a.verify && !produced.has(`${a.registry}\0${a.name}`))
            pulls.set(`${a.registry}\0${a.name}\0${a.tag ?? ''}\0${a.digest ?? ''}\0${a.verify.allowedSigners}`, a);
        }
  }
  for (const e of pulls.values()) {
    const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
    try {
      const desc = await artifacts.resolve(
        e.registry,
        e.name,
        {
          ...(e.tag ? { tag: e.tag } : {}),
          ...(e.digest ? { digest: e.digest } : {}),
        },
        e.platform, // a multi-platform artifact without platform: is verified per host when it runs
      );
      await artifacts.verifySignature(desc, ref, e.verify!.allowedSigners);
    } catch (err) {
      // Only a refusal stops the run here; anything else (not found, unreachable) is the pull's to report when it runs.
      if (err instanceof SignatureRefused) throw err;
    }
  }
}
