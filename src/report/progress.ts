/**
 * Transfer progress as people read it: "48.0/200 MiB  31 MiB/s". A tracker per running
 * action keeps the last counts (from `action.progress` events, by their timestamps) and the
 * recent rate; the plain view prints a line only every PLAIN_EVERY_MS, once a transfer has
 * run that long (small transfers print nothing extra).
 */
import type { HadesEvent } from '../engine/events.js';

export const PLAIN_EVERY_MS = 5000;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function scale(n: number): { v: number; u: number } {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return { v, u };
}

function num(v: number, u: number): string {
  return u === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

export function formatBytes(n: number): string {
  const { v, u } = scale(n);
  return `${num(v, u)} ${UNITS[u]}`;
}

/** "48.0/200 MiB" (both in the total's unit), or "48.0 MiB" without a total. */
export function formatAmount(bytes: number, total?: number): string {
  if (total === undefined) return formatBytes(bytes);
  const { u } = scale(total);
  const d = 1024 ** u;
  return `${num(bytes / d, u)}/${num(total / d, u)} ${UNITS[u]}`;
}

export interface ProgressView {
  bytes: number;
  total?: number;
  /** Bytes per second over the recent window, once two samples exist. */
  rate?: number;
}

export function formatProgress(p: ProgressView): string {
  return `${formatAmount(p.bytes, p.total)}${p.rate !== undefined ? `  ${formatBytes(p.rate)}/s` : ''}`;
}

/** Per action (host + action index): counts, and the rate over the last few seconds. */
export class ProgressTracker {
  private readonly samples = new Map<string, Array<{ t: number; bytes: number }>>();
  private readonly started = new Map<string, number>();
  private readonly printed = new Map<string, number>();

  private key(e: HadesEvent): string {
    return `${e.stepIndex}/${e.host}/${e.actionIndex}`;
  }

  start(e: HadesEvent): void {
    const k = this.key(e);
    this.started.set(k, Date.parse(e.ts));
    this.samples.delete(k);
    this.printed.delete(k);
  }

  update(e: HadesEvent): ProgressView {
    const k = this.key(e);
    const t = Date.parse(e.ts);
    const list = this.samples.get(k) ?? [];
    list.push({ t, bytes: e.bytes ?? 0 });
    while (list.length > 2 && t - list[0]!.t > 3000) list.shift();
    this.samples.set(k, list);
    const first = list[0]!;
    const dt = (t - first.t) / 1000;
    const rate = dt > 0 ? Math.max(0, ((e.bytes ?? 0) - first.bytes) / dt) : undefined;
    return { bytes: e.bytes ?? 0, ...(e.total !== undefined ? { total: e.total } : {}), ...(rate !== undefined ? { rate } : {}) };
  }

  /** For plain output: true when this event should print (every PLAIN_EVERY_MS, after the first PLAIN_EVERY_MS). */
  shouldPrint(e: HadesEvent): boolean {
    const k = this.key(e);
    const t = Date.parse(e.ts);
    const since = this.printed.get(k) ?? this.started.get(k) ?? t;
    if (t - since < PLAIN_EVERY_MS) return false;
    this.printed.set(k, t);
    return true;
  }

  end(e: HadesEvent): void {
    const k = this.key(e);
    this.samples.delete(k);
    this.started.delete(k);
    this.printed.delete(k);
  }
}
