/** File delivery shared by copy and template (and later pull): check, then stream + verify + rename. */
import { createHash } from 'node:crypto';
import type { ByteSource, FileEntry } from '../plan/types.js';
import { octal } from '../transport/shell.js';
import { fileCheckCommand, fileMetaCommand, fileWriteCommand, tempPathFor } from './commands.js';
import { execQuiet } from './exec.js';
import { ownText } from './mkdir.js';
import { ActionFailure, type ActionOutcome, type ActionRuntime, type PlanContext } from './types.js';

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
  return {
    kind,
    index: ctx.action.index,
    title: ctx.action.name ?? title,
    ...(ctx.become ? { become: ctx.become } : {}),
    pos: ctx.action.pos,
    source,
    dst,
    mode,
    ...own,
    tmp: tempPathFor(dst, ctx.runId, ctx.action.index),
  };
}

export function fileCommands(e: { dst: string; tmp: string; mode: number; owner?: string; group?: string; become?: string }, sha256: string): { check: string; meta: string; write: string } {
  const own = { owner: e.owner, group: e.group };
  return {
    check: fileCheckCommand(e.dst, sha256, e.mode, own, e.become),
    meta: fileMetaCommand(e.dst, e.mode, own, e.become),
    write: fileWriteCommand(e.dst, e.tmp, sha256, e.mode, own, e.become),
  };
}

/** check → (nothing | fix mode/owner | stream the bytes). The one delivery path for copy, template and pull. */
export async function deliverBytes(
  rt: ActionRuntime,
  e: { dst: string; tmp: string; mode: number; owner?: string; group?: string; become?: string },
  what: string,
  sha256: string,
  open: () => NodeJS.ReadableStream | Buffer,
): Promise<'unchanged' | 'meta' | 'changed'> {
  const { check, meta, write } = fileCommands(e, sha256);
  const res = (await execQuiet(rt, check, what, e.become)).stdout.trim();
  if (res === 'unchanged') return 'unchanged';
  if (res === 'meta') {
    await execQuiet(rt, meta, what, e.become);
    return 'meta';
  }
  await execQuiet(rt, write, what, e.become, { stdin: open() as never });
  return 'changed';
}

export function describeFile(e: FileEntry): string[] {
  const src = e.source;
  const sha = src.type === 'inline' ? src.sha256 : `<sha256 of ${src.path}>`;
  const { check, meta, write } = fileCommands(e, sha);
  const what = src.type === 'inline' ? `${src.origin} (${src.size} bytes, sha256 ${sha})` : `${src.path} (sha256 taken when the step runs)`;
  return [
    `${what} -> ${e.dst} mode ${octal(e.mode)}${ownText(e)}`,
    `skip if ${e.dst} already has this sha256 and mode ${octal(e.mode)}${ownText(e)}; same sha256 but other mode/owner: fix them, send nothing`,
    `$ ${check}`,
    `$ ${meta}   (only when just mode/owner differ)`,
    `$ ${write}  < ${src.type === 'file' ? src.path : '(rendered content)'}`,
  ];
}

export async function deliverFile(e: FileEntry, rt: ActionRuntime): Promise<ActionOutcome> {
  const what = `${e.kind} ${e.dst}`;
  let sha256: string;
  let size: number;
  if (e.source.type === 'inline') ({ sha256, size } = e.source);
  else {
    try {
      ({ sha256, size } = await rt.files.digest(e.source.path));
    } catch (err) {
      throw new ActionFailure(`${what}: cannot read source ${e.source.path}: ${(err as Error).message}`);
    }
  }
  const how = await deliverBytes(rt, e, what, sha256, () => (e.source.type === 'file' ? rt.files.open(e.source.path) : Buffer.from(e.source.content, 'utf8')));
  if (how === 'unchanged') return { status: 'unchanged', detail: `sha256 ${sha256.slice(0, 12)}` };
  return { status: 'changed', detail: how === 'meta' ? 'mode/owner fixed, no bytes sent' : `${size} bytes, sha256 ${sha256.slice(0, 12)}` };
}
