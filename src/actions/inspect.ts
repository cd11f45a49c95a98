/**
 * The read-only half of the actions, for `hades plan --check`: what an action WOULD change on
 * a host, found with the read-only probes of shell/check.ts (never a write, never a lock).
 * An action module's optional `inspect` returns one CheckChange; kinds without it (run,
 * push, promote, health, wait, gpg) are listed as "would run" by the engine (engine/check.ts).
 */
import { dirname } from 'node:path/posix';
import { octal } from '../shell/command.js';
import {
  artifactDirProbeCommand,
  dirProbeCommand,
  fileProbeCommand,
  PROBE_MISSING,
  parseProbeHead,
  type ProbeHead,
} from '../shell/check.js';
import { explainFailure, lastLine } from './exec.js';
import type { FileEntry } from './deliver.js';
import { ActionFailure, type ActionRuntime } from './types.js';

/** Biggest file (each side) whose text is compared in a diff: 64 KiB. */
export const CHECK_TEXT_CAP = 64 * 1024;

export type ChangeKind = 'create' | 'replace' | 'chmod' | 'chown' | 'unchanged' | 'would-run' | 'gate' | 'refuse' | 'fail' | 'unknown';

export interface CheckChange {
  change: ChangeKind;
  /** The host path it concerns. */
  path?: string;
  sha256?: { from?: string; to?: string };
  mode?: { from?: string; to: string };
  owner?: { from?: string; to: string };
  /** What the change is, in words (the refusal, the reason it cannot be known, …). */
  message?: string;
  /** The parent directory does not exist now (an earlier mkdir may create it; else the run fails). */
  missingParent?: string;
  /** Both sides of a text file, for the diff (absent: binary, too big, or not compared). */
  text?: { old: Buffer; new: Buffer };
  /** Why no diff is shown for a replaced file. */
  noDiff?: string;
}

/** A probe's run: exit 3 → the walk's refusal or a missing parent; any other failure → ActionFailure. */
async function probe(
  rt: ActionRuntime,
  command: string,
  what: string,
  become?: string,
): Promise<{ head: ProbeHead; rest: Buffer } | { refused: string } | { missing: true }> {
  const chunks: Buffer[] = [];
  const res = await rt.transport.exec(command, {
    signal: rt.signal,
    ...(become ? { become } : {}),
    onStdout: (c) => chunks.push(Buffer.from(c)),
    captureLimit: 4096,
  });
  if (res.exitCode === 3) {
    const why = lastLine(res.stderr);
    if (why.includes(PROBE_MISSING)) return { missing: true };
    return { refused: why || 'the trusted-directory check refused the path' };
  }
  if (res.exitCode !== 0) {
    const why = explainFailure(res, become) ?? (lastLine(res.stderr) || `exit code ${res.exitCode ?? res.signal}`);
    throw new ActionFailure(`${what}: the read-only probe failed: ${why}`, res.exitCode);
  }
  const out = Buffer.concat(chunks);
  const nl = out.indexOf(0x0a);
  const head = parseProbeHead(out.subarray(0, nl < 0 ? out.length : nl).toString('utf8'));
  if (!head) throw new ActionFailure(`${what}: unexpected answer from the probe: ${JSON.stringify(out.subarray(0, 200).toString('utf8'))}`);
  return { head, rest: nl < 0 ? Buffer.alloc(0) : out.subarray(nl + 1) };
}

export interface FileWant {
  dst: string;
  mode: number;
  owner?: string;
  group?: string;
  become?: string;
}

function wantOwner(w: { owner?: string; group?: string }): string | undefined {
  if (!w.owner && !w.group) return undefined;
  return `${w.owner ?? '-'}:${w.group ?? '-'}`;
}

/** Mode and owner as asked vs as found (only what was asked is compared). */
function attrs(w: { mode: number; owner?: string; group?: string }, found: { mode: string; owner: string; group: string }) {
  const want = wantOwner(w);
  const has = `${w.owner ? found.owner : '-'}:${w.group ? found.group : '-'}`;
  const modeFrom = octal(Number.parseInt(found.mode, 8));
  return {
    ...(modeFrom !== octal(w.mode) ? { mode: { from: modeFrom, to: octal(w.mode) } } : {}),
    ...(want && has !== want ? { owner: { from: `${found.owner}:${found.group}`, to: want } } : {}),
  };
}

function fresh(w: FileWant): Pick<CheckChange, 'mode' | 'owner'> {
  const own = wantOwner(w);
  return { mode: { to: octal(w.mode) }, ...(own ? { owner: { to: own } } : {}) };
}

/**
 * A file destination as the delivery would find it. `newText`: the bytes it would write, when
 * the caller has them (and they are at most CHECK_TEXT_CAP): the host's old bytes come back
 * for the diff when they differ and are small enough.
 */
export async function inspectFileTarget(
  rt: ActionRuntime,
  w: FileWant,
  what: string,
  sha256: string,
  newText?: Buffer,
): Promise<CheckChange> {
  const cap = newText ? CHECK_TEXT_CAP : 0;
  const r = await probe(rt, fileProbeCommand(w.dst, sha256, cap, w.become), what, w.become);
  const base = { path: w.dst };
  if ('refused' in r) return { ...base, change: 'refuse', message: r.refused };
  // A new file's diff is its whole text, against nothing.
  const created = newText ? { text: { old: Buffer.alloc(0), new: newText } } : {};
  if ('missing' in r) return { ...base, change: 'create', missingParent: dirname(w.dst), sha256: { to: sha256 }, ...fresh(w), ...created };
  const h = r.head;
  switch (h.type) {
    case 'absent':
      return { ...base, change: 'create', sha256: { to: sha256 }, ...fresh(w), ...created };
    case 'link':
      return {
        ...base,
        change: 'replace',
        sha256: { to: sha256 },
        ...fresh(w),
        message: 'a symbolic link is there now: it is replaced, never followed',
      };
    case 'other':
      return { ...base, change: 'replace', sha256: { to: sha256 }, ...fresh(w), message: 'not a regular file now: it is replaced' };
    case 'dir':
      return { ...base, change: 'fail', message: `${w.dst} is a directory: the run fails` };
    case 'file': {
      const diff = attrs(w, h);
      // In a sticky world-writable directory another user's file is replaced even with the same bytes (delivery.ts ownFileTest).
      if (h.sha256 === sha256 && h.foreign && !w.owner)
        return {
          ...base,
          change: 'replace',
          sha256: { from: h.sha256, to: sha256 },
          ...diff,
          message: `${w.dst} belongs to ${h.owner} in a world-writable directory: it is replaced by a file of the delivery's own`,
        };
      if (h.sha256 === sha256) return { ...base, change: diff.mode ? 'chmod' : diff.owner ? 'chown' : 'unchanged', ...diff };
      const change: CheckChange = { ...base, change: 'replace', sha256: { from: h.sha256, to: sha256 }, ...diff };
      if (!newText) change.noDiff = 'not compared as text';
      else if (h.foreign)
        change.noDiff = `${w.dst} belongs to ${h.owner} in a world-writable directory: its bytes are not read (it could be swapped for a link)`;
      else if (h.size > CHECK_TEXT_CAP) change.noDiff = `the host's file is over ${CHECK_TEXT_CAP} bytes`;
      else change.text = { old: r.rest, new: newText };
      return change;
    }
  }
}

/** A directory (mkdir) as mkdirCommand would find it. */
export async function inspectDir(
  rt: ActionRuntime,
  w: { path: string; mode: number; owner?: string; group?: string; become?: string },
): Promise<CheckChange> {
  const what = `mkdir ${w.path}`;
  const r = await probe(rt, dirProbeCommand(w.path, w.become), what, w.become);
  const base = { path: w.path };
  const own = wantOwner(w);
  const fresh = { mode: { to: octal(w.mode) }, ...(own ? { owner: { to: own } } : {}) };
  if ('refused' in r) return { ...base, change: 'refuse', message: r.refused };
  if ('missing' in r)
    return { ...base, change: 'create', ...fresh, message: `with its missing parents (${dirname(w.path)} does not exist)` };
  const h = r.head;
  if (h.type === 'absent') return { ...base, change: 'create', ...fresh };
  if (h.type === 'link')
    return { ...base, change: 'refuse', message: `${w.path} is a symbolic link: the run refuses to change it or what it points to` };
  if (h.type !== 'dir' || !h.mode) return { ...base, change: 'fail', message: `${w.path} exists and is not a directory: the run fails` };
  const diff = attrs(w, h);
  return { ...base, change: diff.mode ? 'chmod' : diff.owner ? 'chown' : 'unchanged', ...diff };
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts);
}

/** copy / template: the bytes the run would deliver vs the host's file (text of both, when small). */
export async function inspectFile(e: FileEntry, rt: ActionRuntime): Promise<CheckChange> {
  const what = `${e.kind} ${e.dst}`;
  if (e.source.type === 'inline') {
    const bytes = Buffer.from(e.source.content, 'utf8');
    return inspectFileTarget(rt, e, what, e.source.sha256, bytes.length <= CHECK_TEXT_CAP ? bytes : undefined);
  }
  let d: { sha256: string; size: number };
  try {
    d = await rt.files.digest(e.source.path);
  } catch (err) {
    return { path: e.dst, change: 'unknown', message: `cannot read source ${e.source.path}: ${(err as Error).message}` };
  }
  const bytes = d.size <= CHECK_TEXT_CAP ? await readAll(rt.files.open(e.source.path)) : undefined;
  const change = await inspectFileTarget(rt, e, what, d.sha256, bytes);
  if (!bytes && change.change === 'replace') change.noDiff = `the source is over ${CHECK_TEXT_CAP} bytes`;
  return change;
}

/** An extracted artifact directory (pull): unchanged when its marker names `digest`, as the real run decides. */
export async function inspectArtifactDir(
  rt: ActionRuntime,
  e: { to: string; become?: string; owner?: string },
  what: string,
  digest: string,
): Promise<CheckChange> {
  const r = await probe(rt, artifactDirProbeCommand(e.to, e.become, e.owner), what, e.become);
  const base = { path: e.to };
  if ('refused' in r) return { ...base, change: 'refuse', message: r.refused };
  if ('missing' in r) return { ...base, change: 'create', missingParent: dirname(e.to), sha256: { to: digest } };
  const h = r.head;
  if (h.type === 'absent') return { ...base, change: 'create', sha256: { to: digest } };
  if (h.type === 'dir' && h.foreign)
    return {
      ...base,
      change: 'replace',
      sha256: { from: h.marker ?? 'no .hades-artifact marker', to: digest },
      message: `${e.to} belongs to ${h.owner} in a world-writable directory: its marker is not taken, it is replaced`,
      noDiff: 'a directory artifact: compared by its marker',
    };
  if (h.type === 'dir' && h.marker === digest) return { ...base, change: 'unchanged' };
  const from = h.type === 'dir' ? (h.marker ?? 'no .hades-artifact marker') : h.type === 'link' ? 'a symbolic link' : 'not a directory';
  return { ...base, change: 'replace', sha256: { from, to: digest }, noDiff: 'a directory artifact: compared by its marker' };
}
