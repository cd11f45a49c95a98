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
 * Reading: `listTar` and `checkTarEntries` parse a tar (optionally gzip'd — detected by its
 * magic) as a stream, without extracting anything and without buffering file contents.
 */
import { createReadStream, promises as fsp, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { Problem } from '../errors.js';
import { UserError } from '../errors.js';
import { HashingStream } from './digest.js';

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK);
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits: 8 GiB - 1

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
// Reading

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other';

export interface TarEntry {
  path: string;
  type: TarEntryType;
  /** The raw typeflag character. */
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  linkname?: string;
  /** Set when a name field held a NUL followed by more bytes (the name was cut there). */
  nulInName?: boolean;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

const MAX_META = 1024 * 1024; // PAX / GNU long-name records are kept in memory: bound them

function readField(b: Buffer, off: number, len: number): { value: string; nul: boolean } {
  const f = b.subarray(off, off + len);
  const i = f.indexOf(0);
  if (i < 0) return { value: f.toString('utf8'), nul: false };
  const rest = f.subarray(i);
  return { value: f.subarray(0, i).toString('utf8'), nul: rest.some((x) => x !== 0) };
}

function readNumber(b: Buffer, off: number, len: number, field: string): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // base-256 (GNU): big-endian two's complement
    let n = 0;
    for (let i = 1; i < len; i++) n = n * 256 + f[i]!;
    if (f[0]! & 0x40) throw new TarFormatError(`negative ${field} in a tar header`);
    return n + (f[0]! & 0x3f) * 256 ** (len - 1);
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid ${field} field ${JSON.stringify(s)} in a tar header`);
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = readNumber(b, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) throw new TarFormatError('malformed PAX header record');
    const len = Number(data.subarray(off, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length || data[off + len - 1] !== 0x0a)
      throw new TarFormatError('malformed PAX header record');
    const rec = data.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('malformed PAX header record');
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1).toString('utf8'));
    off += len;
  }
  return out;
}

/** Chunks of a tar stream, gunzipped when the input starts with the gzip magic. */
async function* tarBytes(input: Readable | string | Buffer): AsyncGenerator<Buffer> {
  const src: AsyncIterable<Buffer> =
    typeof input === 'string'
      ? (createReadStream(input) as AsyncIterable<Buffer>)
      : Buffer.isBuffer(input)
        ? Readable.from([input])
        : (input as AsyncIterable<Buffer>);
  const it = src[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) return;
  const head = first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    const raw = Readable.from(all());
    raw.on('error', (e) => gunzip.destroy(e));
    raw.pipe(gunzip);
    yield* gunzip as AsyncIterable<Buffer>;
  } else {
    yield* all();
  }
}

/**
 * Parses a tar stream into entries (PAX `x` records and GNU long names applied); file contents
 * are skipped, never buffered. Throws TarFormatError on a malformed or truncated archive.
 */
export async function* parseTar(input: Readable | string | Buffer): AsyncGenerator<TarEntry> {
  let buf: Buffer = Buffer.alloc(0);
  let skip = 0; // bytes of data + padding still to drop
  let collect: { kind: 'x' | 'g' | 'L' | 'K'; size: number; parts: Buffer[]; got: number; pad: number } | null = null;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let longNul = false;
  let ended = false;
  let zeroBlocks = 0;

  for await (const chunk of tarBytes(input)) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      if (ended) {
        off = buf.length;
        break;
      }
      if (skip > 0) {
        const n = Math.min(skip, buf.length - off);
        skip -= n;
        off += n;
        if (skip > 0) break;
        continue;
      }
      if (collect) {
        const need = collect.size - collect.got;
        const n = Math.min(need, buf.length - off);
        collect.parts.push(buf.subarray(off, off + n));
        collect.got += n;
        off += n;
        if (collect.got < collect.size) break;
        const data = Buffer.concat(collect.parts);
        if (collect.kind === 'x') pax = parsePax(data);
        else if (collect.kind === 'g') {
          const g = parsePax(data);
          if (g.has('path') || g.has('linkpath'))
            throw new TarFormatError('a global PAX header sets path/linkpath for every entry; refusing the archive');
        } else {
          const i = data.indexOf(0);
          const value = (i < 0 ? data : data.subarray(0, i)).toString('utf8');
          const nul = i >= 0 && data.subarray(i).some((x) => x !== 0);
          if (collect.kind === 'L') {
            longName = value;
            longNul = nul;
          } else longLink = value;
        }
        skip = collect.pad;
        collect = null;
        continue;
      }
      if (buf.length - off < BLOCK) break;
      const h = buf.subarray(off, off + BLOCK);
      off += BLOCK;
      if (h.every((x) => x === 0)) {
        zeroBlocks++;
        if (zeroBlocks === 2) ended = true;
        continue;
      }
      if (zeroBlocks) throw new TarFormatError('data after an end-of-archive block');
      if (!checksumOk(h)) throw new TarFormatError('bad header checksum (not a tar archive, or corrupt)');
      const typeflag = String.fromCharCode(h[156]!);
      let size = readNumber(h, 124, 12, 'size');
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        if (size > MAX_META) throw new TarFormatError(`a ${typeflag} meta entry of ${size} bytes is too large`);
        collect = { kind: typeflag, size, parts: [], got: 0, pad };
        continue;
      }
      const magic = h.subarray(257, 263).toString('latin1');
      const name = readField(h, 0, 100);
      const prefix = magic === 'ustar\0' ? readField(h, 345, 155) : { value: '', nul: false };
      const link = readField(h, 157, 100);
      let path = prefix.value ? `${prefix.value}/${name.value}` : name.value;
      let nulInName = name.nul || prefix.nul || link.nul;
      if (longName !== undefined) {
        path = longName;
        nulInName = longNul || link.nul;
      }
      if (pax.has('path')) path = pax.get('path')!;
      let linkname: string | undefined = link.value || undefined;
      if (longLink !== undefined) linkname = longLink;
      if (pax.has('linkpath')) linkname = pax.get('linkpath')!;
      if (pax.has('size')) {
        const s = Number(pax.get('size'));
        if (!Number.isSafeInteger(s) || s < 0) throw new TarFormatError('invalid PAX size');
        size = s;
      }
      const type: TarEntryType = TYPES[typeflag] ?? 'other';
      const entry: TarEntry = {
        path,
        type,
        typeflag,
        size,
        mode: readNumber(h, 100, 8, 'mode'),
        mtime: pax.has('mtime') ? Math.floor(Number(pax.get('mtime'))) : readNumber(h, 136, 12, 'mtime'),
        uid: readNumber(h, 108, 8, 'uid'),
        gid: readNumber(h, 116, 8, 'gid'),
        ...(linkname !== undefined ? { linkname } : {}),
        ...(nulInName ? { nulInName } : {}),
      };
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      longNul = false;
      // Links, directories and devices carry no data even if a size is recorded (except plain files).
      const dataSize = type === 'file' || type === 'other' ? size : 0;
      skip = dataSize + ((BLOCK - (dataSize % BLOCK)) % BLOCK);
      yield entry;
    }
    buf = off < buf.length ? buf.subarray(off) : Buffer.alloc(0);
  }
  // A missing end-of-archive marker is tolerated at a clean entry boundary (like GNU tar);
  // anything cut inside an entry or its meta records is not.
  if (!ended && (skip > 0 || collect || buf.length > 0 || longName !== undefined || longLink !== undefined || pax.size > 0))
    throw new TarFormatError('truncated tar archive');
}

/** All entries of a tar or tar.gz (path, stream or buffer). Throws TarFormatError when malformed. */
export async function listTar(input: Readable | string | Buffer): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const e of parseTar(input)) out.push(e);
  return out;
}

export interface CheckTarOptions {
  /**
   * When set, every entry must be this directory or inside it (the layout oras and Hades
   * use for directory artifacts: `<title>/…`).
   */
  root?: string;
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Checks a tar (or tar.gz) before it is extracted anywhere. Returns one Problem per bad entry
 * (empty = safe): absolute paths, `..` components, NUL bytes in names, paths that go through a
 * symlink of the archive, symlinks whose target leaves the extraction root, hard links to
 * anything but an earlier file of the archive, device files, FIFOs and unknown entry types.
 * A malformed archive is reported as a problem too (never thrown).
 */
export async function checkTarEntries(input: Readable | string | Buffer, opts: CheckTarOptions = {}): Promise<Problem[]> {
  const problems: Problem[] = [];
  const symlinks = new Set<string>();
  const files = new Set<string>();
  const add = (path: string, what: string, hint?: string): void => {
    problems.push({ message: `tar entry ${JSON.stringify(path)}: ${what}`, ...(hint ? { hint } : {}) });
  };
  try {
    for await (const e of parseTar(input)) {
      const p = e.path;
      if (p === '') {
        add(p, 'empty name');
        continue;
      }
      if (e.nulInName || p.includes('\0') || (e.linkname ?? '').includes('\0')) {
        add(p, 'name or link target contains a NUL byte');
        continue;
      }
      if (p.startsWith('/')) {
        add(p, 'absolute path', 'archives may only contain relative paths');
        continue;
      }
      const parts = components(p);
      if (parts.includes('..')) {
        add(p, 'path contains a ".." component');
        continue;
      }
      if (parts.length === 0) {
        if (e.type !== 'directory') add(p, 'names the extraction root itself');
        continue;
      }
      if (opts.root !== undefined && parts[0] !== opts.root) {
        add(p, `is outside the artifact directory ${JSON.stringify(opts.root)}`);
        continue;
      }
      const key = parts.join('/');
      let through: string | undefined;
      for (let i = 1; i < parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        if (symlinks.has(prefix)) {
          through = prefix;
          break;
        }
      }
      if (through !== undefined) {
        add(p, `path goes through the symlink ${JSON.stringify(through)} of the archive`);
        continue;
      }
      switch (e.type) {
        case 'symlink': {
          const target = e.linkname ?? '';
          if (target === '') add(p, 'symlink with an empty target');
          else if (target.startsWith('/')) add(p, `symlink to the absolute path ${JSON.stringify(target)}`);
          else if (resolveInside(parts.slice(0, -1), target) === null)
            add(p, `symlink to ${JSON.stringify(target)} points outside the extraction root`);
          else {
            symlinks.add(key);
            files.delete(key);
          }
          break;
        }
        case 'hardlink': {
          const target = e.linkname ?? '';
          const tparts = components(target);
          if (target === '' || target.startsWith('/') || tparts.includes('..'))
            add(p, `hard link to ${JSON.stringify(target)} points outside the extraction root`);
          else if (!files.has(tparts.join('/')))
            add(p, `hard link to ${JSON.stringify(target)}, which is not a file earlier in the archive`);
          else files.add(key);
          break;
        }
        case 'file':
          files.add(key);
          symlinks.delete(key);
          break;
        case 'directory':
          files.delete(key);
          symlinks.delete(key);
          break;
        case 'char-device':
        case 'block-device':
          add(p, `${e.type === 'char-device' ? 'character' : 'block'} device file`);
          break;
        case 'fifo':
          add(p, 'FIFO (named pipe)');
          break;
        default:
          add(p, `unsupported entry type ${JSON.stringify(e.typeflag)}`);
      }
    }
  } catch (err) {
    problems.push({ message: `not a valid tar archive: ${(err as Error).message}` });
  }
  return problems;
}
