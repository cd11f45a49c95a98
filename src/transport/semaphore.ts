/**
 * A counting semaphore, first come first served: the pool's handshake throttle (sshd
 * MaxStartups) and each SSH connection's channel cap (sshd MaxSessions) are both one.
 *
 * A freed slot goes straight to the longest waiter. The limit may be lowered while slots
 * are held (a connection that learns the server's MaxSessions): nobody new gets one until
 * fewer than the new limit are in use.
 */

/** Gives the slot back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  grant(): void;
  wake(): void;
}

export class Semaphore {
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(private max: number) {}

  get limit(): number {
    return this.max;
  }

  set limit(n: number) {
    this.max = n;
    this.next();
  }

  /** Slots in use. */
  get inUse(): number {
    return this.active;
  }

  /** A slot, once one is free (waiting through any `wake()`). */
  async acquire(signal?: AbortSignal, aborted?: () => Error): Promise<Release> {
    for (;;) {
      const release = await this.wait(signal, aborted);
      if (release) return release;
    }
  }

  /**
   * A slot, once one is free; undefined when `wake()` interrupts the wait: the caller
   * re-checks whatever it waits for and asks again. Aborting `signal` while waiting
   * rejects with `aborted()`.
   */
  wait(signal?: AbortSignal, aborted?: () => Error): Promise<Release | undefined> {
    if (this.active < this.max && this.queue.length === 0) return Promise.resolve(this.take());
    return new Promise((resolve, reject) => {
      const leave = () => {
        signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const onAbort = () => {
        leave();
        reject(aborted ? aborted() : new Error('aborted'));
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take());
        },
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(undefined);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Interrupts every wait (their acquire resolves to undefined). */
  wake(): void {
    for (const w of this.queue.splice(0)) w.wake();
  }

  private take(): Release {
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.next();
    };
  }

  private next(): void {
    while (this.active < this.max && this.queue.length) this.queue.shift()!.grant();
  }
}
