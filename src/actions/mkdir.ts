/** `mkdir: {path, mode (0755), owner?, group?}` — idempotent, converges mode and ownership. */
import { octal } from '../shell/command.js';
import { mkdirCommand } from '../shell/delivery.js';
import { execQuiet } from './exec.js';
import { inspectDir } from './inspect.js';
import { absolutePath, FILE_ATTRS_SCHEMA, modeField, ownership } from './fields.js';
import type { ActionModule, BaseEntry } from './types.js';

export interface MkdirEntry extends BaseEntry {
  kind: 'mkdir';
  path: string;
  mode: number;
  owner?: string;
  group?: string;
  exec: string; // prints "unchanged" or "changed"
}

export const mkdirAction: ActionModule<MkdirEntry> = {
  kind: 'mkdir',
  schema: {
    title: 'mkdir',
    description: 'Create a directory (and its parents) with a mode and owner.',
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: {
        description: 'Absolute path on the host.',
        type: 'string',
        minLength: 1,
      },
      ...FILE_ATTRS_SCHEMA,
    },
  },
  plan(spec, ctx) {
    const s = spec as { path: string; mode?: number; owner?: string; group?: string };
    const path = absolutePath(ctx, s.path, 'path');
    const mode = modeField(ctx, s.mode, 0o755);
    const own = ownership(ctx, s);
    if (path === undefined) return undefined;
    return {
      kind: 'mkdir',
      index: ctx.action.index,
      title: ctx.action.name ?? `mkdir ${path}`,
      become: ctx.become,
      pos: ctx.action.pos,
      path,
      mode,
      ...own,
      exec: mkdirCommand(path, mode, own, ctx.become),
    };
  },
  describe(e) {
    return [`mkdir ${e.path} mode ${octal(e.mode)}${ownText(e)}`, `$ ${e.exec}`];
  },
  async run(e, rt) {
    const res = await execQuiet(rt, e.exec, `mkdir ${e.path}`, e.become);
    return { status: res.stdout.includes('unchanged') ? 'unchanged' : 'changed' };
  },
  inspect: (e, rt) => inspectDir(rt, e),
};

export function ownText(e: { owner?: string; group?: string }): string {
  if (!e.owner && !e.group) return '';
  return ` owner ${e.owner ?? '-'}:${e.group ?? '-'}`;
}
