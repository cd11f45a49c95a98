/** JSON lines: exactly the event objects (documented in README, stable). */
import type { HadesEvent } from '../engine/events.js';
import type { Sink } from './sink.js';
import { jsonSafe } from '../terminal.js';

export class JsonSink implements Sink {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  event(e: HadesEvent): void {
    this.out.write(`${jsonSafe(e)}\n`);
  }
  async close(): Promise<void> {}
}
