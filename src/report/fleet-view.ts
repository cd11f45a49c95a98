/**
 * The TTY view of one running step, as a frame of lines that always fits the terminal: at
 * fleet size a line per host would overflow it (and redraw hundreds of lines per frame), so
 * finished batches collapse into count lines ("batch 3/10: 24 ok, 1 failed"), failed hosts are
 * named, running hosts show their action, progress and last output line, and the frame never
 * has more lines than the terminal has rows (minus one for the cursor) nor a line wider than
 * it. Pure: state in, lines out (test/unit/fleet-view.test.ts).
 */
import { formatDuration } from '../config/duration.js';
import { formatProgress, type ProgressView } from './progress.js';

export type HostPhase = 'waiting' | 'running' | 'ok' | 'failed' | 'skipped' | 'stopped' | 'not-started';

export interface HostRow {
  host: string;
  batch: number;
  phase: HostPhase;
  /** The running action's title (and a retry note). */
  action?: string;
  /** Its last output line (already redacted by the engine). */
  output?: string;
  progress?: ProgressView;
  /** Why the host failed / was skipped / stopped. */
  message?: string;
}

export interface StepView {
  /** "step 4/6: rollout — job deploy". */
  title: string;
  batches: number;
  /** Every host of the step, batch by batch, inventory order within a batch. */
  hosts: HostRow[];
}

export const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** Finished batches shown one line each (older ones fold into one count line). */
export const MAX_BATCH_LINES = 5;
const FAILED_PHASES = new Set<HostPhase>(['failed', 'stopped']);

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** One terminal line of at most `cols` cells: control characters dropped, cut with "…". */
export function fitLine(text: string, cols: number): string {
  const clean = text.replace(/\t/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
  let width = 0;
  let out = '';
  const chars = [...clean];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const w = isWide(ch.codePointAt(0)!) ? 2 : 1;
    const rest = chars.length - i;
    if (width + w > cols || (width + w === cols && rest > 1)) {
      return width + 1 <= cols ? `${out}…` : out;
    }
    width += w;
    out += ch;
  }
  return out;
}

function counts(hosts: HostRow[]): string {
  const n = new Map<HostPhase, number>();
  for (const h of hosts) n.set(h.phase, (n.get(h.phase) ?? 0) + 1);
  const order: HostPhase[] = ['ok', 'failed', 'stopped', 'skipped', 'running', 'waiting', 'not-started'];
  return order
    .filter((p) => n.get(p))
    .map((p) => `${n.get(p)} ${p === 'not-started' ? 'not started' : p}`)
    .join(', ');
}

function failedLine(h: HostRow): string {
  return `✖ ${h.host}: ${h.phase === 'stopped' ? 'stopped' : 'failed'}${h.message ? ` — ${h.message}` : ''}`;
}

function runningLine(h: HostRow, spin: string): string {
  const what = h.action ?? 'connecting';
  return `${spin} ${h.host}: ${what}${h.progress ? `  ${formatProgress(h.progress)}` : ''}`;
}

/**
 * The live frame: at most `rows - 1` lines, each at most `cols - 1` cells. Priorities when the
 * terminal is small: the header, then failed hosts (by name, the rest counted), then running
 * hosts (the rest counted), then finished batches (one count line), then the running hosts'
 * last output lines, then the last few finished batches one line each.
 */
export function renderFrame(step: StepView, size: { rows: number; cols: number }, tick = 0): string[] {
  const budget = Math.max(1, size.rows - 1);
  const cols = Math.max(10, size.cols - 1);
  const spin = SPINNER[tick % SPINNER.length]!;
  const byBatch: HostRow[][] = Array.from({ length: Math.max(1, step.batches) }, () => []);
  for (const h of step.hosts) {
    byBatch[h.batch] ??= [];
    byBatch[h.batch]!.push(h);
  }
  const terminal = (h: HostRow) => h.phase !== 'waiting' && h.phase !== 'running';
  const multi = step.batches > 1;
  let current = byBatch.findIndex((b) => b.some((h) => !terminal(h)));
  if (current < 0) current = byBatch.length - 1;
  const done = multi ? byBatch.slice(0, current) : [];
  const failed = step.hosts.filter((h) => FAILED_PHASES.has(h.phase));
  const running = (multi ? byBatch[current]! : step.hosts).filter((h) => h.phase === 'running');

  const header = `${spin} ${step.title}${multi ? ` · batch ${current + 1}/${step.batches}` : ''} · ${counts(step.hosts)}`;
  let left = budget - 1;
  const take = (want: number) => {
    const n = Math.max(0, Math.min(want, left));
    left -= n;
    return n;
  };
  // Failed hosts: at least one line, at most a third of the frame.
  const fLines = failed.length ? take(Math.min(failed.length, Math.max(1, Math.floor((budget - 1) / 3)))) : 0;
  const curLine = multi ? take(1) : 0;
  const rLines = running.length ? take(running.length) : 0;
  const dAll = done.length;
  let dLines = dAll ? take(1) : 0;
  const outputs: boolean[] = running.slice(0, rLines).map((h) => Boolean(h.output) && take(1) === 1);
  if (dLines && dAll > 1) dLines += take(Math.min(dAll - 1, MAX_BATCH_LINES - 1));

  const lines: string[] = [header];
  if (dLines) {
    // Newest batches by themselves; older ones folded into the first line.
    const fold = dAll - (dLines - 1);
    const folded = done.slice(0, fold).flat();
    lines.push(fold === 1 ? `  batch 1/${step.batches}: ${counts(folded)}` : `  batches 1–${fold}/${step.batches}: ${counts(folded)}`);
    for (let i = fold; i < dAll; i++) lines.push(`  batch ${i + 1}/${step.batches}: ${counts(done[i]!)}`);
  }
  if (fLines) {
    // More failed hosts than lines: one line names them all (cut at the edge), the rest say why.
    const detailed = fLines < failed.length ? fLines - 1 : fLines;
    if (detailed < failed.length) lines.push(`  ✖ ${failed.length} failed: ${failed.map((h) => h.host).join(', ')}`);
    for (const h of failed.slice(0, detailed)) lines.push(`  ${failedLine(h)}`);
  }
  if (curLine) lines.push(`  batch ${current + 1}/${step.batches}: ${counts(byBatch[current]!)}`);
  if (rLines) {
    const named = rLines < running.length ? rLines - 1 : rLines;
    const pad = multi ? '    ' : '  ';
    running.slice(0, named).forEach((h, i) => {
      lines.push(`${pad}${runningLine(h, spin)}`);
      if (outputs[i]) lines.push(`${pad}  │ ${h.output}`);
    });
    if (named < running.length) lines.push(`${pad}… ${running.length - named} more running`);
  }
  return lines.map((l) => fitLine(l, cols));
}

/** What stays on the screen once the step ended: its outcome, and the hosts that failed. */
export function renderFinal(step: StepView, status: string, durationMs: number, cols: number, maxFailed = 10): string[] {
  const sym = status === 'ok' ? '✔' : status === 'skipped' ? '–' : '✖';
  const w = Math.max(10, cols - 1);
  const lines = [
    `${sym} ${step.title}: ${counts(step.hosts) || 'no hosts'}${step.batches > 1 ? ` (${step.batches} batches)` : ''} in ${formatDuration(durationMs)}${status === 'ok' ? '' : ` — ${status}`}`,
  ];
  const failed = step.hosts.filter((h) => FAILED_PHASES.has(h.phase));
  for (const h of failed.slice(0, maxFailed)) lines.push(`  ${failedLine(h)}`);
  if (failed.length > maxFailed) lines.push(`  ✖ ${failed.length - maxFailed} more failed (named in the summary)`);
  return lines.map((l) => fitLine(l, w));
}
