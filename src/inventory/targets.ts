/** Targets → hosts, in inventory order, de-duplicated. Pure. */
import type { Hadesfile, HostSpec } from '../config/model.js';

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

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
