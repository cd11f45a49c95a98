/**
 * The run's audit log: `.hades/runs/<run-id>.jsonl`. First line: who ran what (plan,
 * files, argv, resolved env — redacted by the bus — the plan's shape and fingerprint, and
 * for a replay the run it replays); then every event, and an `artifact` line for every
 * digest the run resolved or published. src/report/history.ts reads them. Written with
 * appendFileSync so a crash loses at most the event being written.
 */
import { appendFileSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { HadesEvent } from '../engine/events.js';
import type { Sink } from './sink.js';

export class AuditSink implements Sink {
  readonly path: string;
  private fd: number;
  constructor(dir: string, runId: string, header: Record<string, unknown>) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${runId}.jsonl`);
    this.fd = openSync(this.path, 'wx', 0o600);
    appendFileSync(this.fd, `${JSON.stringify({ type: 'run.meta', runId, ts: new Date().toISOString(), ...header })}\n`);
  }
  event(e: HadesEvent): void {
    if (e.type === 'action.progress') return; // transfer progress is for watching; action.end keeps what was sent
    appendFileSync(this.fd, `${JSON.stringify(e)}\n`);
  }
  /** A digest the run resolved or published (`type: "artifact"`): what history shows and a replay pins. */
  artifact(rec: Record<string, unknown>): void {
    if (this.fd >= 0) appendFileSync(this.fd, `${JSON.stringify({ type: 'artifact', ts: new Date().toISOString(), ...rec })}\n`);
  }
  async close(): Promise<void> {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
