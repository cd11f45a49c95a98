/**
 * A strict, streaming tar reader (ustar, PAX, GNU long names), for checking archives before
 * GNU tar extracts them. It reads names exactly as GNU tar does where Hades accepts the
 * feature, and marks (`refusals`) what it does not interpret the way tar would: PAX keys
 * outside a small allow-list (e.g. `GNU.sparse.name`, which tar uses as the entry's name),
 * several extended headers before one entry, names that are not valid UTF-8. File contents
 * are skipped, never buffered.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;

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
  /** Why the reader cannot vouch for this entry being read as GNU tar reads it (empty/absent: fine). */
  refusals?: string[];
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

/** The only types Hades extracts; everything else (including '7' contiguous, 'S' sparse, 'M', 'V', 'N', 'D', 'X') is 'other' or a device. */
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/**
 * PAX keys of an entry's extended header ('x') that Hades reads exactly as GNU tar does.
 * Any other key (GNU.sparse.*, SCHILY.xattr.*, hdrcharset, …) refuses the entry: tar may
 * give it another name, data layout or attributes than the checker saw.
 */
export const PAX_KEYS = new Set(['path', 'linkpath', 'size', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname', 'comment']);
/** Keys accepted in a global header ('g'), which applies to every later entry (`git archive` writes `comment`). */
export const GLOBAL_PAX_KEYS = new Set(['comment']);

const NUMERIC_PAX = /^(size|uid|gid)$/;
const TIME_PAX = /^(mtime|atime|ctime)$/;

const MAX_META = 1024 * 1024; // PAX / GNU long-name records are kept in memory: bound them

interface Text {
  value: string;
  /** A NUL followed by more non-NUL bytes. */
  nul: boolean;
  /** Not valid UTF-8 (the decoded string would differ from the bytes tar uses). */
  badUtf8: boolean;
}

function text(f: Buffer): Text {
  const i = f.indexOf(0);
  const bytes = i < 0 ? f : f.subarray(0, i);
  const value = bytes.toString('utf8');
  return { value, nul: i >= 0 && f.subarray(i).some((x) => x !== 0), badUtf8: !Buffer.from(value, 'utf8').equals(bytes) };
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

/** PAX records, strictly "<decimal length> <key>=<value>\n" back to back (GNU tar is laxer: refuse what it would read differently). */
function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    const lenText = sp < 0 ? '' : data.subarray(off, sp).toString('latin1');
    const len = /^[1-9][0-9]{0,7}$/.test(lenText) ? Number(lenText) : NaN;
    if (!Number.isInteger(len) || off + len > data.length || data[off + len - 1] !== 0x0a)
      throw new TarFormatError('malformed PAX header record');
    const rec = data.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('malformed PAX header record');
    out.set(rec.subarray(0, eq).toString('latin1'), rec.subarray(eq + 1));
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

/** Meta records collected for the next entry. */
interface Pending {
  pax?: Map<string, Buffer>;
  longName?: Text;
  longLink?: Text;
  refusals: string[];
}

function applyMeta(kind: 'x' | 'g' | 'L' | 'K', data: Buffer, p: Pending): void {
  if (kind === 'g') {
    if (p.pax || p.longName || p.longLink) p.refusals.push('a global PAX header comes between its extended header and the entry');
    for (const k of parsePax(data).keys())
      if (!GLOBAL_PAX_KEYS.has(k))
        p.refusals.push(`a global PAX header before it sets ${JSON.stringify(k)} for every later entry (only "comment" is accepted)`);
    return;
  }
  if (kind === 'x') {
    if (p.pax || p.longName || p.longLink) p.refusals.push('several extended headers (PAX / GNU long name) precede it');
    p.pax = parsePax(data);
    for (const [k, v] of p.pax) {
      const s = v.toString('utf8');
      if (!PAX_KEYS.has(k)) p.refusals.push(`PAX key ${JSON.stringify(k)} is not supported (GNU tar would apply it; the checker does not)`);
      else if (!Buffer.from(s, 'utf8').equals(v)) p.refusals.push(`PAX ${k} is not valid UTF-8`);
      else if (NUMERIC_PAX.test(k) && !/^[0-9]{1,18}$/.test(s)) p.refusals.push(`invalid PAX ${k} ${JSON.stringify(s)}`);
      else if (TIME_PAX.test(k) && !/^-?[0-9]{1,18}(\.[0-9]+)?$/.test(s)) p.refusals.push(`invalid PAX ${k} ${JSON.stringify(s)}`);
    }
    return;
  }
  // GNU tar reads a long name as the record's bytes up to the first NUL.
  if (p.pax || (kind === 'L' ? p.longName : p.longLink)) p.refusals.push('several extended headers (PAX / GNU long name) precede it');
  if (kind === 'L') p.longName = text(data);
  else p.longLink = text(data);
}

/**
 * Parses a tar stream into entries (PAX `x` records and GNU long names applied); file contents
 * are skipped, never buffered. Throws TarFormatError on a malformed or truncated archive.
 */
export async function* parseTar(input: Readable | string | Buffer): AsyncGenerator<TarEntry> {
  let buf: Buffer = Buffer.alloc(0);
  let skip = 0; // bytes of data + padding still to drop
  let collect: { kind: 'x' | 'g' | 'L' | 'K'; size: number; parts: Buffer[]; got: number; pad: number } | null = null;
  let pending: Pending = { refusals: [] };
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
        const n = Math.min(collect.size - collect.got, buf.length - off);
        collect.parts.push(buf.subarray(off, off + n));
        collect.got += n;
        off += n;
        if (collect.got < collect.size) break;
        applyMeta(collect.kind, Buffer.concat(collect.parts), pending);
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
      // GNU tar: the ustar prefix counts when the magic is "ustar\0" and the prefix is non-empty.
      const ustar = h.subarray(257, 263).toString('latin1') === 'ustar\0';
      const name = text(h.subarray(0, 100));
      const prefix = ustar ? text(h.subarray(345, 500)) : { value: '', nul: false, badUtf8: false };
      const link = text(h.subarray(157, 257));
      const refusals = [...pending.refusals];
      let path = prefix.value ? `${prefix.value}/${name.value}` : name.value;
      let nulInName = name.nul || prefix.nul;
      let badUtf8 = name.badUtf8 || prefix.badUtf8;
      if (pending.longName) ({ value: path, nul: nulInName, badUtf8 } = pending.longName);
      let linkname: string | undefined = link.value || undefined;
      let linkNul = link.nul;
      let linkBad = link.badUtf8;
      if (pending.longLink) ({ value: linkname, nul: linkNul, badUtf8: linkBad } = pending.longLink);
      const pax = pending.pax ?? new Map<string, Buffer>();
      const paxText = (k: string): string | undefined => pax.get(k)?.toString('utf8');
      if (pax.has('path')) [path, nulInName, badUtf8] = [paxText('path')!, false, false];
      if (pax.has('linkpath')) [linkname, linkNul, linkBad] = [paxText('linkpath')!, false, false];
      if (pax.has('size') && /^[0-9]{1,18}$/.test(paxText('size')!)) {
        size = Number(paxText('size'));
        if (!Number.isSafeInteger(size)) throw new TarFormatError('invalid PAX size');
      }
      if (badUtf8 || linkBad) refusals.push('name or link target is not valid UTF-8');
      const type: TarEntryType = TYPES[typeflag] ?? 'other';
      const mtime = paxText('mtime');
      const entry: TarEntry = {
        path,
        type,
        typeflag,
        size,
        mode: readNumber(h, 100, 8, 'mode'),
        mtime:
          mtime !== undefined && /^-?[0-9]{1,18}(\.[0-9]+)?$/.test(mtime) ? Math.floor(Number(mtime)) : readNumber(h, 136, 12, 'mtime'),
        uid: readNumber(h, 108, 8, 'uid'),
        gid: readNumber(h, 116, 8, 'gid'),
        ...(linkname !== undefined ? { linkname } : {}),
        ...(nulInName || linkNul ? { nulInName: true } : {}),
        ...(refusals.length ? { refusals } : {}),
      };
      pending = { refusals: [] };
      // Links and directories carry no data (a recorded size on them is refused by the checker).
      const dataSize = type === 'file' || type === 'other' ? size : 0;
      skip = dataSize + ((BLOCK - (dataSize % BLOCK)) % BLOCK);
      yield entry;
    }
    buf = off < buf.length ? buf.subarray(off) : Buffer.alloc(0);
  }
  // A missing end-of-archive marker is tolerated at a clean entry boundary (like GNU tar);
  // anything cut inside an entry or its meta records is not.
  if (!ended && (skip > 0 || collect || buf.length > 0 || pending.pax || pending.longName || pending.longLink))
    throw new TarFormatError('truncated tar archive');
}

/** All entries of a tar or tar.gz (path, stream or buffer). Throws TarFormatError when malformed. */
export async function listTar(input: Readable | string | Buffer): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const e of parseTar(input)) out.push(e);
  return out;
}
