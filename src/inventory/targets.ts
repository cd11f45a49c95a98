/** Targets → hosts, in inventory order, de-duplicated. Pure. */
import type { FailureBudget, Hadesfile, HostSpec, Parallelism } from '../config/model.js';

/** The synthetic host that orchestrator-side jobs run on (local jobs, gates, push). */
export const ORCHESTRATOR_HOST: HostSpec = Object.freeze({
  name: 'localhost',
  addr: 'localhost',
  local: true,
  order: -1,
  builtin: true,
  pos: { file: '(built-in)', line: 0, col: 0 },
}) as HostSpec;

export interface TargetResolution {
  hosts: HostSpec[];
  unknown: string[];
}

/** Each entry is a target name or a host name. Result is sorted by inventory order. */
export function resolveTargets(hf: Hadesfile, entries: string[]): TargetResolution {
  const seen = new Map<string, HostSpec>();
  const unknown: string[] = [];
  for (const entry of entries) {
    const target = hf.targets.get(entry);
    const names = target ? target.hosts : hf.hosts.has(entry) ? [entry] : undefined;
    if (!names) {
      unknown.push(entry);
      continue;
    }
    for (const n of names) {
      const h = hf.hosts.get(n);
      if (h) seen.set(n, h);
      else unknown.push(n);
    }
  }
  return { hosts: [...seen.values()].sort((a, b) => a.order - b.order), unknown };
}

/** Batch size for a step: all at once by default; a count; or a percent rounded up, min 1. */
export function batchSize(total: number, p: { kind: 'count'; n: number } | { kind: 'percent'; percent: number } | undefined): number {
  if (total === 0) return 1;
  if (!p) return total;
  if (p.kind === 'count') return Math.max(1, Math.min(p.n, total));
  return Math.max(1, Math.min(total, Math.ceil((total * p.percent) / 100)));
}

/**
 * The batches' sizes, in order, summing to `total`: one size (every batch that big, the
 * last one what is left), or a list — one batch per entry, the last entry repeated until
 * the hosts are done (Ansible's `serial` list). A percent is of `total`, rounded up, min 1.
 */
export function batchSizes(total: number, p: Parallelism | Parallelism[] | undefined): number[] {
  const list = Array.isArray(p) ? p : [p];
  const out: number[] = [];
  let left = total;
  for (let i = 0; left > 0; i++) {
    const n = Math.min(left, batchSize(total, list[Math.min(i, list.length - 1)]));
    out.push(n);
    left -= n;
  }
  return out;
}

/** `max_failures` as a number of hosts: a count as written, a percent of `total` rounded down. Undefined → 0. */
export function failureBudget(total: number, b: FailureBudget | undefined): number {
  if (!b) return 0;
  if (b.kind === 'count') return b.n;
  return Math.floor((total * b.percent) / 100);
}

/** Splits `items` into consecutive slices of the given sizes. */
export function slices<T>(items: T[], sizes: number[]): T[][] {
  const out: T[][] = [];
  let i = 0;
  for (const n of sizes) {
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A batch size or budget as written: "2", "50%"; a list as "1, 10%, 100%". */
export function asWritten(
  p:
    | { kind: 'count'; n: number }
    | { kind: 'percent'; percent: number }
    | Array<{ kind: 'count'; n: number } | { kind: 'percent'; percent: number }>,
): string {
  if (Array.isArray(p)) return p.map((x) => asWritten(x)).join(', ');
  return p.kind === 'count' ? String(p.n) : `${p.percent}%`;
}
