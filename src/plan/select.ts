/**
 * After planning, pure: the plan's shape and fingerprint (stored in the audit log, compared
 * by `--resume`), `--steps` / `--from-step` step selection, `--resume`'s skipping of the
 * (step, host) pairs an earlier run finished, and the artifact digests a replay pins.
 */
import { createHash } from 'node:crypto';
import type { Hadesfile } from '../config/model.js';
import { closest } from '../config/suggest.js';
import { UserError, type Problem } from '../errors.js';
import type { RunPlan } from './types.js';

/** What `--resume` compares: the steps in order, each with its job and the kinds of its job's actions. */
export interface ShapeStep {
  step: string;
  job: string;
  actions: string[];
}

export function planShape(plan: RunPlan, hf: Hadesfile): ShapeStep[] {
  return plan.steps.map((s) => ({
    step: s.name,
    job: s.job,
    actions: (hf.jobs.get(s.job)?.actions ?? []).map((a) => (a.name ? `${a.kind} "${a.name}"` : a.kind)),
  }));
}

export function fingerprint(shape: ShapeStep[]): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(shape)).digest('hex')}`;
}

/** What differs between two shapes, one line each (empty: the same). */
export function shapeDiff(was: ShapeStep[], now: ShapeStep[]): string[] {
  const out: string[] = [];
  const names = (s: ShapeStep[]) => s.map((x) => x.step).join(', ');
  if (names(was) !== names(now)) out.push(`steps: were [${names(was)}], now [${names(now)}]`);
  for (const n of now) {
    const w = was.find((x) => x.step === n.step);
    if (!w) continue;
    if (w.job !== n.job) out.push(`step "${n.step}": job was "${w.job}", now "${n.job}"`);
    else if (w.actions.join(', ') !== n.actions.join(', '))
      out.push(`step "${n.step}" (job "${n.job}"): actions were [${w.actions.join(', ')}], now [${n.actions.join(', ')}]`);
  }
  return out;
}

/** Splits repeatable, comma-separated flag values. */
export const splitList = (args: string[]): string[] =>
  args
    .flatMap((a) => a.split(','))
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * `--steps a,b` / `--from-step b`: the other steps are marked skipped (shown by dry-run and
 * the summary). Unknown names: exit 2 with "did you mean".
 */
export function selectSteps(plan: RunPlan, steps: string[], fromStep: string | undefined): void {
  if (!steps.length && fromStep === undefined) return;
  const names = plan.steps.map((s) => s.name);
  const problems: Problem[] = [];
  const check = (flag: string, n: string) => {
    if (names.includes(n)) return;
    const near = closest(n, names);
    problems.push({
      message: `${flag}: plan "${plan.plan}" has no step "${n}"`,
      hint: `${near ? `did you mean "${near}"? ` : ''}its steps: ${names.join(', ')}`,
    });
  };
  if (steps.length && fromStep !== undefined) problems.push({ message: '--steps and --from-step together', hint: 'give one of them' });
  for (const s of steps) check('--steps', s);
  if (fromStep !== undefined) check('--from-step', fromStep);
  if (problems.length) throw new UserError(problems);
  plan.stepSelection = steps.length ? { steps } : { fromStep: fromStep! };
  const from = fromStep !== undefined ? names.indexOf(fromStep) : -1;
  for (const s of plan.steps) {
    if (s.skipped) continue;
    if (steps.length && !steps.includes(s.name)) s.skipped = `not selected by --steps ${steps.join(',')}`;
    if (fromStep !== undefined && s.index < from) s.skipped = `before --from-step ${fromStep}`;
  }
}

/**
 * `--resume`: the (step, host) pairs the earlier run ended ok are taken out of their
 * batches (empty batches dropped); a step with none left is skipped. Returns what was
 * taken out, per step, for the banner.
 */
export function skipDone(plan: RunPlan, done: Set<string>, runId: string): Map<string, string[]> {
  const taken = new Map<string, string[]>();
  for (const s of plan.steps) {
    if (s.skipped) continue;
    const gone: string[] = [];
    const batches = s.batches
      .map((b) => ({
        ...b,
        hosts: b.hosts.filter((h) => {
          if (!done.has(pairKey(s.name, h.host))) return true;
          gone.push(h.host);
          return false;
        }),
      }))
      .filter((b) => b.hosts.length)
      .map((b, i) => ({ ...b, index: i }));
    if (!gone.length) continue;
    taken.set(s.name, gone);
    s.batches = batches;
    if (!batches.length) s.skipped = `every host ended ok in run ${runId}`;
  }
  return taken;
}

export const pairKey = (step: string, host: string): string => `${step}\0${host}`;

/** One resolved artifact: registry, name, tag → manifest digest. */
export interface ArtifactPin {
  registry: string;
  name: string;
  tag: string;
  digest: string;
}

export const pinKey = (registry: string, name: string, tag: string): string => `${registry}\0${name}\0${tag}`;

/**
 * A replay's artifacts: every pull by tag that run resolved becomes a pull by its digest
 * (a tag that moved since is not followed); a promote of such a tag is checked against the
 * digest before it copies. Returns the pins used, and the tags that run never resolved.
 */
export function pinArtifacts(plan: RunPlan, pins: Map<string, string>): { used: ArtifactPin[]; unpinned: string[] } {
  const used = new Map<string, ArtifactPin>();
  const unpinned = new Set<string>();
  for (const s of plan.steps) {
    if (s.skipped) continue;
    for (const b of s.batches)
      for (const h of b.hosts)
        for (const a of h.actions) {
          if (a.kind === 'pull' && a.tag !== undefined) {
            const k = pinKey(a.registry, a.name, a.tag);
            const d = pins.get(k);
            if (!d) {
              unpinned.add(`${a.registry}/${a.name}:${a.tag}`);
              continue;
            }
            used.set(k, { registry: a.registry, name: a.name, tag: a.tag, digest: d });
            a.pinnedTag = a.tag;
            a.digest = d;
            delete a.tag;
          } else if (a.kind === 'promote') {
            const k = pinKey(a.from, a.name, a.tag);
            const d = pins.get(k);
            if (!d) {
              unpinned.add(`${a.from}/${a.name}:${a.tag}`);
              continue;
            }
            used.set(k, { registry: a.from, name: a.name, tag: a.tag, digest: d });
            a.digest = d;
          }
        }
  }
  return { used: [...used.values()], unpinned: [...unpinned] };
}
