/**
 * `--check` as plain lines: per step, per host, one line per action ("would create …",
 * "would replace … (sha256 a→b)", "unchanged …", "would run …"), each unified diff indented
 * under its line, a step left out by the selection as "== step X: skipped (why)", and the counts last. The same check.* events the JSON output prints.
 */
import type { HadesEvent } from '../engine/events.js';
import type { Sink } from './sink.js';
import { terminalSafe } from '../terminal.js';

export class CheckSink implements Sink {
  private step: string | undefined;
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  event(e: HadesEvent): void {
    const line = checkLines(e, e.step !== this.step);
    if (e.step !== undefined) this.step = e.step;
    if (line.length) this.out.write(`${terminalSafe(line.join('\n'))}\n`);
  }
  async close(): Promise<void> {}
}

export function checkLines(e: HadesEvent, newStep: boolean): string[] {
  // A step left out by --steps / --from-step / --limit: its one line, as a run's plain output ends it.
  if (e.type === 'check.step') return [`== step ${e.step}: ${e.status} (${e.message})`];
  const out: string[] = [];
  if (newStep && e.step !== undefined) out.push(`== step ${e.step}`);
  switch (e.type) {
    case 'check.change':
      out.push(`[${e.host}] ${e.message}`);
      if (e.diff) for (const l of e.diff.split('\n')) out.push(`    ${l}`);
      else if (e.change?.noDiff && e.status === 'replace') out.push(`    (no diff: ${e.change.noDiff})`);
      break;
    case 'check.host':
      out.push(`[${e.host}] ${e.status}: ${e.message}`);
      break;
    case 'registry.warning':
      out.push(`warning: ${e.message}`);
      break;
    case 'check.end':
      out.push(`check: ${e.message}${e.status === 'failed' ? ' (some actions would fail or could not be checked)' : ''}`);
      out.push('nothing was written on any host (read-only probes; no lock taken)');
      break;
    default:
      break;
  }
  return out;
}
