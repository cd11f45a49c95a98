/**
 * The run's audit log: `.hades/runs/<run-id>.jsonl`. First line: who ran what (plan,
 * files, argv, resolved env — redacted by the bus); then every event. Written with
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
    appendFileSync(this.fd, JSON.stringify({ type: 'run.meta', runId, ts: new Date().toISOString(), ...header }) + '\n');
  }
  event(e: HadesEvent): void {
    appendFileSync(this.fd, JSON.stringify(e) + '\n');
  }
  async close(): Promise<void> {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
