/** The lines that say which earlier run a resume/replay/rollback continues, and what it pins (dry-run, before and after the run). */
import type { RunOrigin } from '../plan/types.js';

export function originLines(o: RunOrigin): string[] {
  const what = o.mode === 'resume' ? 'resume of' : o.mode === 'rollback' ? 'rollback: replay of' : 'replay of';
  const out = [
    `${what} run ${o.runId} (${o.status}${o.startedAt ? `, started ${o.startedAt}` : ''}): its env per step${o.secretsFromEnv.length ? ' (non-secret values as recorded)' : ''} and its artifact digests`,
  ];
  if (o.secretsFromEnv.length)
    out.push(`  secrets ${o.secretsFromEnv.join(', ')}: values from the current environment / env files (the audit log keeps names only)`);
  if (o.newSteps?.length) out.push(`  steps not in that run (today's env): ${o.newSteps.join(', ')}`);
  for (const p of o.pins) out.push(`  digest ${p.registry}/${p.name}:${p.tag} -> ${p.digest} (pinned; the tag is not followed)`);
  for (const u of o.unpinned) out.push(`  ${u}: not resolved by that run, looked up now`);
  if (!o.pins.length && !o.unpinned.length) out.push('  no artifacts are pulled or promoted by the steps that run');
  if (o.mode === 'resume') {
    const byStep = new Map<string, string[]>();
    for (const [s, h] of o.done) byStep.set(s, [...(byStep.get(s) ?? []), h]);
    if (!byStep.size) out.push('  nothing ended ok in that run: every step and host runs');
    for (const [s, hs] of byStep) out.push(`  step ${s}: skipping ${hs.join(', ')} (ended ok in ${o.runId})`);
  }
  for (const d of o.shapeChanged ?? []) out.push(`  plan changed since: ${d}${o.mode === 'resume' ? ' (--force)' : ''}`);
  return out;
}
