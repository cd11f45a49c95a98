/**
 * Plan hooks (issue 14 part 6): `on_start`, `on_success`, `on_failure` — local commands run
 * with `/bin/sh -c` on the orchestrator, in the hadesfile's directory, one after another,
 * with the run summary as JSON on stdin (secrets redacted). Their output is shown and
 * logged as hook.* events. A failing hook is reported and changes neither the run's outcome
 * nor its exit code.
 */
import { spawn } from 'node:child_process';
import type { Redactor } from '../env/secrets.js';
import type { PlannedHooks } from '../plan/types.js';
import type { HadesEvent } from './events.js';
import { localBaseEnv } from '../transport/local.js';

export type HookName = 'on_start' | 'on_success' | 'on_failure';

/** Which end hook a finished run calls: on_success only for exit 0; every other outcome (failed, partial, declined, interrupted) calls on_failure. */
export function endHook(exitCode: number): HookName {
  return exitCode === 0 ? 'on_success' : 'on_failure';
}

/**
 * Runs the hook's commands in order; each gets `input` (redacted) as JSON on stdin and the
 * orchestrator's login-like env (PATH, HOME, USER…) plus HADES_PLAN, HADES_RUN_ID, HADES_HOOK.
 * Returns how many failed. Never throws for a failing command.
 */
export async function runHooks(
  hooks: PlannedHooks | undefined,
  which: HookName,
  input: Record<string, unknown>,
  ctx: { plan: string; runId: string; redactor: Redactor; emit: (e: Omit<HadesEvent, 'runId' | 'ts'>) => void },
): Promise<number> {
  const commands = hooks?.[which] ?? [];
  let failed = 0;
  const json = `${JSON.stringify(ctx.redactor.deep({ hook: which, ...input }))}\n`;
  for (const command of commands) {
    ctx.emit({ type: 'hook.start', action: which, command });
    const r = await runOne(
      command,
      hooks!.cwd,
      json,
      { ...localBaseEnv(), HADES_PLAN: ctx.plan, HADES_RUN_ID: ctx.runId, HADES_HOOK: which },
      ctx.redactor,
      (stream, data) => ctx.emit({ type: 'hook.output', action: which, stream, data }),
    );
    if (r.ok) ctx.emit({ type: 'hook.end', action: which, command, status: 'ok', exitCode: 0 });
    else {
      failed++;
      ctx.emit({ type: 'hook.end', action: which, command, status: 'failed', exitCode: r.exitCode, message: r.message });
    }
  }
  return failed;
}

function runOne(
  command: string,
  cwd: string,
  stdin: string,
  env: NodeJS.ProcessEnv,
  redactor: Redactor,
  line: (stream: 'stdout' | 'stderr', data: string) => void,
): Promise<{ ok: boolean; exitCode: number | null; message: string }> {
  return new Promise((res) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const splitters = (['stdout', 'stderr'] as const).map((stream) => {
      const scrub = redactor.stream();
      let rest = '';
      const emit = (text: string, end: boolean) => {
        const lines = (rest + text).split('\n');
        rest = lines.pop()!;
        if (end && rest) lines.push(rest);
        for (const l of lines) line(stream, l.endsWith('\r') ? l.slice(0, -1) : l);
        if (end) rest = '';
      };
      child[stream].on('data', (c: Buffer) => emit(scrub.push(c), false));
      return () => emit(scrub.end(), true);
    });
    child.stdin.on('error', () => {
      /* EPIPE: the hook does not read its stdin */
    });
    child.stdin.end(stdin);
    child.on('error', (e) => res({ ok: false, exitCode: null, message: e.message }));
    child.on('close', (code, signal) => {
      for (const flush of splitters) flush();
      res(
        code === 0
          ? { ok: true, exitCode: 0, message: '' }
          : { ok: false, exitCode: code, message: code === null ? `killed by ${signal}` : `exit ${code}` },
      );
    });
  });
}
