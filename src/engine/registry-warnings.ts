/**
 * What a registry reports without failing (a mirror that failed, so the next endpoint is read)
 * as `registry.warning` events of the run, so every sink — tty, plain, JSON, the audit log —
 * shows it (the bus redacts it like every event). The registry layer knows nothing of events:
 * it gets an `onWarning(message)` callback when it is opened.
 */
import type { RegistrySpec } from '../config/model.js';
import type { OpenRegistryOptions } from '../registry/open.js';
import type { Registry } from '../registry/types.js';
import type { RegistryOpener } from './artifacts.js';
import type { Emit } from './events.js';

export function reportingOpener(
  open: (spec: RegistrySpec, opts: OpenRegistryOptions) => Registry,
  emit: Emit,
  runId: string,
): RegistryOpener {
  return (spec) =>
    open(spec, {
      onWarning: (message) => emit({ type: 'registry.warning', runId, ts: new Date().toISOString(), registry: spec.name, message }),
    });
}
