/**
 * `hades plan --check`: walks the RunPlan like the engine — steps, batches (hosts of a batch
 * concurrently), per host the guard then the actions in order — but runs only the read-only
 * half of each action (ActionModule.inspect: probes of shell/check.ts). run / push / promote /
 * health / gpg are listed as "would run", gates as "would ask"; nothing is written on a host,
 * no lock is taken, no hook runs. What cannot be known is said: an action after a "would run"
 * on the same host (or after one on the orchestrator) is marked "after a run action: may differ".
 * A step the selection leaves out (--steps, --from-step, --limit) is one check.step event.
 * Emits check.* events (engine/events.ts); the unified diff of text files is computed here.
 */
import { canInspect, describeAction, inspectAction } from '../actions/index.js';
import type { CheckChange, ChangeKind } from '../actions/inspect.js';
import type { ActionRuntime, ArtifactAccess, SourceFiles } from '../actions/types.js';
import { MASK, type Redactor } from '../env/secrets.js';
import { EXIT } from '../errors.js';
import type { ActionEntry, PlannedHost, RunPlan } from '../plan/types.js';
import { envScript } from '../shell/command.js';
import type { Transport } from '../transport/types.js';
import { unifiedDiff } from './diff.js';
import type { Emit, HadesEvent } from './events.js';

/** What a secret's value is replaced by in the masked re-plan (the diff's redaction compares the two renders). */
export const SECRET_MARK = '\u0001hades-secret\u0001';
const MARK_RE = /\u0001hades-secret\u0001/gi;

/** A CheckChange as events carry it (no bytes) plus what the check could not know. */
export interface CheckView extends Omit<CheckChange, 'text'> {
  /** The earlier action that runs before this one and may change what it finds. */
  after?: string;
}

export interface CheckOptions {
  transportFor(host: PlannedHost): Transport;
  emit: Emit;
  files: SourceFiles;
  artifacts: ArtifactAccess;
  redactor: Redactor;
  signal: AbortSignal;
  /** The same template entry rendered with every secret value replaced by SECRET_MARK (undefined: not available). */
  masked?(stepIndex: number, host: string, actionIndex: number): string | undefined;
}

export interface CheckResult {
  counts: Record<string, number>;
  exitCode: number;
}

const LINE_HIDDEN = `${MASK} (line hidden: the render uses a secret)`;

/** The human line of a change: "would create", "would replace (sha256 a→b)", "would chmod 0644→0755", "unchanged", … */
export function describeChange(v: CheckView, kindLabel: string): string {
  const short = (s?: string) => (s && /^[0-9a-f]{64}$/.test(s) ? s.slice(0, 12) : (s ?? '?'));
  const attrs: string[] = [];
  if (v.mode?.from) attrs.push(`chmod ${v.mode.from}→${v.mode.to}`);
  if (v.owner?.from) attrs.push(`chown ${v.owner.from}→${v.owner.to}`);
  const note = [
    v.message,
    v.missingParent ? `parent ${v.missingParent} does not exist now` : undefined,
    v.after ? `after ${v.after}: may differ` : undefined,
  ]
    .filter(Boolean)
    .join('; ');
  const tail = note ? ` — ${note}` : '';
  const what = `${kindLabel}${v.path ? ` ${v.path}` : ''}`;
  switch (v.change) {
    case 'create':
      return `would create ${what} (mode ${v.mode?.to ?? '-'}${v.owner ? `, owner ${v.owner.to}` : ''})${tail}`;
    case 'replace':
      return `would replace ${what} (sha256 ${short(v.sha256?.from)}→${short(v.sha256?.to)}${attrs.length ? `; ${attrs.join('; ')}` : ''})${tail}`;
    case 'chmod':
    case 'chown':
      return `would ${attrs.join(', ')} ${what}${tail}`;
    case 'unchanged':
      return `unchanged ${what}${tail}`;
    case 'refuse':
      return `would refuse ${what}: ${v.message ?? ''}`;
    case 'fail':
      return `would fail ${what}: ${v.message ?? ''}`;
    case 'gate':
      return `gate: would ask${v.message ? `: ${v.message}` : ''}`;
    case 'would-run':
      return `would run ${kindLabel}: ${v.message ?? ''}`;
    default:
      return `cannot tell ${what}${tail}`;
  }
}

/** Not valid UTF-8, or holding NUL: no text diff. */
function asText(b: Buffer): string | undefined {
  if (b.includes(0)) return undefined;
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : undefined;
}

/**
 * Which lines of a render that used a secret may be shown. `real` vs `masked` (same template,
 * secrets replaced by SECRET_MARK): a line that differs depends on a secret. A host line is
 * shown only when it equals a shown line of the new render, or (when every secret line's
 * masked form is known) matches none of the secret lines' patterns. Without a masked render
 * of the same line count, every changed line is hidden.
 */
export function secretFilter(real: string, masked: string | undefined): (line: string, side: 'old' | 'new') => string {
  const r = real.split('\n');
  const m = masked?.split('\n');
  if (!m || m.length !== r.length) return () => LINE_HIDDEN;
  const shown = new Set<string>();
  const patterns: RegExp[] = [];
  let unknown = false;
  const hiddenNew = new Set<string>();
  for (let i = 0; i < r.length; i++) {
    if (r[i] === m[i]) {
      shown.add(r[i]!);
      continue;
    }
    hiddenNew.add(r[i]!);
    const parts = m[i]!.split(MARK_RE);
    if (parts.length < 2) unknown = true;
    else patterns.push(new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's'));
  }
  return (line, side) => {
    if (side === 'new') return hiddenNew.has(line) && !shown.has(line) ? LINE_HIDDEN : line;
    if (shown.has(line)) return line;
    if (unknown || patterns.some((p) => p.test(line))) return LINE_HIDDEN;
    return line;
  };
}

function usesSecret(entry: ActionEntry, redactor: Redactor): boolean {
  if ((entry.kind !== 'template' && entry.kind !== 'copy') || entry.source.type !== 'inline') return false;
  const src = entry.source;
  return (src.uses ?? []).some((n) => redactor.isSecret(n)) || redactor.text(src.content) !== src.content;
}

const AFTER_KINDS = new Set(['run', 'push', 'promote', 'gpg']);

export async function checkPlan(plan: RunPlan, opts: CheckOptions): Promise<CheckResult> {
  const emit = (e: Omit<HadesEvent, 'runId' | 'ts'>) => opts.emit({ runId: plan.runId, ts: new Date().toISOString(), ...e } as HadesEvent);
  const counts: Record<string, number> = {};
  const count = (k: string) => {
    counts[k] = (counts[k] ?? 0) + 1;
  };
  let failed = false;
  /** Per host across steps: the first earlier action that would run, and the directories mkdir would create. */
  const state = new Map<string, { after?: string; creates: string[] }>();
  /** An orchestrator step's action that would run (push, a local run): every later action may differ. */
  let orchestratorAfter: string | undefined;

  /** Checks one host; its events are collected and emitted after the batch, hosts in plan (inventory) order. */
  async function checkHost(
    stepIndex: number,
    stepName: string,
    ph: PlannedHost,
    onOrchestrator: boolean,
    emit: (e: Omit<HadesEvent, 'runId' | 'ts'>) => void,
  ): Promise<string | undefined> {
    const st = state.get(ph.host) ?? { creates: [] };
    state.set(ph.host, st);
    const base = { step: stepName, stepIndex, host: ph.host };
    let transport: Transport | undefined;
    const connect = async (): Promise<Transport> => {
      if (!transport) {
        const t = opts.transportFor(ph);
        await t.connect();
        transport = t;
      }
      return transport;
    };
    try {
      // Connected once, up front, when anything is probed: a host that cannot be reached is one line, not one per action.
      if (ph.guard || ph.actions.some(canInspect)) await connect();
      if (ph.guard) {
        const t = await connect();
        const res = await t.exec(ph.guard.exec, { stdin: envScript(ph.env), signal: opts.signal });
        if (res.exitCode !== 0) {
          count('skipped hosts');
          emit({
            type: 'check.host',
            ...base,
            status: 'skipped',
            message: `guard exited ${res.exitCode ?? res.signal}: ${ph.guard.command}: not checked`,
          });
          return undefined;
        }
      }
    } catch (e) {
      failed = true;
      count('hosts not checked');
      emit({ type: 'check.host', ...base, status: 'failed', message: `cannot check: ${(e as Error).message}` });
      return undefined;
    }
    let hostAfter: string | undefined;
    for (const entry of ph.actions) {
      const a = { ...base, action: entry.title, actionIndex: entry.index, kind: entry.kind };
      const after = st.after ?? orchestratorAfter ?? hostAfter;
      let view: CheckView;
      let diff: string | undefined;
      try {
        const rt: ActionRuntime = {
          transport: await connect(),
          host: ph,
          step: stepName,
          signal: opts.signal,
          stopSignal: opts.signal,
          output: () => undefined,
          gate: {
            approve: () => Promise.reject(new Error('internal: --check never asks a gate')),
          },
          files: opts.files,
          artifacts: opts.artifacts,
          env: { ...ph.env },
          attempt: () => undefined,
        };
        const pending = inspectAction(entry, rt);
        if (!pending) view = wouldRun(entry);
        else {
          const c = await pending;
          const { text, ...rest } = c;
          view = rest;
          if (text) diff = makeDiff(entry, text, c.path ?? '', stepIndex, ph.host, c.change === 'create');
          else if (c.change === 'replace' && !c.noDiff) view.noDiff = 'binary';
        }
      } catch (e) {
        view = { change: 'fail', message: (e as Error).message };
      }
      if (view.sha256?.from && usesSecret(entry, opts.redactor)) view.sha256 = { ...view.sha256, from: MASK };
      if (
        view.missingParent &&
        // mkdir P creates P and its missing parents
        st.creates.some((d) => d === view.missingParent || d.startsWith(`${view.missingParent}/`))
      )
        view.message = [view.message, 'an earlier mkdir creates its parent'].filter(Boolean).join('; ');
      else if (view.missingParent && !after) {
        view = { ...view, change: 'fail', message: `parent directory ${view.missingParent} does not exist: the run fails` };
        delete view.missingParent;
      }
      // What cannot be known now (a source not there, a tag that does not resolve) fails the run unless an earlier action may change it.
      if (view.change === 'unknown' && !after) view.change = 'fail';
      if (entry.kind === 'mkdir' && view.change === 'create' && view.path) st.creates.push(view.path);
      if (after && view.change !== 'would-run' && view.change !== 'gate') view.after = after;
      if (view.change === 'fail' || view.change === 'refuse') failed = true;
      count(view.change);
      emit({
        type: 'check.change',
        ...a,
        status: view.change,
        message: describeChange(view, entry.kind),
        change: view,
        ...(diff ? { diff } : {}),
      });
      if (AFTER_KINDS.has(entry.kind)) hostAfter ??= `${entry.title} (step ${stepName})`;
      if (hostAfter && !onOrchestrator) st.after ??= hostAfter;
    }
    return hostAfter;
  }

  function makeDiff(
    entry: ActionEntry,
    text: { old: Buffer; new: Buffer },
    path: string,
    stepIndex: number,
    host: string,
    created: boolean,
  ): string | undefined {
    const oldText = asText(text.old);
    const newText = asText(text.new);
    if (oldText === undefined || newText === undefined) return undefined;
    const show = usesSecret(entry, opts.redactor) ? secretFilter(newText, opts.masked?.(stepIndex, host, entry.index)) : undefined;
    return (
      unifiedDiff(oldText, newText, { old: created ? '/dev/null' : `${path} (on ${host})`, new: `${path} (planned)` }, show) || undefined
    );
  }

  for (const step of plan.steps) {
    if (step.skipped) {
      // --steps / --from-step / --limit / --resume left it out: said, as the run says it (step.end skipped).
      count('skipped steps');
      emit({ type: 'check.step', step: step.name, stepIndex: step.index, status: 'skipped', message: step.skipped });
      continue;
    }
    const onOrchestrator = step.runsOn === 'orchestrator';
    let stepAfter: string | undefined;
    for (const batch of step.batches) {
      const held = batch.hosts.map(() => [] as Array<Omit<HadesEvent, 'runId' | 'ts'>>);
      const afters = await Promise.all(
        batch.hosts.map((h, i) => checkHost(step.index, step.name, h, onOrchestrator, (e) => held[i]!.push(e))),
      );
      for (const e of held.flat()) emit(e);
      stepAfter ??= afters.find(Boolean);
    }
    if (onOrchestrator && stepAfter) orchestratorAfter ??= stepAfter;
  }
  emit({ type: 'check.end', status: failed ? 'failed' : 'ok', counts, message: summaryLine(counts) });
  return { counts, exitCode: failed ? EXIT.failed : EXIT.ok };
}

function wouldRun(entry: ActionEntry): CheckView {
  if (entry.kind === 'wait' && entry.durationMs === undefined)
    return { change: 'gate', ...(entry.message ? { message: entry.message } : {}) };
  return { change: 'would-run', message: (describeAction(entry)[0] ?? entry.title).replace(/^\$ /, '') };
}

const ORDER: ChangeKind[] = ['create', 'replace', 'chmod', 'chown', 'unchanged', 'would-run', 'gate', 'refuse', 'fail', 'unknown'];

export function summaryLine(counts: Record<string, number>): string {
  const keys = [...ORDER.filter((k) => counts[k]), ...Object.keys(counts).filter((k) => !ORDER.includes(k as ChangeKind))];
  return keys.length ? keys.map((k) => `${counts[k]} ${k}`).join(', ') : 'nothing to check';
}
