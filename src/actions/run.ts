/** `run: <command>` — one shell command; env arrives as real environment variables. */
import type { RunEntry } from '../plan/types.js';
import { envScript, runWithEnv } from '../transport/shell.js';
import { execStreaming } from './exec.js';
import { ActionFailure, type ActionModule } from './types.js';

export const runAction: ActionModule<RunEntry> = {
  kind: 'run',
  plan(spec, ctx) {
    if (typeof spec !== 'string' || spec.trim() === '') {
      ctx.problems.add('run: expected a non-empty command string', ctx.action.pos);
      return undefined;
    }
    return {
      kind: 'run',
      index: ctx.action.index,
      title: ctx.action.name ?? `run: ${firstLine(spec)}`,
      become: ctx.become,
      pos: ctx.action.pos,
      command: spec,
      exec: runWithEnv(spec, ctx.become),
    };
  },
  describe(e) {
    return [`$ ${e.command}${e.become ? `   (as ${e.become}, via sudo -n)` : ''}`];
  },
  async run(e, rt) {
    await execStreaming(rt, e.exec, 'command', e.become, { stdin: envScript(rt.env) }).catch((err) => {
      if (err instanceof ActionFailure && err.exitCode !== undefined && err.exitCode !== null && !/sudo/.test(err.message))
        throw new ActionFailure(`command exited with code ${err.exitCode}: ${firstLine(e.command)}`, err.exitCode);
      throw err;
    });
    return { status: 'ok' };
  },
};

export function firstLine(s: string): string {
  const l = s.trim().split('\n')[0] ?? '';
  return l.length > 80 ? l.slice(0, 77) + '...' : l;
}
