/** Plain lines for CI logs: one line per event, `[host]` prefixed, stable, no colour. */
import type { HadesEvent } from '../engine/events.js';
import { formatDuration } from '../config/duration.js';
import type { Sink } from './sink.js';
import { formatAmount, formatProgress, ProgressTracker } from './progress.js';
import { formatSummary } from './summary.js';
import { terminalSafe } from '../terminal.js';

export function plainLine(e: HadesEvent): string | undefined {
  const h = `[${e.host}]`;
  switch (e.type) {
    case 'run.start':
      return `run ${e.runId}: ${e.message}`;
    case 'step.start':
      return `== step ${e.step}${e.message ? ` (${e.message})` : ''}: ${e.hosts?.length ?? 0} host(s)`;
    case 'batch.start':
      return `-- step ${e.step} batch ${(e.batch ?? 0) + 1}: ${e.hosts?.join(', ')}`;
    case 'host.end':
      if (e.status === 'ok') return undefined;
      return `${h} ${e.status}${e.message ? `: ${e.message}` : ''}`;
    case 'action.start':
      return `${h} > ${e.action}`;
    case 'action.output':
      return `${h} ${e.stream === 'stderr' ? '!' : '|'} ${e.data}`;
    case 'action.progress':
      return `${h} ~ ${e.action}: ${formatAmount(e.bytes ?? 0, e.total)}`;
    case 'action.attempt':
      return `${h} ~ ${e.action}: attempt ${e.attempt} ${e.status === 'ok' ? 'ok' : 'not yet'}: ${e.message}`;
    case 'action.retry':
      return `${h} attempt ${e.attempt}/${e.attempts} of ${e.action} failed${e.exitCode !== undefined ? ` (exit ${e.exitCode ?? 'signal'})` : ''}: ${e.message}; attempt ${(e.attempt ?? 0) + 1}/${e.attempts} ${e.delayMs ? `in ${formatDuration(e.delayMs)}` : 'now'}`;
    case 'action.end':
      return `${h} ${e.status === 'failed' || e.status === 'declined' ? 'FAILED' : e.status} ${e.action} (${formatDuration(e.durationMs ?? 0)})${e.message ? `: ${e.message}` : ''}`;
    case 'gate.wait':
      return `?? step ${e.step}: ${e.message}`;
    case 'step.end':
      return `== step ${e.step}: ${e.status}${e.message ? ` (${e.message})` : ''}`;
    case 'run.stopping':
      return `!! ${e.message}`;
    case 'run.end':
      return e.summary ? formatSummary(e.summary) : `run ${e.status}`;
    case 'lock.acquired':
      return `lock ${e.host}: taken (${e.message})`;
    case 'lock.held':
      return `lock ${e.host}: HELD by another run: ${e.message}`;
    case 'lock.failed':
      return `lock ${e.host}: FAILED: ${e.message}`;
    case 'lock.released':
      return `lock ${e.host}: released`;
    case 'hook.start':
      return `hook ${e.action}: $ ${e.command}`;
    case 'hook.output':
      return `hook ${e.action} ${e.stream === 'stderr' ? '!' : '|'} ${e.data}`;
    case 'hook.end':
      return `hook ${e.action}: ${e.status === 'ok' ? 'ok' : `FAILED (${e.message}); the run's outcome is unchanged`}`;
    case 'registry.warning':
      return `warning: ${e.message}`;
    default:
      return undefined;
  }
}

/**
 * Plain lines for a stream of events: every event's plainLine, except transfer progress, which
 * prints every PLAIN_EVERY_MS once a transfer has run that long (with its rate).
 */
export class PlainLines {
  private readonly progress = new ProgressTracker();
  line(e: HadesEvent): string | undefined {
    if (e.type === 'action.start') this.progress.start(e);
    if (e.type === 'action.end') this.progress.end(e);
    if (e.type === 'action.progress') {
      const p = this.progress.update(e);
      return this.progress.shouldPrint(e) ? `[${e.host}] ~ ${e.action}: ${formatProgress(p)}` : undefined;
    }
    return plainLine(e);
  }
}

export class PlainSink implements Sink {
  private readonly lines = new PlainLines();
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  event(e: HadesEvent): void {
    const line = this.lines.line(e);
    if (line !== undefined) this.out.write(`${terminalSafe(line)}\n`);
  }
  async close(): Promise<void> {}
}
