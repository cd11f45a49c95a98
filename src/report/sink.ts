/** Event sinks and the bus that redacts secrets once before any sink sees an event. */
import type { Redactor } from '../env/secrets.js';
import type { HadesEvent } from '../engine/events.js';

export interface Sink {
  event(e: HadesEvent): void;
  /** Flush and release (files, renderers). */
  close(): Promise<void>;
}

export class EventBus {
  constructor(
    private readonly redactor: Redactor,
    private readonly sinks: Sink[],
  ) {}
  emit = (e: HadesEvent): void => {
    const safe = this.redactor.deep(e);
    for (const s of this.sinks) s.event(safe);
  };
  async close(): Promise<void> {
    for (const s of this.sinks) await s.close();
  }
}
