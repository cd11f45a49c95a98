/**
 * Gate approvals for the CLI: --yes approves every gate; --approve <step> approves the
 * gates of that step; otherwise ask on the TTY; with no TTY, fail closed.
 */
import { createInterface } from 'node:readline';
import type { GateAnswer, Gatekeeper } from '../actions/types.js';
import { redactOutput } from '../env/secrets.js';

export interface GateOptions {
  yes: boolean;
  approve: string[];
  interactive: boolean;
  /** Called before prompting (lets a live renderer finish drawing). */
  beforePrompt?: () => Promise<void>;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

export class CliGatekeeper implements Gatekeeper {
  constructor(private readonly o: GateOptions) {}

  async approve(req: { step: string; message: string; timeoutMs?: number; signal: AbortSignal }): Promise<GateAnswer> {
    if (this.o.yes || this.o.approve.includes(req.step)) return 'approved';
    if (!this.o.interactive) return 'no-tty';
    await this.o.beforePrompt?.();
    const output = this.o.output ?? process.stderr;
    const rl = createInterface({ input: this.o.input ?? process.stdin, output, terminal: true });
    try {
      return await new Promise<GateAnswer>((resolve) => {
        const timer = req.timeoutMs !== undefined ? setTimeout(() => resolve('timeout'), req.timeoutMs) : undefined;
        const onAbort = () => resolve('declined');
        req.signal.addEventListener('abort', onAbort, { once: true });
        rl.question(redactOutput(`\n? [${req.step}] ${req.message} [y/N] `), (answer) => {
          if (timer) clearTimeout(timer);
          req.signal.removeEventListener('abort', onAbort);
          resolve(/^y(es)?$/i.test(answer.trim()) ? 'approved' : 'declined');
        });
      });
    } finally {
      rl.close();
    }
  }
}
