/**
 * Cancellation. First request (Ctrl-C / SIGTERM): stop starting work; in-flight actions
 * finish. Second: abort — in-flight commands are killed/closed right away.
 */
export class RunControl {
  private readonly stopCtl = new AbortController();
  private readonly abortCtl = new AbortController();
  readonly stopSignal = this.stopCtl.signal;
  readonly abortSignal = this.abortCtl.signal;

  get stopping(): boolean {
    return this.stopSignal.aborted;
  }

  /** Returns 'stop' the first time, 'abort' after. */
  interrupt(): 'stop' | 'abort' {
    if (!this.stopSignal.aborted) {
      this.stopCtl.abort();
      return 'stop';
    }
    this.abortCtl.abort();
    return 'abort';
  }
}
