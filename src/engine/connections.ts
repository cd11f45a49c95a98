/**
 * Connection scheduling for the engine (issue 16): the plan says which batches use each
 * host, so the engine can tell the connection budget (transport/budget.ts, --max-connections)
 * what it needs next.
 *
 * - A host's job holds its connection (the budget never closes it to make room mid-job).
 * - When a batch starts, the next batch's hosts are prefetched: connected only into slots
 *   that are free and that nobody waits for, so warm connections keep their one-round-trip
 *   speed without ever delaying the current batch.
 * - After a host's job, the host is told when it is needed next; with no later work its
 *   connection is closed at once (unless the run holds that host's lock: the release at the
 *   end needs it, so it stays, first in line to be closed when room is needed).
 * - A batch larger than the budget queues: its hosts get slots first come, first served, as
 *   the ones before them finish.
 * Nothing here changes what runs, only when connections open and close.
 */
import type { PlannedHost, RunPlan } from '../plan/types.js';
import type { Transport } from '../transport/types.js';

/** The host's transport, or undefined when it cannot be built (a jump loop…: the host's job reports that in its turn). */
function transportOf(transportFor: (host: PlannedHost) => Transport, h: PlannedHost): Transport | undefined {
  try {
    return transportFor(h);
  } catch {
    return undefined;
  }
}

/** Every batch that will run, in run order (steps, then their batches; skipped steps have none), keyed step/batch. */
function batchesOf(plan: RunPlan): Array<{ key: string; hosts: PlannedHost[] }> {
  return plan.steps.filter((s) => !s.skipped).flatMap((s) => s.batches.map((b) => ({ key: `${s.index}/${b.index}`, hosts: b.hosts })));
}

/** Host → the ordinals of the batches that use it, ascending. */
export function hostUses(plan: RunPlan): Map<string, number[]> {
  const uses = new Map<string, number[]>();
  batchesOf(plan).forEach((b, i) => {
    for (const h of b.hosts) {
      const u = uses.get(h.host) ?? [];
      if (u.at(-1) !== i) u.push(i);
      uses.set(h.host, u);
    }
  });
  return uses;
}

/** Before the run (the preflight and the locks): each host's first use, so the budget keeps the first batches' connections. */
export function scheduleFirstUses(plan: RunPlan, transportFor: (host: PlannedHost) => Transport): void {
  const uses = hostUses(plan);
  const seen = new Set<string>();
  for (const b of batchesOf(plan))
    for (const h of b.hosts) {
      if (seen.has(h.host)) continue;
      seen.add(h.host);
      transportOf(transportFor, h)?.schedule?.(uses.get(h.host)![0]!);
    }
}

export class ConnectionSchedule {
  private readonly batches: Array<{ key: string; hosts: PlannedHost[] }>;
  private readonly ordinals = new Map<string, number>();
  private readonly uses: Map<string, number[]>;
  private readonly locked: Set<string>;

  constructor(
    plan: RunPlan,
    private readonly transportFor: (host: PlannedHost) => Transport,
  ) {
    this.batches = batchesOf(plan);
    for (const [i, b] of this.batches.entries()) this.ordinals.set(b.key, i);
    this.uses = hostUses(plan);
    this.locked = new Set((plan.locks ?? []).map((l) => l.host));
  }

  private ordinal(stepIndex: number, batch: number): number {
    return this.ordinals.get(`${stepIndex}/${batch}`) ?? -1;
  }

  /** A batch starts (after its hosts' jobs started): its hosts are needed now; the next batch's are prefetched. */
  batchStarted(stepIndex: number, batch: number): void {
    const k = this.ordinal(stepIndex, batch);
    const next = this.batches[k + 1];
    if (!next) return;
    for (const h of next.hosts) {
      const t = transportOf(this.transportFor, h);
      t?.schedule?.(k + 1);
      t?.prefetch?.();
    }
  }

  /** Runs one host's job holding its connection; afterwards tells the budget when the host is needed next. */
  async job<T>(stepIndex: number, batch: number, ph: PlannedHost, run: () => Promise<T>): Promise<T> {
    const k = this.ordinal(stepIndex, batch);
    const t = transportOf(this.transportFor, ph);
    t?.schedule?.(k);
    const release = t?.hold?.();
    try {
      return await run();
    } finally {
      release?.();
      const later = this.uses.get(ph.host)?.find((u) => u > k);
      t?.schedule?.(later ?? Number.POSITIVE_INFINITY, later === undefined && !this.locked.has(ph.host));
    }
  }
}
