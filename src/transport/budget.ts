/**
 * The connection budget (issue 16): at most `max` SSH connections open (or opening) at once,
 * for everything a run does over SSH — preflight, locks, steps, releases. A jump host is one
 * connection however many targets tunnel through it, and counts once.
 *
 * - A connection takes its slot when it starts to open, for itself and every jump host of its
 *   chain that is not open yet, all at once (so targets waiting for a slot never hold their
 *   jump hosts' slots while waiting: no deadlock through jumps). A chain longer than the
 *   budget is an error, not a wait.
 * - Waiters are served first come, first served. When the head waiter does not fit, idle
 *   connections (open, no command or stream running, not held by a host's job, no target
 *   tunnelling through them) are closed to make room: the one whose next use is furthest away
 *   first (hosts with no later work first), then the least recently used. A closed
 *   connection reopens when its host is used again (a new handshake; nothing is retried).
 * - `tryReserve` never waits and never closes anything (the preflight). `prefetch` (the
 *   engine's, for the next batch) never waits either, and closes only idle connections needed
 *   later than the one it opens, only when nobody waits: it never takes a slot from a waiter.
 * - The slot is given back when the connection closes, fails to open, or drops.
 */
import { TransportError } from './types.js';

/** What the budget needs to know of a connection (SshConnection implements it). */
export interface BudgetMember {
  readonly name: string;
  /** The jump host's connection, when this one tunnels through one. */
  readonly jumpMember: BudgetMember | undefined;
  /** Open (ready) with nothing running on it and no host job holding it. */
  idle(): boolean;
  /** Would connect() start an open (idle or closed, not failed or dropped)? */
  wouldOpen(): boolean;
  /** When it is needed next (a batch ordinal; Infinity: never again). */
  readonly nextUse: number;
  /** When it was last busy (ms). */
  readonly lastUsed: number;
  /** Closes it to make room (it calls release when closed); settles when closed. */
  evict(): Promise<void>;
}

interface Waiter {
  member: BudgetMember;
  grant(): void;
  fail(e: Error): void;
}

/** The default of `--max-connections`. */
export const DEFAULT_MAX_CONNECTIONS = 256;

export class ConnectionBudget {
  private readonly holders = new Set<BudgetMember>();
  private readonly queue: Waiter[] = [];
  private readonly evicting = new Set<BudgetMember>();
  /** The most connections open at once so far (diagnostics and tests). */
  peak = 0;

  constructor(readonly max: number) {}

  get open(): number {
    return this.holders.size;
  }

  holds(m: BudgetMember): boolean {
    return this.holders.has(m);
  }

  /** The members of m's chain that need a slot to open m. */
  private need(m: BudgetMember): BudgetMember[] {
    const out: BudgetMember[] = [];
    for (let c: BudgetMember | undefined = m; c; c = c.jumpMember) {
      if (this.holders.has(c)) break; // an open jump: the rest of its chain is open too
      if (c !== m && !c.wouldOpen()) break; // a failed jump: it will not open, m fails with it
      out.push(c);
    }
    return out;
  }

  private take(members: BudgetMember[]): void {
    for (const c of members) this.holders.add(c);
    this.peak = Math.max(this.peak, this.holders.size);
  }

  /** Waits for the slots m's chain needs (closing idle connections to make room). */
  reserve(m: BudgetMember): Promise<void> {
    const need = this.need(m);
    if (!need.length) return Promise.resolve();
    if (need.length > this.max) {
      return Promise.reject(
        new TransportError(
          m.name,
          `needs ${need.length} connections at once (the host and its jump hosts), more than --max-connections ${this.max}`,
        ),
      );
    }
    if (!this.queue.length && this.holders.size + need.length <= this.max) {
      this.take(need);
      return Promise.resolve();
    }
    return new Promise((grant, fail) => {
      this.queue.push({ member: m, grant, fail });
      this.pump();
    });
  }

  /** Takes the slots now if they are free and nobody waits; never waits, never closes anything. */
  tryReserve(m: BudgetMember): boolean {
    const need = this.need(m);
    if (need.length === 0) return true;
    if (this.queue.length || this.holders.size + need.length > this.max) return false;
    this.take(need);
    return true;
  }

  /**
   * For the engine's prefetch: the slots now if free; else, when nobody waits, closes idle
   * connections whose next use is later than m's (furthest first) and takes their slots.
   * Resolves false when there is no such room (nothing waits on it).
   */
  async prefetch(m: BudgetMember): Promise<boolean> {
    if (this.tryReserve(m)) return true;
    if (this.queue.length) return false;
    const short = this.need(m).length - (this.max - this.holders.size);
    const jumps = new Set([...this.holders].map((h) => h.jumpMember).filter(Boolean));
    const victims = [...this.holders]
      .filter((c) => !this.evicting.has(c) && !jumps.has(c) && c.idle() && c.nextUse > m.nextUse)
      .sort((a, b) => b.nextUse - a.nextUse || a.lastUsed - b.lastUsed)
      .slice(0, short);
    if (victims.length < short) return false;
    for (const c of victims) this.evicting.add(c);
    await Promise.all(victims.map((c) => c.evict()));
    return this.tryReserve(m);
  }

  /** m closed, failed to open or dropped. */
  release(m: BudgetMember): void {
    this.evicting.delete(m);
    if (this.holders.delete(m)) this.pump();
  }

  /** m became idle: if someone waits, it may be the room they need. */
  idled(): void {
    if (this.queue.length) this.pump();
  }

  private pump(): void {
    while (this.queue.length) {
      const w = this.queue[0]!;
      const need = this.need(w.member);
      if (need.length > this.max) {
        this.queue.shift();
        w.fail(new TransportError(w.member.name, `needs ${need.length} connections at once, more than --max-connections ${this.max}`));
        continue;
      }
      const free = this.max - this.holders.size;
      if (need.length <= free) {
        this.queue.shift();
        this.take(need);
        w.grant();
        continue;
      }
      const short = need.length - free - this.evicting.size;
      if (short <= 0) return;
      const jumps = new Set([...this.holders].map((h) => h.jumpMember).filter(Boolean));
      const chain = new Set<BudgetMember>();
      for (let c: BudgetMember | undefined = w.member; c; c = c.jumpMember) chain.add(c);
      const victims = [...this.holders]
        .filter((c) => !this.evicting.has(c) && !jumps.has(c) && !chain.has(c) && c.idle())
        .sort((a, b) => b.nextUse - a.nextUse || a.lastUsed - b.lastUsed)
        .slice(0, short);
      for (const c of victims) {
        this.evicting.add(c);
        void c.evict();
      }
      return;
    }
  }
}
