/**
 * The TTY view: a listr2 tree per step — batches → hosts, each host showing its current
 * action and last output line. Steps with an approval gate render as plain lines (a prompt
 * and a live renderer cannot share the terminal). NO_COLOR is honoured by listr2's colours.
 *
 * Redraws are throttled: listr2's default renderer redraws the whole tree synchronously on
 * every title/output/state change, which at 16 hosts cost ~1.1 s of CPU per run and
 * slowed the rollout itself (measured: the 16-host no-op release took 2.7 s instead of
 * 1.4 s). ThrottledRenderer coalesces them into at most one redraw per REDRAW_MS, so a
 * chatty command never slows the engine.
 */
import { DefaultRenderer, Listr, type ListrTaskWrapper } from 'listr2';
import type { HadesEvent } from '../engine/events.js';
import type { RunPlan } from '../plan/types.js';
import { plainLine } from './plain.js';
import type { Sink } from './sink.js';
import { formatSummary } from './summary.js';

/** At most one redraw per this many ms (listr2's spinner ticks every 100 ms anyway). */
export const REDRAW_MS = 100;
/** Redraws may use at most this share of the CPU: a big tree redraws less often. */
export const REDRAW_CPU_SHARE = 0.1;

/**
 * listr2's default renderer, with every update() coalesced into one redraw per REDRAW_MS —
 * or less often when a redraw is slow (64 hosts: a long tree to wrap and measure), so
 * that drawing never takes more than REDRAW_CPU_SHARE of the time.
 */
export class ThrottledRenderer extends DefaultRenderer {
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private delay = REDRAW_MS;

  override update(): void {
    if (this.timer || this.ended) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.ended) return;
      const t0 = performance.now();
      super.update();
      const cost = performance.now() - t0;
      this.delay = Math.max(REDRAW_MS, Math.round(cost / REDRAW_CPU_SHARE - cost));
    }, this.delay);
  }

  override end(): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    super.end(); // draws the final state once
  }
}

interface HostView {
  settle?: (err?: Error) => void;
  promise: Promise<void>;
  task?: ListrTaskWrapper<unknown, never, never>;
  title: string;
  output?: string;
  skipped?: string;
  done: boolean;
}

export class TtySink implements Sink {
  private chain: Promise<void> = Promise.resolve();
  private hosts = new Map<string, HostView>();
  private plainStep = false;

  constructor(
    private readonly plan: RunPlan,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {}

  /** Resolves when no live renderer is drawing (before a gate prompts). */
  idle(): Promise<void> {
    return this.chain;
  }

  private key(step: number | undefined, host: string | undefined): string {
    return `${step}/${host}`;
  }

  private startStep(e: HadesEvent): void {
    const step = this.plan.steps[e.stepIndex!]!;
    const hasGate = step.batches.some((b) => b.hosts.some((h) => h.actions.some((a) => a.kind === 'wait' && a.durationMs === undefined)));
    // A gate prompts; a step without hosts (skipped) has no tree to draw: plain lines for both.
    this.plainStep = hasGate || step.batches.length === 0;
    if (this.plainStep) {
      this.chain = this.chain.then(() => {
        this.out.write(`${plainLine(e)}\n`);
      });
      return;
    }
    for (const b of step.batches)
      for (const h of b.hosts) {
        const view: HostView = { title: h.host, done: false, promise: Promise.resolve() };
        view.promise = new Promise<void>((resolve, reject) => {
          view.settle = (err) => (err ? reject(err) : resolve());
        });
        view.promise.catch(() => {});
        this.hosts.set(this.key(step.index, h.host), view);
      }
    const where = step.runsOn === 'orchestrator' ? ` (${step.runsOnReason})` : '';
    const list = new Listr(
      [
        {
          title: `step ${step.index + 1}/${this.plan.steps.length}: ${step.name} — job ${step.job}${where}`,
          task: (_ctx, t) =>
            t.newListr(
              step.batches.map((b) => ({
                title: step.batches.length > 1 ? `batch ${b.index + 1}/${step.batches.length}` : `${b.hosts.length} host(s)`,
                task: (_c: unknown, bt: ListrTaskWrapper<unknown, never, never>) =>
                  bt.newListr(
                    b.hosts.map((h) => ({
                      title: h.host,
                      task: (_x: unknown, ht: ListrTaskWrapper<unknown, never, never>) => {
                        const v = this.hosts.get(this.key(step.index, h.host))!;
                        v.task = ht;
                        if (v.output) ht.output = v.output;
                        ht.title = v.title;
                        if (v.skipped) ht.skip(v.skipped);
                        return v.promise;
                      },
                    })),
                    { concurrent: true, exitOnError: false },
                  ),
              })),
              { exitOnError: false },
            ),
        },
      ],
      {
        exitOnError: false,
        renderer: ThrottledRenderer,
        rendererOptions: { collapseSubtasks: false, showErrorMessage: true },
        collectErrors: false,
      } as never,
    );
    this.chain = this.chain.then(() =>
      list.run().then(
        () => undefined,
        () => undefined,
      ),
    );
  }

  event(e: HadesEvent): void {
    if (this.plainStep && e.type !== 'run.end' && e.type !== 'step.start') {
      const line = plainLine(e);
      if (line !== undefined) this.chain = this.chain.then(() => void this.out.write(`${line}\n`));
      if (e.type === 'step.end') this.plainStep = false;
      return;
    }
    const v = this.hosts.get(this.key(e.stepIndex, e.host));
    const set = (fn: (v: HostView) => void) => {
      if (v) fn(v);
    };
    switch (e.type) {
      case 'run.start':
        this.out.write(`${plainLine(e)}\n`);
        break;
      case 'step.start':
        this.startStep(e);
        break;
      case 'action.start':
        set((v) => {
          v.title = `${e.host}: ${e.action}`;
          v.output = '';
          if (v.task) {
            v.task.title = v.title;
            v.task.output = '';
          }
        });
        break;
      case 'action.output':
        set((v) => {
          v.output = e.data ?? '';
          if (v.task) v.task.output = v.output;
        });
        break;
      case 'action.attempt':
        set((v) => {
          v.output = `attempt ${e.attempt}: ${e.message ?? ''}`;
          if (v.task) v.task.output = v.output;
        });
        break;
      case 'action.retry':
        set((v) => {
          v.title = `${e.host}: ${e.action} — ${plainLine(e)!.slice(`[${e.host}] `.length)}`;
          if (v.task) v.task.title = v.title;
        });
        break;
      case 'action.end':
        set((v) => {
          if (e.status === 'failed' || e.status === 'declined') v.title = `${e.host}: ${e.action} — ${e.message}`;
          if (v.task) v.task.title = v.title;
        });
        break;
      case 'host.end':
        set((v) => {
          v.done = true;
          if (e.status === 'ok') {
            v.title = `${e.host}`;
            if (v.task) v.task.title = v.title;
            v.settle?.();
          } else if (e.status === 'skipped') {
            v.skipped = `${e.host}: skipped — ${e.message ?? ''}`;
            v.task?.skip(v.skipped);
            v.settle?.();
          } else {
            v.settle?.(new Error(`${e.host}: ${e.status}${e.message ? ` — ${e.message}` : ''}`));
          }
        });
        break;
      case 'step.end':
        for (const [k, hv] of this.hosts) {
          if (!k.startsWith(`${e.stepIndex}/`) || hv.done) continue;
          hv.done = true;
          hv.skipped = `${hv.title}: not started`;
          hv.task?.skip(hv.skipped);
          hv.settle?.();
        }
        break;
      case 'run.stopping':
        this.chain = this.chain.then(() => void process.stderr.write(`${plainLine(e)}\n`));
        break;
      case 'run.end':
        this.chain = this.chain.then(() => void (e.summary && this.out.write(`${formatSummary(e.summary)}\n`)));
        break;
      default:
        // Host locks and plan hooks happen outside the steps: one plain line each.
        if (e.type.startsWith('lock.') || e.type.startsWith('hook.')) {
          const line = plainLine(e);
          if (line !== undefined) this.chain = this.chain.then(() => void this.out.write(`${line}\n`));
        }
        break;
    }
  }

  async close(): Promise<void> {
    await this.chain;
  }
}
