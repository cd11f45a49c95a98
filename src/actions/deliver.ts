/**
 * File delivery shared by copy, template and pull: ONE exec per file. The host checks
 * (sha256, mode, owner) and answers on stdout; the orchestrator sends the bytes only
 * after the answer "send", else closes stdin without sending anything.
 */
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import type { ByteSource, BaseEntry } from './types.js';
import { octal } from '../shell/command.js';
import { type ArchiveOptions, dirDeliverCommand, fileDeliverCommand, tempPathFor } from '../shell/delivery.js';
import { explainFailure, lastLine } from './exec.js';
import { ownText } from './mkdir.js';
import { metered } from './progress.js';
import { ActionFailure, type ActionOutcome, type ActionRuntime, type PlanContext } from './types.js';

export interface FileEntry extends BaseEntry {
  kind: 'copy' | 'template';
  source: ByteSource;
  dst: string;
  mode: number;
  owner?: string;
  group?: string;
  /** Temp file beside dst that the bytes land in before the verified rename. */
  tmp: string;
}

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
    tmp: tempPathFor(dst),
  };
}

type FileTarget = { dst: string; tmp: string; mode: number; owner?: string; group?: string; become?: string };

/** The one command that delivers a file (see fileDeliverCommand). Keyed for dry-run listings. */
export function fileCommands(e: FileTarget, sha256: string): { deliver: string } {
  return { deliver: fileDeliverCommand(e.dst, e.tmp, sha256, e.mode, { owner: e.owner, group: e.group }, e.become) };
}

/** The bytes to send: a stream (read only once "send" is answered) or a buffer. */
export type ByteOpener = () => NodeJS.ReadableStream | Buffer | Promise<NodeJS.ReadableStream | Buffer>;

const ANSWERS = new Set(['unchanged', 'meta', 'send']);

/** The opener's own ActionFailure (e.g. a registry read that failed verification) passes through. */
function readFailure(what: string, err: Error): ActionFailure {
  return err instanceof ActionFailure ? err : new ActionFailure(`${what}: reading the bytes to send failed: ${err.message}`);
}

/**
 * Runs a one-exec delivery command (fileDeliverCommand / dirDeliverCommand): reads the
 * host's first stdout line — "unchanged" or "meta" (nothing to send: stdin is closed at
 * once) or "send" (only then is `open` called and its bytes streamed) — and checks that a
 * "send" ended with "changed". Non-zero exit → ActionFailure with the host's message.
 */
export async function deliverStream(
  rt: ActionRuntime,
  command: string,
  what: string,
  become: string | undefined,
  open: ByteOpener,
): Promise<'unchanged' | 'meta' | 'changed'> {
  // Small: while the channel's window is full, at most about one read chunk waits here per host.
  const input = new PassThrough({ highWaterMark: 64 * 1024 });
  input.on('error', () => undefined); // failures are reported through readError / the exec result
  let answer: string | undefined;
  let head = '';
  let source: NodeJS.ReadableStream | undefined;
  let readError: Error | undefined;
  let sending: Promise<void> | undefined;

  const onAnswer = (line: string) => {
    answer = line;
    if (line !== 'send') {
      input.end(); // nothing to send: the host does not read stdin
      return;
    }
    sending = (async () => {
      try {
        const bytes = await open();
        if (input.destroyed) return;
        if (Buffer.isBuffer(bytes)) return void input.end(bytes);
        source = bytes;
        (bytes as Readable).once('error', (err: Error) => {
          readError = err;
          input.destroy(err); // the transport stops the command; the host discards the temp file
        });
        bytes.pipe(input);
      } catch (err) {
        readError = err as Error;
        input.destroy(err as Error);
      }
    })();
  };

  let res: Awaited<ReturnType<typeof rt.transport.exec>>;
  try {
    res = await rt.transport.exec(command, {
      signal: rt.signal,
      ...(become ? { become } : {}),
      stdin: input,
      onStdout: (chunk) => {
        if (answer !== undefined) return;
        head += chunk.toString('utf8');
        const nl = head.indexOf('\n');
        if (nl >= 0) onAnswer(head.slice(0, nl).trim());
      },
    });
  } catch (err) {
    if (readError) throw readFailure(what, readError);
    throw err;
  } finally {
    await sending;
    if (source) {
      source.unpipe(input);
      (source as Readable).destroy?.();
    }
    if (!input.destroyed) input.destroy();
  }
  if (readError) throw readFailure(what, readError);
  if (res.exitCode !== 0) {
    const why = explainFailure(res, become) ?? (lastLine(res.stderr) || `exit code ${res.exitCode ?? res.signal}`);
    throw new ActionFailure(`${what}: ${why}`, res.exitCode);
  }
  const lines = res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const first = lines[0];
  if (first === undefined || !ANSWERS.has(first))
    throw new ActionFailure(`${what}: unexpected answer from the host: ${JSON.stringify(res.stdout.slice(0, 200))}`);
  if (first === 'send') {
    if (lines[lines.length - 1] !== 'changed')
      throw new ActionFailure(`${what}: the host did not confirm the write: ${JSON.stringify(res.stdout.slice(0, 200))}`);
    return 'changed';
  }
  return first === 'unchanged' ? 'unchanged' : 'meta';
}

/**
 * check → (nothing | fix mode/owner | stream the bytes), in one exec. The one delivery
 * path for copy, template and pull. `open` is called only when the host asks for bytes
 * (so a no-op never reads the source); an ActionFailure it throws fails the action as is.
 */
export function deliverBytes(
  rt: ActionRuntime,
  e: FileTarget,
  what: string,
  sha256: string,
  open: ByteOpener,
): Promise<'unchanged' | 'meta' | 'changed'> {
  return deliverStream(rt, fileCommands(e, sha256).deliver, what, e.become, open);
}

/**
 * A directory (a tar payload, checked entry by entry on the orchestrator beforehand) in
 * one exec: skipped when `to` holds the marker of `digest`, else extracted and swapped in
 * (see dirDeliverCommand). For pull's directory artifacts and `extract: true`.
 */
export async function deliverArchive(
  rt: ActionRuntime,
  e: { to: string; tmp: string; become?: string },
  what: string,
  sha256: string,
  digest: string,
  opts: ArchiveOptions,
  open: ByteOpener,
): Promise<'unchanged' | 'changed'> {
  const how = await deliverStream(rt, dirDeliverCommand(e.to, e.tmp, sha256, digest, opts, e.become), what, e.become, open);
  if (how === 'meta') throw new ActionFailure(`${what}: unexpected answer "meta" for a directory`);
  return how;
}

export function describeFile(e: FileEntry): string[] {
  const src = e.source;
  const sha = src.type === 'inline' ? src.sha256 : `<sha256 of ${src.path}>`;
  const { deliver } = fileCommands(e, sha);
  const what =
    src.type === 'inline'
      ? `${src.origin} (${src.size} bytes, sha256 ${sha})`
      : `${src.path} (${src.from ? `${src.from}; ` : ''}sha256 taken when the step runs)`;
  return [
    `${what} -> ${e.dst} mode ${octal(e.mode)}${ownText(e)}`,
    `one command: skip if ${e.dst} already has this sha256 and mode ${octal(e.mode)}${ownText(e)}; same sha256 but other mode/owner: fix them, send nothing; else the host answers "send" and only then are the bytes streamed`,
    `$ ${deliver}  < ${src.type === 'file' ? src.path : '(rendered content)'}`,
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
  const how = await deliverBytes(rt, e, what, sha256, () =>
    e.source.type === 'file' ? metered(rt, rt.files.open(e.source.path), size) : Buffer.from(e.source.content, 'utf8'),
  );
  if (how === 'unchanged') return { status: 'unchanged', detail: `sha256 ${sha256.slice(0, 12)}` };
  return { status: 'changed', detail: how === 'meta' ? 'mode/owner fixed, no bytes sent' : `${size} bytes, sha256 ${sha256.slice(0, 12)}` };
}
