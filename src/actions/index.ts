/**
 * The action kinds this build knows. Adding a kind: write its module (an ActionModule with its
 * entry type, schema fragment, loader check, plan / describe / run) and add it to ACTIONS —
 * nothing else. The build (scripts/build-schema.mjs) puts its schema fragment into
 * schemas/hadesfile.schema.json; the entry union below and the dispatch follow from the list.
 */
import { describeAttempts } from '../config/attempts.js';
import { copyAction } from './copy.js';
import { gpgAction } from './gpg.js';
import { healthAction } from './health.js';
import { mkdirAction } from './mkdir.js';
import { promoteAction } from './promote.js';
import { pullAction } from './pull.js';
import { pushAction } from './push.js';
import { runAction } from './run.js';
import { templateAction } from './template.js';
import type { CheckChange } from './inspect.js';
import type { ActionModule, ActionOutcome, ActionRuntime, BaseEntry, PlanContext } from './types.js';
import { waitAction } from './wait.js';

/** Registration order is the order kinds are listed in messages and the schema. */
export const ACTIONS = [
  runAction,
  mkdirAction,
  copyAction,
  templateAction,
  waitAction,
  pushAction,
  pullAction,
  promoteAction,
  healthAction,
  gpgAction,
] as const;

type EntryOf<M> = M extends ActionModule<infer E> ? E : never;
/** Every planned action entry, as the registered modules declare them. */
export type ActionEntry = EntryOf<(typeof ACTIONS)[number]>;
export type ActionKind = (typeof ACTIONS)[number]['kind'];

// One table, built once. Each module is stored under its own kind, so a lookup by an entry's
// kind yields the module of that entry's type.
const byKind = new Map<string, ActionModule<BaseEntry>>();
for (const m of ACTIONS) byKind.set(m.kind, m as unknown as ActionModule<BaseEntry>);

/** The module of a kind named in a hadesfile (undefined for a kind this build does not know). */
export function actionModule(kind: string): ActionModule<BaseEntry> | undefined {
  return byKind.get(kind);
}

function moduleOf<E extends BaseEntry>(entry: E): ActionModule<E> {
  const m = byKind.get(entry.kind);
  if (!m) throw new Error(`internal: no action module for kind ${entry.kind}`);
  // The table maps every kind to the module that planned entries of that kind (see ACTIONS).
  return m as unknown as ActionModule<E>;
}

export function planAction(kind: string, spec: unknown, ctx: PlanContext): ActionEntry | undefined {
  return actionModule(kind)?.plan(spec, ctx) as ActionEntry | undefined;
}

/** The dry-run lines of an entry (also the command shown by action.start events). */
export function describeAction(entry: ActionEntry): string[] {
  const lines = moduleOf(entry).describe(entry);
  const attempts = describeAttempts(entry.attemptTimeoutMs, entry.retry);
  return attempts ? [...lines, attempts] : lines;
}

export function executeAction(entry: ActionEntry, rt: ActionRuntime): Promise<ActionOutcome> {
  return moduleOf(entry).run(entry, rt);
}

/** `--check`: whether the entry's kind has a read-only half (else it is listed as "would run"). */
export function canInspect(entry: ActionEntry): boolean {
  return moduleOf(entry).inspect !== undefined;
}

/** `--check`: the entry's read-only half, or undefined when its kind has none (it "would run"). */
export function inspectAction(entry: ActionEntry, rt: ActionRuntime): Promise<CheckChange> | undefined {
  const m = moduleOf(entry);
  return m.inspect ? m.inspect(entry, rt) : undefined;
}

/** Kinds whose presence makes a job run once per step on the orchestrator. */
export const ORCHESTRATOR_KINDS: ReadonlySet<string> = new Set(
  ACTIONS.filter((m) => 'runsOnOrchestrator' in m && m.runsOnOrchestrator).map((m) => m.kind),
);
