/** `run: <command>` — one shell command; env arrives as real environment variables. */
import { envScript, runWithEnv } from '../shell/command.js';
import { execStreaming } from './exec.js';
import { ActionFailure, type ActionModule, type BaseEntry } from './types.js';

export interface RunEntry extends BaseEntry {
  kind: 'run';
  command: string; // the user's command, as written (the shell expands $VARS)
  exec: string; // exactly what the transport runs; env arrives on stdin
}

export const runAction: ActionModule<RunEntry> = {
  kind: 'run',
  retryable: true,
  schema: {
    description: 'A shell command run by sh -c on the host; it expands $VAR itself.',
    type: 'string',
    minLength: 1,
  },
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
  return l.length > 80 ? `${l.slice(0, 77)}...` : l;
}
