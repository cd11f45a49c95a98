/**
 * The connection budget (src/transport/budget.ts) with stand-in members: the cap, first come
 * first served, a jump chain taken at once and a jump counted once, idle connections closed to
 * make room (furthest next use first), prefetch never waiting, a chain longer than the cap.
 */
import { describe, expect, it } from 'vitest';
import { type BudgetMember, ConnectionBudget } from '../../src/transport/budget.js';

class Member implements BudgetMember {
  open = false;
  busy = true;
  nextUse = 0;
  lastUsed = 0;
  evicted = 0;
  constructor(
    readonly name: string,
    private readonly budget: ConnectionBudget,
    readonly jumpMember: Member | undefined = undefined,
  ) {}
  idle(): boolean {
    return this.open && !this.busy;
  }
  wouldOpen(): boolean {
    return !this.open;
  }
  evict(): Promise<void> {
    this.evicted++;
    this.open = false;
    return Promise.resolve().then(() => this.budget.release(this));
  }
  async connect(): Promise<void> {
    await this.budget.reserve(this);
    this.open = true;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('ConnectionBudget', () => {
  it('at most max at once; the next waits and gets the first slot given back', async () => {
    const b = new ConnectionBudget(2);
    const [a, c, d] = ['a', 'c', 'd'].map((n) => new Member(n, b));
    await a!.connect();
    await c!.connect();
    let got = false;
    const p = d!.connect().then(() => (got = true));
    await tick();
    expect(got).toBe(false);
    expect(b.open).toBe(2);
    b.release(a!);
    await p;
    expect(b.open).toBe(2);
    expect(b.peak).toBe(2);
  });

  it('a host behind a jump takes both slots at once; a second host behind the same jump takes one', async () => {
    const b = new ConnectionBudget(3);
    const jump = new Member('jump', b);
    const t1 = new Member('t1', b, jump);
    const t2 = new Member('t2', b, jump);
    await t1.connect();
    expect(b.holds(jump)).toBe(true);
    expect(b.open).toBe(2);
    await t2.connect();
    expect(b.open).toBe(3);
  });

  it('a chain longer than the budget fails with a message instead of waiting', async () => {
    const b = new ConnectionBudget(1);
    const t = new Member('t', b, new Member('jump', b));
    await expect(t.connect()).rejects.toThrow(
      't: needs 2 connections at once (the host and its jump hosts), more than --max-connections 1',
    );
  });

  it('makes room by closing idle connections, the one needed furthest in the future first; busy ones and jumps in use stay', async () => {
    const b = new ConnectionBudget(3);
    const soon = new Member('soon', b);
    const later = new Member('later', b);
    const running = new Member('running', b);
    for (const m of [soon, later, running]) await m.connect();
    soon.busy = false;
    soon.nextUse = 1;
    later.busy = false;
    later.nextUse = Number.POSITIVE_INFINITY;
    const next = new Member('next', b);
    await next.connect();
    expect(later.evicted).toBe(1);
    expect(soon.evicted).toBe(0);
    expect(running.evicted).toBe(0);
    expect(b.open).toBe(3);
  });

  it('a waiter is served when a connection becomes idle (idled), not before', async () => {
    const b = new ConnectionBudget(1);
    const a = new Member('a', b);
    await a.connect();
    let got = false;
    const p = new Member('w', b).connect().then(() => (got = true));
    await tick();
    expect(got).toBe(false);
    a.busy = false;
    b.idled();
    await p;
    expect(a.evicted).toBe(1);
  });

  it('tryReserve (prefetch) takes only free slots nobody waits for', async () => {
    const b = new ConnectionBudget(2);
    const a = new Member('a', b);
    expect(b.tryReserve(a)).toBe(true);
    expect(b.tryReserve(a)).toBe(true); // already holds one
    const c = new Member('c', b);
    await c.connect();
    expect(b.tryReserve(new Member('x', b))).toBe(false); // full: it never closes one for a prefetch
    expect(a.evicted + c.evicted).toBe(0);
    b.release(a);
    const w = new Member('w', b, new Member('j', b)); // needs 2: waits
    void w.connect();
    await tick();
    expect(b.tryReserve(new Member('y', b))).toBe(false); // a slot is free, but someone waits
  });

  it('prefetch closes idle connections needed later than the one it opens, never one needed sooner, never when someone waits', async () => {
    const b = new ConnectionBudget(2);
    const done = new Member('done', b); // finished, next needed much later
    const soon = new Member('soon', b);
    for (const m of [done, soon]) await m.connect();
    done.busy = false;
    done.nextUse = 9;
    soon.busy = false;
    soon.nextUse = 1;
    const next = new Member('next', b);
    next.nextUse = 2;
    expect(await b.prefetch(next)).toBe(true);
    expect(done.evicted).toBe(1);
    expect(soon.evicted).toBe(0);
    const far = new Member('far', b);
    far.nextUse = 5;
    next.open = true;
    next.busy = false;
    expect(await b.prefetch(far)).toBe(false); // only connections needed sooner (1, 2) are there
    expect(soon.evicted + next.evicted).toBe(0);
  });
});
