/**
 * The loader's view of the action kinds: which kinds exist (generated from the registered
 * modules' schema fragments, see scripts/build-schema.mjs) and the per-kind checks each
 * module owns. The checks are handed in by the caller (the CLI passes src/actions'
 * registry), so config/ depends on nothing above it.
 */
import type { Position } from '../errors.js';

/** What a kind's loader check sees: the action's value as written, and a way to report. */
export interface ActionCheck {
  kind: string;
  /** The action's value when it is a map (the `copy:` fields); undefined for scalars (`run:`). */
  value: Record<string, unknown> | undefined;
  /** True when the field is present and not null. */
  has(field: string): boolean;
  /** Where a field's key (or, with `at: 'value'`, its value) stands; the kind key when absent. */
  pos(field?: string, at?: 'key' | 'value'): Position;
  error(message: string, pos: Position, hint: string): void;
  /** The declaring job: its name and the artifacts it declares. */
  job: { name: string; artifacts: string[] };
}

export interface ActionKindRules {
  kind: string;
  /** The kind's value has a file mode (0644), parsed from its source token by the loader. */
  hasMode: boolean;
  /** The kind takes `retries`/`delay`/`backoff` (see ./attempts.ts). */
  retryable: boolean;
  /** Why the kind takes no action-level `timeout` (a gate has its own), with a hint. */
  noTimeout?: { why: string; hint: string };
  check?(c: ActionCheck): void;
}

/** Per-kind rules by kind name. */
export type ActionKindTable = ReadonlyMap<string, ActionKindRules>;

/** The table for a list of action modules: `hasMode` from each kind's schema fragment. */
export function kindTable(
  kinds: readonly {
    kind: string;
    schema: Record<string, unknown>;
    retryable?: boolean;
    noTimeout?: { why: string; hint: string };
    check?(c: ActionCheck): void;
  }[],
): ActionKindTable {
  return new Map(
    kinds.map((k) => {
      const props = k.schema.properties as Record<string, unknown> | undefined;
      return [
        k.kind,
        {
          kind: k.kind,
          hasMode: !!props && 'mode' in props,
          retryable: k.retryable === true,
          ...(k.noTimeout ? { noTimeout: k.noTimeout } : {}),
          ...(k.check ? { check: k.check } : {}),
        },
      ];
    }),
  );
}
