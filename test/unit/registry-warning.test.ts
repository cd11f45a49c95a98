/**
 * registry.warning through the event bus: redacted before any sink, and shown by each of them
 * (plain lines, the TTY view, the --check lines, JSON) as the same `warning: …` text.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { HadesEvent } from '../../src/engine/events.js';
import { reportingOpener } from '../../src/engine/registry-warnings.js';
import { Redactor } from '../../src/env/secrets.js';
import type { RunPlan } from '../../src/plan/types.js';
import { CheckSink } from '../../src/report/check.js';
import { JsonSink } from '../../src/report/json.js';
import { PlainSink } from '../../src/report/plain.js';
import { EventBus, type Sink } from '../../src/report/sink.js';
import { TtySink } from '../../src/report/tty.js';
import type { RegistrySpec } from '../../src/config/model.js';
import type { Registry } from '../../src/registry/types.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return { stream, text: () => out };
}

describe('registry.warning', () => {
  it('the opener hands the registry an onWarning that emits the event; the bus redacts it; every sink prints it', async () => {
    const redactor = new Redactor();
    redactor.learn({ MIRROR_TOKEN: 'cache.internal:5000' });
    const outs = { plain: capture(), tty: capture(), check: capture(), json: capture() };
    const sinks: Sink[] = [
      new PlainSink(outs.plain.stream),
      new TtySink({ steps: [] } as unknown as RunPlan, outs.tty.stream, capture().stream, { NO_COLOR: '1' }),
      new CheckSink(outs.check.stream),
      new JsonSink(outs.json.stream),
    ];
    const bus = new EventBus(redactor, sinks);
    let warn: ((m: string) => void) | undefined;
    const open = reportingOpener(
      (_spec, opts) => {
        warn = opts.onWarning;
        return {} as Registry;
      },
      bus.emit,
      'run-1',
    );
    open({ name: 'prod', type: 'oci' } as RegistrySpec);
    expect(warn).toBeTypeOf('function');
    warn!('registry "prod": mirror cache.internal:5000 failed (blob app@sha256:ab): refused; using origin reg:5000/team');
    await bus.close();
    const line = 'warning: registry "prod": mirror *** failed (blob app@sha256:ab): refused; using origin reg:5000/team\n';
    expect(outs.plain.text()).toBe(line);
    expect(outs.tty.text()).toBe(line);
    expect(outs.check.text()).toBe(line);
    const e = JSON.parse(outs.json.text()) as HadesEvent;
    expect(e).toMatchObject({ type: 'registry.warning', runId: 'run-1', registry: 'prod', message: line.slice('warning: '.length, -1) });
  });
});
