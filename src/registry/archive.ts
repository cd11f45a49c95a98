/**
 * Directories as reproducible tar+gzip layers, and safe inspection of tar streams.
 *
 * Writing: the tar headers are written here (POSIX ustar, PAX records for long or non-ASCII
 * names, long link targets and sizes ≥ 8 GiB) rather than with a tar library, because the
 * bytes must be reproducible and the format is small: entries sorted by byte order, every
 * mtime fixed to the artifact's creation time, uid/gid 0, empty uname/gname, no atime/ctime,
 * permission bits only (no setuid/setgid/sticky). The layout of the archive is the one the
 * `oras` CLI produces for a directory: the directory itself is the first entry (its basename,
 * no trailing slash), everything else below it — so `oras pull` unpacks it as `<out>/<dir>`.
 * Regular files with several hard links are stored as separate files; symlinks are stored
 * as symlinks and must point inside the directory; any other file type is refused.
 *
 * Reading: `listTar` (tar-read.ts) and `checkTarEntries` (tar-check.ts) parse a tar (optionally
 * gzip'd — detected by its magic) as a stream, without extracting anything and without
 * buffering file contents; re-exported here.
 */
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Problem } from '../errors.js';
import { UserError } from '../errors.js';
import { HashingStream } from './digest.js';

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK);
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits: 8 GiB - 1
const CONTROL = /[\x00-\x1f\x7f]/; // refused in names by checkTarEntries, so refused at push too

// ---------------------------------------------------------------------------------------------
// Writing

export interface TarHeaderInput {
  path: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string;
}

const TYPEFLAG: Record<TarHeaderInput['type'], string> = { file: '0', directory: '5', symlink: '2' };

function writeString(buf: Buffer, s: string, off: number, len: number): void {
  Buffer.from(s, 'utf8').copy(buf, off, 0, len);
}

function writeOctal(buf: Buffer, n: number, off: number, len: number): void {
  // len-1 octal digits, zero padded, then NUL (the style of Go's archive/tar used by oras).
  writeString(buf, n.toString(8).padStart(len - 1, '0'), off, len - 1);
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function isPlainAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

/** Splits a path into ustar prefix (≤155 bytes) and name (≤100 bytes), or null when it can't. */
function splitUstar(path: string): { prefix: string; name: string } | null {
  if (!isPlainAscii(path)) return null;
  if (path.length <= 100) return { prefix: '', name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (name.length === 0) return null;
    if (name.length > 100) return null;
    if (prefix.length <= 155) return { prefix, name };
  }
  return null;
}

function ustarBlock(h: {
  name: string;
  prefix: string;
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
  linkname: string;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, h.name, 0, 100);
  writeOctal(b, h.mode, 100, 8);
  writeOctal(b, 0, 108, 8); // uid
  writeOctal(b, 0, 116, 8); // gid
  writeOctal(b, h.size, 124, 12);
  writeOctal(b, h.mtime, 136, 12);
  b.fill(0x20, 148, 156); // checksum placeholder: spaces
  writeString(b, h.typeflag, 156, 1);
  writeString(b, h.linkname, 157, 100);
  writeString(b, 'ustar\0', 257, 6);
  writeString(b, '00', 263, 2);
  // uname (265, 32) and gname (297, 32) stay empty
  writeOctal(b, 0, 329, 8); // devmajor
  writeOctal(b, 0, 337, 8); // devminor
  writeString(b, h.prefix, 345, 155);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  writeString(b, sum.toString(8).padStart(6, '0'), 148, 6);
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** The header block(s) of one entry: a PAX extended header first when ustar can't hold it. */
export function encodeTarHeader(h: TarHeaderInput): Buffer {
  const pax: string[] = [];
  let split = splitUstar(h.path);
  if (!split) {
    pax.push(paxRecord('path', h.path));
    const base = h.path.split('/').filter(Boolean).pop() ?? 'entry';
    split = { prefix: '', name: (isPlainAscii(base) ? base : 'entry').slice(0, 100) };
  }
  let linkname = h.linkname ?? '';
  if (linkname && (Buffer.byteLength(linkname) > 100 || !isPlainAscii(linkname))) {
    pax.push(paxRecord('linkpath', linkname));
    linkname = '';
  }
  let size = h.size;
  if (size > MAX_OCTAL_SIZE) {
    pax.push(paxRecord('size', String(size)));
    size = 0;
  }
  const main = ustarBlock({ ...split, typeflag: TYPEFLAG[h.type], size, mode: h.mode, mtime: h.mtime, linkname });
  if (!pax.length) return main;
  const data = Buffer.from(pax.join(''), 'utf8');
  const paxName = `PaxHeaders/${split.name}`.slice(0, 100);
  const head = ustarBlock({ name: paxName, prefix: '', typeflag: 'x', size: data.length, mode: 0o644, mtime: h.mtime, linkname: '' });
  return Buffer.concat([head, data, padding(data.length), main]);
}

function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : ZERO.subarray(0, BLOCK - r);
}

/** One entry of a directory to archive, as found by `scanDirectory`. */
export interface ScannedEntry {
  /** Path inside the archive ("<title>" or "<title>/a/b"). */
  path: string;
  /** Absolute path on disk. */
  abs: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtimeMs: number;
  linkname?: string;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Where a symlink target lands, lexically, relative to the archive's root directory; null = outside. */
function resolveInside(linkDirParts: string[], target: string): string[] | null {
  if (target.startsWith('/')) return null;
  const parts = [...linkDirParts];
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(c);
  }
  return parts;
}

/**
 * Walks `dir` (not following symlinks) into a sorted entry list: the directory itself first
 * (as `title`), then depth-first with each directory's entries in byte order.
 * Refuses (UserError) special files and symlinks pointing outside `dir`.
 */
export async function scanDirectory(dir: string, title: string): Promise<ScannedEntry[]> {
  const out: ScannedEntry[] = [];
  const problems: Problem[] = [];
  const rootSt = await fsp.stat(dir);
  if (!rootSt.isDirectory()) throw new UserError(`${dir} is not a directory`);
  out.push({ path: title, abs: dir, type: 'directory', size: 0, mode: rootSt.mode & 0o777, mtimeMs: rootSt.mtimeMs });
  const walk = async (abs: string, rel: string[]): Promise<void> => {
    const names = (await fsp.readdir(abs)).sort(byteCompare);
    for (const n of names) {
      const p = join(abs, n);
      if (CONTROL.test(n)) {
        problems.push({
          message: `${JSON.stringify(p)} has a control character in its name`,
          hint: 'pulling would refuse it (tar entry names may not contain newlines, tabs or escapes): rename it',
        });
        continue;
      }
      const st: Stats = await fsp.lstat(p);
      const relParts = [...rel, n];
      const path = [title, ...relParts].join('/');
      if (st.isDirectory()) {
        out.push({ path, abs: p, type: 'directory', size: 0, mode: st.mode & 0o777, mtimeMs: st.mtimeMs });
        await walk(p, relParts);
      } else if (st.isFile()) {
        out.push({ path, abs: p, type: 'file', size: st.size, mode: st.mode & 0o777, mtimeMs: st.mtimeMs });
      } else if (st.isSymbolicLink()) {
        const target = await fsp.readlink(p);
        if (CONTROL.test(target)) {
          problems.push({ message: `${JSON.stringify(p)} is a symlink to ${JSON.stringify(target)}, which has a control character` });
          continue;
        }
        if (target === '' || resolveInside(rel, target) === null) {
          problems.push({
            message: `${p} is a symlink to ${JSON.stringify(target)}, which points outside the directory being pushed`,
            hint: 'artifacts may only contain relative symlinks that stay inside the pushed directory',
          });
          continue;
        }
        out.push({ path, abs: p, type: 'symlink', size: 0, mode: 0o777, mtimeMs: st.mtimeMs, linkname: target });
      } else {
        problems.push({
          message: `${p} is a ${st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'device file'}; only regular files, directories and symlinks can be pushed`,
        });
      }
    }
  };
  await walk(dir, []);
  if (problems.length) throw new UserError(problems);
  return out;
}

/**
 * The pinned time of a directory's content: the newest mtime of the regular files in it
 * (directories' mtimes change with temporary files, and copies rarely keep symlinks' own
 * times, so both are ignored), or the directory's own mtime when it holds no files. Whole seconds.
 */
export function newestMtime(entries: ScannedEntry[]): number {
  let newest = -1;
  for (const e of entries) if (e.type === 'file' && e.mtimeMs > newest) newest = e.mtimeMs;
  if (newest < 0) newest = entries[0]?.mtimeMs ?? 0;
  return Math.max(0, Math.floor(newest / 1000));
}

/** The uncompressed tar of scanned entries, every mtime set to `mtime` (seconds). */
export function tarStream(entries: ScannedEntry[], mtime: number): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield encodeTarHeader({ path: e.path, type: e.type, size: e.size, mode: e.mode, mtime, linkname: e.linkname });
      if (e.type !== 'file') continue;
      let n = 0;
      for await (const chunk of createReadStream(e.abs, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > e.size) break;
        yield chunk;
      }
      if (n !== e.size) throw new Error(`${e.abs} changed while it was being archived (size ${e.size} → ${n}); push again`);
      yield padding(e.size);
    }
    yield ZERO;
    yield ZERO;
  }
  return Readable.from(gen(), { objectMode: false });
}

export interface PackedDirectory {
  /** The tar+gzip bytes. */
  stream: Readable;
  /** Digest and size of the uncompressed tar (oras's io.deis.oras.content.digest); valid after `stream` ended. */
  tar(): { digest: string; size: number };
}

/** Reproducible tar+gzip of scanned entries (gzip level 6, no name, mtime 0 in the gzip header). */
export function packDirectory(entries: ScannedEntry[], mtime: number): PackedDirectory {
  const tar = tarStream(entries, mtime);
  const hasher = new HashingStream();
  const gzip = createGzip({ level: 6 });
  tar.on('error', (e) => hasher.destroy(e));
  hasher.on('error', (e) => gzip.destroy(e));
  tar.pipe(hasher).pipe(gzip);
  return {
    stream: gzip,
    tar: () => ({ digest: hasher.digest, size: hasher.size }),
  };
}

// ---------------------------------------------------------------------------------------------
// Reading: a strict tar reader (tar-read.ts) and the pre-extraction check (tar-check.ts).

export { listTar, parseTar, TarFormatError, type TarEntry, type TarEntryType } from './tar-read.js';
export { ARTIFACT_MARKER, checkTarEntries, stripComponentsFor, type CheckTarOptions } from './tar-check.js';
