/**
 * Checks a tar before GNU tar extracts it on a host, against the tree AS IT WILL BE after
 * `--strip-components`: names are read as tar reads them (see tar-read.ts) and stripped as
 * tar strips them (hard-link targets too; symlink targets are not stripped by tar), every
 * entry is placed in a model of the resulting tree, and symlink targets are resolved
 * against that tree once every link in it is known. Anything the checker can't vouch for
 * is refused, naming the entry and the reason.
 */
import type { Readable } from 'node:stream';
import type { Problem } from '../errors.js';
import { parseTar, type TarEntry } from './tar-read.js';

/** The marker Hades writes at the root of an extracted directory artifact: never taken from an archive. */
export const ARTIFACT_MARKER = '.hades-artifact';

export interface CheckTarOptions {
  /**
   * A directory artifact (the oras / Hades layout `<root>/…`): every entry must be `root`
   * or inside it, and the tree is checked as `tar --strip-components=1` extracts it.
   */
  root?: string;
}

/** The `--strip-components` the host's tar must use for an archive checked with `opts`. */
export function stripComponentsFor(opts: CheckTarOptions): number {
  return opts.root !== undefined ? 1 : 0;
}

const MAX_PROBLEMS = 20;
const CONTROL = /[\x00-\x1f\x7f]/;

type Node = { type: 'dir' | 'file' | 'symlink'; explicit: boolean; name: string };

/**
 * Where a name lands in the extracted tree: its components after tar's stripping, [] for
 * the tree's root, or a reason to refuse it. Canonical names only: no leading "/", no "..",
 * no empty component ("a//b": GNU tar's --strip-components turns "app//x" into "/x"), a
 * trailing "/" only on directories.
 */
function place(raw: string, root: string | undefined, isDir: boolean): string[] | string {
  if (raw === '') return 'empty name';
  if (raw.includes('\0')) return 'path contains a NUL byte';
  if (CONTROL.test(raw)) return 'path contains a control character (newline, tab, escape…)';
  if (raw.startsWith('/')) return 'absolute path';
  const pieces = (raw.endsWith('/') ? raw.slice(0, -1) : raw).split('/');
  if (pieces.includes('..')) return 'path contains a ".." component';
  if (pieces.includes('')) return 'path contains an empty component ("//"), which tar\'s --strip-components may turn into an absolute path';
  if (raw.endsWith('/') && !isDir) return 'ends with "/" but is not a directory (GNU tar would create a directory)';
  let comps = pieces;
  if (root !== undefined) {
    if (comps[0] !== root) return `is outside the artifact directory ${JSON.stringify(root)}`;
    comps = comps.slice(1);
  }
  return comps.filter((c) => c !== '.');
}

/**
 * Checks a tar (or tar.gz) before it is extracted anywhere. Returns one Problem per refused
 * entry (empty = safe; at most 20, then a count). A malformed archive is a problem too (never thrown).
 */
export async function checkTarEntries(input: Readable | string | Buffer, opts: CheckTarOptions = {}): Promise<Problem[]> {
  const problems: Problem[] = [];
  let refused = 0;
  const nodes = new Map<string, Node>(); // the extracted tree, by stripped path
  const symlinks: Array<{ name: string; parts: string[]; target: string }> = [];
  const add = (name: string, what: string, hint?: string): void => {
    refused++;
    if (problems.length < MAX_PROBLEMS) problems.push({ message: `tar entry ${JSON.stringify(name)}: ${what}`, ...(hint ? { hint } : {}) });
  };
  const root = opts.root;
  const check = (e: TarEntry): void => {
    const name = e.path;
    if (e.refusals?.length) return add(name, e.refusals.join('; '));
    if (e.nulInName || name.includes('\0') || (e.linkname ?? '').includes('\0'))
      return add(name, 'name or link target contains a NUL byte');
    const kind = e.type;
    if (kind !== 'file' && kind !== 'directory' && kind !== 'symlink' && kind !== 'hardlink') {
      const what = { 'char-device': 'character device file', 'block-device': 'block device file', fifo: 'FIFO (named pipe)' } as Record<
        string,
        string
      >;
      return add(
        name,
        what[kind] ?? `unsupported entry type ${JSON.stringify(e.typeflag)}`,
        'only regular files, directories, symlinks and hard links can be extracted',
      );
    }
    const where = place(name, root, kind === 'directory');
    if (typeof where === 'string')
      return add(
        name,
        where,
        where.includes('outside the artifact') ? undefined : 'archives may only contain relative, canonical paths inside the tree',
      );
    if (kind !== 'file' && e.size !== 0) return add(name, `a ${kind} with a recorded size of ${e.size} bytes`);
    if ((kind === 'file' && e.mode & 0o7000) || (kind === 'directory' && e.mode & 0o6000))
      return add(
        name,
        `mode ${(e.mode & 0o7777).toString(8).padStart(4, '0')} has setuid/setgid/sticky bits`,
        'tar running as root would keep them; archives may not carry special mode bits',
      );
    if (where.length === 0) {
      if (kind !== 'directory') add(name, 'names the root of the extracted tree itself');
      return;
    }
    const key = where.join('/');
    if (where.length === 1 && where[0] === ARTIFACT_MARKER)
      return add(name, `${ARTIFACT_MARKER} at the root of the tree is the marker Hades writes; an archive may not contain it`);
    for (let i = 1; i < where.length; i++) {
      const up = nodes.get(where.slice(0, i).join('/'));
      if (up?.type === 'symlink') return add(name, `path goes through the symlink ${JSON.stringify(up.name)} of the archive`);
      if (up?.type === 'file') return add(name, `path goes through ${JSON.stringify(up.name)}, which is not a directory`);
    }
    const old = nodes.get(key);
    if (old?.explicit)
      return add(
        name,
        `duplicate entry: the archive already has ${JSON.stringify(old.name)} (a ${old.type === 'dir' ? 'directory' : old.type}) at this path`,
      );
    if (old && kind !== 'directory')
      return add(name, `would replace the directory ${JSON.stringify(old.name)} that earlier entries are in`);
    if (kind === 'symlink') {
      const target = e.linkname ?? '';
      if (target === '') return add(name, 'symlink with an empty target');
      if (CONTROL.test(target)) return add(name, `symlink target ${JSON.stringify(target)} contains a control character`);
      if (target.startsWith('/'))
        return add(name, `symlink to the absolute path ${JSON.stringify(target)}`, 'symlinks must be relative and stay inside the tree');
      symlinks.push({ name, parts: where, target });
    }
    if (kind === 'hardlink') {
      const target = e.linkname ?? '';
      const to = place(target, root, false); // tar strips hard-link targets like names
      if (typeof to === 'string')
        return add(name, `hard link to ${JSON.stringify(target)} points outside the extracted tree (target: ${to})`);
      const t = nodes.get(to.join('/'));
      if (to.length === 0 || t?.type !== 'file' || !t.explicit)
        return add(
          name,
          `hard link to ${JSON.stringify(target)}, which is not a file earlier in the archive (a regular file, not reached through a symlink)`,
        );
    }
    for (let i = 1; i < where.length; i++) {
      const k = where.slice(0, i).join('/');
      if (!nodes.has(k)) nodes.set(k, { type: 'dir', explicit: false, name: k });
    }
    nodes.set(key, { type: kind === 'directory' ? 'dir' : kind === 'symlink' ? 'symlink' : 'file', explicit: true, name });
  };
  try {
    for await (const e of parseTar(input)) check(e);
  } catch (err) {
    problems.push({ message: `not a valid tar archive: ${(err as Error).message}` });
    return problems;
  }
  // Symlink targets, resolved in the final tree: inside it, and no ".." once a link was passed
  // (the link's real location is elsewhere, so a lexical ".." after it means nothing).
  for (const l of symlinks) {
    const pos = l.parts.slice(0, -1);
    let through: string | undefined;
    let bad: string | undefined;
    for (const c of l.target.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (through !== undefined) bad = `goes up ("..") after passing through the symlink ${JSON.stringify(through)}`;
        else if (pos.length === 0) bad = 'points outside the extracted tree';
        else {
          pos.pop();
          continue;
        }
        break;
      }
      pos.push(c);
      const n = through === undefined ? nodes.get(pos.join('/')) : undefined;
      if (n?.type === 'symlink') through = n.name;
    }
    if (bad) add(l.name, `symlink to ${JSON.stringify(l.target)} ${bad}`, 'symlinks must be relative and stay inside the tree');
  }
  if (refused > problems.length) problems.push({ message: `… and ${refused - problems.length} more refused entries` });
  return problems;
}
