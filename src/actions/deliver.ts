/** File delivery shared by copy and template (and later pull): check, then stream + verify + rename. */
import { createHash } from 'node:crypto';
import type { ByteSource, FileEntry } from '../plan/types.js';
import { octal } from '../transport/shell.js';
import { fileCheckCommand, fileWriteCommand, tempPathFor } from './commands.js';
import { execQuiet } from './exec.js';
import { ownText } from './mkdir.js';
import type { ActionOutcome, ActionRuntime, PlanContext } from './types.js';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function planFileEntry(
  ctx: PlanContext,
  kind: 'copy' | 'template',
  source: ByteSource,
  dst: string,
  mode: number,
  own: { owner?: string; group?: string },
  title: string,
): FileEntry {
  const tmp = tempPathFor(dst, ctx.runId, ctx.action.index);
  return {
    kind,
    index: ctx.action.index,
    title: ctx.action.name ?? title,
    become: ctx.become,
    pos: ctx.action.pos,
    source,
    dst,
    mode,
    ...own,
    check: fileCheckCommand(dst, source.sha256, mode, own, ctx.become),
    write: fileWriteCommand(dst, tmp, source.sha256, mode, own, ctx.become),
    tmp,
  };
}

export function describeFile(e: FileEntry): string[] {
  const from = e.source.type === 'file' ? e.source.path : e.source.origin;
  return [
    `${from} -> ${e.dst} mode ${octal(e.mode)}${ownText(e)} (${e.source.size} bytes, sha256 ${e.source.sha256})`,
    `skip if ${e.dst} has sha256 ${e.source.sha256.slice(0, 12)}… and mode ${octal(e.mode)}${ownText(e)}`,
    `$ ${e.check}`,
    `$ ${e.write}  < ${e.source.type === 'file' ? e.source.path : '(rendered content)'}`,
  ];
}

export async function deliverFile(e: FileEntry, rt: ActionRuntime): Promise<ActionOutcome> {
  const what = `${e.kind} ${e.dst}`;
  const check = await execQuiet(rt, e.check, what, e.become);
  if (check.stdout.trim() === 'unchanged') return { status: 'unchanged' };
  const stdin = e.source.type === 'file' ? rt.openSource(e.source.path) : Buffer.from(e.source.content, 'utf8');
  await execQuiet(rt, e.write, what, e.become, { stdin: stdin as never });
  return { status: 'changed', detail: `${e.source.size} bytes` };
}
