/**
 * `wait: {message?, timeout?}` — a manual gate; `wait: {duration: 30s}` — a timed pause.
 * Runs once per step on the orchestrator. Without a TTY a gate fails closed unless
 * `--yes` or `--approve <step>` was given (the Gatekeeper decides); declined → exit 3.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { durationField, formatDuration } from '../config/duration.js';
import { ActionFailure, GateDeclined, type ActionModule, type BaseEntry } from './types.js';

export interface WaitEntry extends BaseEntry {
  kind: 'wait';
  message?: string;
  timeoutMs?: number;
  durationMs?: number;
}

export const waitAction: ActionModule<WaitEntry> = {
  kind: 'wait',
  noTimeout: { why: 'a gate has its own timeout', hint: 'write wait: {message: …, timeout: 30m} (how long the gate waits for an answer)' },
  check(c) {
    if (c.has('duration') && (c.has('message') || c.has('timeout'))) {
      c.error(
        `wait has duration together with ${c.has('message') ? 'message' : 'timeout'}`,
        c.pos('duration'),
        'duration pauses for a fixed time; message (with an optional timeout) waits for the operator: use one or the other',
      );
    }
  },
  schema: {
    title: 'wait',
    description: 'Pause: for a fixed duration, or until the operator confirms (message, optional timeout).',
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      message: {
        description: 'Question shown to the operator.',
        type: 'string',
        minLength: 1,
      },
      timeout: {
        $ref: '#/definitions/duration',
      },
      duration: {
        $ref: '#/definitions/duration',
      },
    },
  },
  runsOnOrchestrator: true,
  plan(spec, ctx) {
    const s = (spec ?? {}) as { message?: string; timeout?: unknown; duration?: unknown };
    const dur = (field: 'timeout' | 'duration'): number | undefined => {
      const raw = s[field];
      if (raw === undefined || raw === null) return undefined;
      const ms = durationField(typeof raw === 'number' ? raw : ctx.expand(String(raw), field));
      if (ms === undefined)
        ctx.problems.add(
          `wait.${field}: invalid duration ${JSON.stringify(raw)}`,
          ctx.fieldPos(field),
          'write e.g. 30s, 5m, 1h30m or 250ms',
        );
      return ms;
    };
    const durationMs = dur('duration');
    const timeoutMs = dur('timeout');
    const message = s.message !== undefined ? ctx.expand(String(s.message), 'message') : undefined;
    return {
      kind: 'wait',
      index: ctx.action.index,
      title: ctx.action.name ?? (durationMs !== undefined ? `pause ${formatDuration(durationMs)}` : 'approval gate'),
      pos: ctx.action.pos,
      ...(message !== undefined ? { message } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(durationMs !== undefined ? { durationMs } : {}),
    };
  },
  describe(e) {
    if (e.durationMs !== undefined) return [`pause for ${formatDuration(e.durationMs)}`];
    return [
      `gate: ${e.message ?? 'continue?'}${e.timeoutMs !== undefined ? ` (declined after ${formatDuration(e.timeoutMs)} without an answer)` : ''}`,
      'asks on a TTY; without one, needs --yes or --approve <step>',
    ];
  },
  async run(e, rt) {
    if (e.durationMs !== undefined) {
      try {
        await sleep(e.durationMs, undefined, { signal: AbortSignal.any([rt.signal, rt.stopSignal]) });
      } catch {
        throw new ActionFailure('pause interrupted');
      }
      return { status: 'ok' };
    }
    const answer = await rt.gate.approve({
      step: rt.step,
      message: e.message ?? `continue after step "${rt.step}"?`,
      timeoutMs: e.timeoutMs,
      signal: AbortSignal.any([rt.signal, rt.stopSignal]),
    });
    if (answer === 'approved') return { status: 'ok', detail: 'approved' };
    if (answer === 'no-tty')
      throw new GateDeclined(`gate in step "${rt.step}" needs approval and there is no TTY to ask on: pass --yes or --approve ${rt.step}`);
    throw new GateDeclined(
      answer === 'timeout' ? `gate in step "${rt.step}" timed out without approval` : `gate in step "${rt.step}" was declined`,
    );
  },
};
