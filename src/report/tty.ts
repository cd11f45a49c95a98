/**
 * The TTY view: per step a live frame (src/report/fleet-view.ts) redrawn in place at most
 * every REDRAW_MS, which always fits the terminal — finished batches and hosts collapse into
 * count lines, running hosts show their action, transfer progress and last output line, failed
 * hosts are named. When the step ends, its outcome line (and its failed hosts) stays on the
 * screen; the summary after the run is complete. Steps with an approval gate render as plain
 * lines (a prompt and a live frame cannot share the terminal).
 *
 * Why not listr2's renderer (used here until issue 16): it draws every task of the tree, so a
 * 256-host rollout overflowed the terminal and redrew hundreds of lines per frame; it has no
 * way to bound its output to the terminal's height. The frame here is built from the same
 * events every other sink gets, at most `rows - 1` lines of at most `cols - 1` cells.
 * NO_COLOR turns the colours off.
 */
import type { HadesEvent } from '../engine/events.js';
import type { RunPlan } from '../plan/types.js';
import { type HostRow, renderFinal, renderFrame, type StepView } from './fleet-view.js';
import { PlainLines, plainLine } from './plain.js';
import { ProgressTracker } from './progress.js';
import type { Sink } from './sink.js';
import { formatSummary } from './summary.js';
import { terminalSafe } from '../terminal.js';

/** At most one redraw per this many ms (it also animates the spinner). */
export const REDRAW_MS = 100;

type TtyStream = NodeJS.WritableStream & { rows?: number; columns?: number };

interface LiveStep {
  index: number;
  view: StepView;
  rows: Map<string, HostRow>;
  timer: NodeJS.Timeout;
  tick: number;
}

export class TtySink implements Sink {
  private plainStep = false;
  private readonly plain = new PlainLines();
  private readonly progress = new ProgressTracker();
  private live: LiveStep | undefined;
  /** Lines of the frame now on the screen (erased before anything else is written). */
  private drawn = 0;
  private readonly color: boolean;

  constructor(
    private readonly plan: RunPlan,
    private readonly out: TtyStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.color = !env.NO_COLOR;
  }

  /** Resolves when no live frame is drawing (before a gate prompts): gates are plain steps, so at once. */
  idle(): Promise<void> {
    return Promise.resolve();
  }

  private size(): { rows: number; cols: number } {
    return { rows: this.out.rows || 24, cols: this.out.columns || 80 };
  }

  private paint(line: string): string {
    if (!this.color) return line;
    return line
      .replace(/^(\s*)✔/, '$1\x1b[32m✔\x1b[39m')
      .replace(/^(\s*)✖/, '$1\x1b[31m✖\x1b[39m')
      .replace(/^(\s*)(│.*)$/, '$1\x1b[2m$2\x1b[22m');
  }

  /**
   * Erases the frame line by line, bottom up, leaving the cursor where it began. Never "erase
   * display" (ESC [ J): tmux and some terminals move the whole screen into the scrollback when
   * it is cleared from the top-left corner, which would leave a copy of every frame there.
   */
  private erase(): void {
    if (this.drawn > 0) this.out.write(`\r${'\x1b[1A\x1b[2K'.repeat(this.drawn)}`);
    this.drawn = 0;
  }

  /** Overwrites the frame in place: each line erased as it is rewritten, leftover lines blanked. */
  private draw(): void {
    if (!this.live) return;
    const lines = renderFrame(this.live.view, this.size(), this.live.tick);
    const old = this.drawn;
    let s = old > 0 ? `\x1b[${old}A\r` : '';
    for (const l of lines) s += `\x1b[2K${this.paint(l)}\n`;
    if (old > lines.length) s += `${'\x1b[2K\n'.repeat(old - lines.length)}\x1b[${old - lines.length}A`;
    this.out.write(s);
    this.drawn = lines.length;
  }

  /** Lines that stay: written above the live frame, which is drawn again below them. */
  private permanent(lines: string[], stream: NodeJS.WritableStream = this.out): void {
    if (!lines.length) return;
    this.erase();
    stream.write(`${terminalSafe(lines.join('\n'))}\n`);
    if (this.live) this.draw();
  }

  private key(e: HadesEvent): string {
    return `${e.stepIndex}/${e.host}`;
  }

  private startStep(e: HadesEvent): void {
    const step = this.plan.steps[e.stepIndex!]!;
    const hasGate = step.batches.some((b) => b.hosts.some((h) => h.actions.some((a) => a.kind === 'wait' && a.durationMs === undefined)));
    // A gate prompts; a step without hosts (skipped) has no frame to draw: plain lines for both.
    this.plainStep = hasGate || step.batches.length === 0;
    if (this.plainStep) {
      this.permanent([plainLine(e)!]);
      return;
    }
    const where = step.runsOn === 'orchestrator' ? ` (${step.runsOnReason})` : '';
    const rows = new Map<string, HostRow>();
    const hosts: HostRow[] = [];
    for (const b of step.batches)
      for (const h of b.hosts) {
        const row: HostRow = { host: h.host, batch: b.index, phase: 'waiting' };
        rows.set(`${step.index}/${h.host}`, row);
        hosts.push(row);
      }
    const view: StepView = {
      title: `step ${step.index + 1}/${this.plan.steps.length}: ${step.name} — job ${step.job}${where}`,
      batches: step.batches.length,
      hosts,
    };
    const live: LiveStep = {
      index: step.index,
      view,
      rows,
      tick: 0,
      timer: setInterval(() => {
        live.tick++;
        this.draw();
      }, REDRAW_MS),
    };
    this.live = live;
    this.draw();
  }

  private endStep(e: HadesEvent): void {
    const live = this.live;
    if (!live || live.index !== e.stepIndex) return;
    clearInterval(live.timer);
    for (const r of live.view.hosts) if (r.phase === 'waiting' || r.phase === 'running') r.phase = 'not-started';
    this.erase();
    this.live = undefined;
    const started = this.stepStart ?? Date.parse(e.ts);
    const final = renderFinal(live.view, e.status ?? 'ok', Date.parse(e.ts) - started, this.size().cols);
    this.out.write(`${final.map((l) => this.paint(l)).join('\n')}\n`);
  }

  private stepStart: number | undefined;

  event(e: HadesEvent): void {
    if (this.locks.size && e.type !== 'lock.acquired' && e.type !== 'lock.released') this.flushLocks();
    if (this.plainStep && e.type !== 'run.end' && e.type !== 'step.start') {
      const line = this.plain.line(e);
      if (line !== undefined) this.permanent([line]);
      if (e.type === 'step.end') this.plainStep = false;
      return;
    }
    const row = this.live?.rows.get(this.key(e));
    switch (e.type) {
      case 'run.start':
        this.permanent([plainLine(e)!]);
        break;
      case 'step.start':
        this.stepStart = Date.parse(e.ts);
        this.startStep(e);
        break;
      case 'host.start':
        if (row) row.phase = 'running';
        break;
      case 'action.start':
        this.progress.start(e);
        if (row) {
          row.phase = 'running';
          row.action = e.action;
          delete row.output;
          delete row.progress;
        }
        break;
      case 'action.output':
        if (row && e.data) row.output = e.data;
        break;
      case 'action.attempt':
        if (row) row.output = `attempt ${e.attempt}: ${e.message ?? ''}`;
        break;
      case 'action.retry':
        if (row) row.action = `${e.action} — ${plainLine(e)!.slice(`[${e.host}] `.length)}`;
        break;
      case 'action.progress':
        if (row) row.progress = this.progress.update(e);
        break;
      case 'action.end':
        this.progress.end(e);
        if (row) {
          delete row.progress;
          if (e.status === 'failed' || e.status === 'declined') row.message = `${e.message ?? e.status} (at ${e.action})`;
        }
        break;
      case 'host.end':
        if (row) {
          row.phase = (e.status as HostRow['phase']) ?? 'ok';
          if (e.status !== 'ok' && e.message && !row.message) row.message = e.message;
          if (e.status === 'skipped') row.message = e.message ?? 'guard';
          delete row.output;
        }
        break;
      case 'step.end':
        this.endStep(e);
        break;
      case 'run.stopping':
        this.permanent([plainLine(e)!], this.err);
        break;
      case 'run.end':
        if (this.live) this.endStep({ ...e, stepIndex: this.live.index, status: 'stopped' });
        if (e.summary) this.permanent([formatSummary(e.summary)]);
        break;
      default:
        // Host locks, plan hooks and registry warnings happen outside the steps: a plain line each, except that
        // locks taken and released are counted into one line (a fleet has hundreds).
        if (e.type === 'lock.acquired' || e.type === 'lock.released') {
          this.locks.set(e.type, (this.locks.get(e.type) ?? 0) + 1);
          return;
        }
        if (e.type.startsWith('lock.') || e.type.startsWith('hook.') || e.type === 'registry.warning') {
          const line = plainLine(e);
          if (line !== undefined) this.permanent([line]);
        }
        break;
    }
  }

  private readonly locks = new Map<string, number>();

  /** The counted lock lines, once the events after them begin. */
  private flushLocks(): void {
    const lines: string[] = [];
    const taken = this.locks.get('lock.acquired');
    const released = this.locks.get('lock.released');
    if (taken) lines.push(`locks taken on ${taken} host(s)`);
    if (released) lines.push(`locks released on ${released} host(s)`);
    this.locks.clear();
    this.permanent(lines);
  }

  async close(): Promise<void> {
    if (this.locks.size) this.flushLocks();
    if (this.live) {
      clearInterval(this.live.timer);
      this.erase();
      this.live = undefined;
    }
  }
}
