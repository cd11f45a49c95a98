/**
 * Rendered templates that used a secret are never shown: not their content (a filter such
 * as `| upper` transforms the secret past any value scrubbing), not their sha256 (a digest
 * of a low-entropy secret can be brute-forced). Their digests become scrubbed values, so
 * every view — dry-run, action.start commands, action.end details — shows the mask.
 */
import type { Redactor } from '../env/secrets.js';
import { MASK } from '../env/secrets.js';
import type { ByteSource, RunPlan } from '../plan/types.js';

/** The secrets a rendered template used (empty: it may be shown, value-scrubbed). */
export function secretUses(source: ByteSource, redactor: Redactor): string[] {
  if (source.type !== 'inline') return [];
  const named = (source.uses ?? []).filter((n) => redactor.isSecret(n));
  if (named.length) return named;
  return redactor.text(source.content) !== source.content ? ['a secret value'] : [];
}

export function hiddenNote(uses: string[]): string {
  return `content hidden: uses secret ${uses.join(', ')}`;
}

function* inlineSources(plan: RunPlan): Generator<ByteSource & { type: 'inline' }> {
  for (const s of plan.steps)
    for (const b of s.batches)
      for (const h of b.hosts)
        for (const a of h.actions) if ((a.kind === 'template' || a.kind === 'copy') && a.source.type === 'inline') yield a.source;
}

/** Makes the digests (whole and the 12-character short form) of secret renders scrubbed values. */
export function learnTemplateDigests(plan: RunPlan, redactor: Redactor): void {
  for (const src of inlineSources(plan))
    if (secretUses(src, redactor).length) {
      redactor.addValue(src.sha256);
      redactor.addValue(src.sha256.slice(0, 12));
    }
}

/** The RunPlan as `--dry-run --output json` prints it: env masked, secret renders hidden, text scrubbed. */
export function displayPlan(plan: RunPlan, redactor: Redactor): RunPlan {
  return redactor.deep({
    ...plan,
    steps: plan.steps.map((s) => ({
      ...s,
      env: redactor.env(s.env),
      batches: s.batches.map((b) => ({
        ...b,
        hosts: b.hosts.map((h) => ({
          ...h,
          env: redactor.env(h.env),
          actions: h.actions.map((a) => {
            if ((a.kind !== 'template' && a.kind !== 'copy') || a.source.type !== 'inline') return a;
            const uses = secretUses(a.source, redactor);
            return uses.length ? { ...a, source: { ...a.source, content: `(${hiddenNote(uses)})`, sha256: MASK } } : a;
          }),
        })),
      })),
    })),
  });
}
