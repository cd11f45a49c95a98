/**
 * OpenPGP keys without a library and without `gpg` (pure, no I/O): ASCII armor decoding
 * (RFC 4880 §6 / RFC 9580 §6.2), a packet walk (RFC 4880 §4.2) and primary-key
 * fingerprints — v4: SHA-1 over 0x99 ‖ 2-octet length ‖ public-key packet body;
 * v6 (RFC 9580 §5.5.4): SHA-256 over 0x9B ‖ 4-octet length ‖ body; v5 (LibrePGP):
 * SHA-256 over 0x9A ‖ 4-octet length ‖ body. v2/v3 keys are refused.
 */
import { createHash, type Hash } from 'node:crypto';

const BEGIN = /^-----BEGIN PGP ([A-Z0-9 ,]+)-----$/;
const END = /^-----END PGP ([A-Z0-9 ,]+)-----$/;
const B64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** CRC-24 of RFC 4880 §6.1 (init 0xB704CE, generator 0x1864CFB). */
export function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/** True when the bytes look like ASCII armor (a BEGIN PGP line), not a binary keyring. */
export function isArmored(data: Buffer): boolean {
  // A binary OpenPGP stream starts with a packet tag (bit 7 set); armor is text.
  if (data.length === 0 || data[0]! & 0x80) return false;
  return /^-----BEGIN PGP /m.test(data.subarray(0, 64 * 1024).toString('latin1'));
}

/**
 * The binary body of an armored PGP PUBLIC KEY BLOCK: text before BEGIN and after END is
 * ignored (as RFC 4880 allows), headers are skipped, the body must be strict base64, and
 * the CRC-24 checksum line, when present, must match. Exactly what `gpg --dearmor` writes.
 */
export function dearmor(text: string): Buffer {
  const lines = text.split(/\r?\n/).map((l) => l.replace(/[ \t]+$/, ''));
  const begin = lines.findIndex((l) => BEGIN.test(l));
  if (begin < 0) throw new Error('no "-----BEGIN PGP PUBLIC KEY BLOCK-----" line');
  const type = BEGIN.exec(lines[begin]!)![1]!;
  if (type !== 'PUBLIC KEY BLOCK') throw new Error(`the armor is a "PGP ${type}", not a "PGP PUBLIC KEY BLOCK"`);
  let i = begin + 1;
  // Armor headers ("Comment: …", "Version: …") up to the blank line that ends them.
  while (i < lines.length && /^[A-Za-z0-9-]+: /.test(lines[i]!)) i++;
  if (lines[i] === '') i++;
  const body: string[] = [];
  let checksum: string | undefined;
  for (; i < lines.length; i++) {
    const l = lines[i]!;
    if (END.test(l)) break;
    if (l === '') continue;
    if (l.startsWith('=') && l.length === 5 && B64_LINE.test(l.slice(1))) {
      checksum = l.slice(1);
      continue;
    }
    if (checksum !== undefined) throw new Error(`armor line ${i + 1}: data after the checksum line`);
    if (!B64_LINE.test(l)) throw new Error(`armor line ${i + 1}: not base64`);
    body.push(l);
  }
  if (i >= lines.length) throw new Error('the armor has no "-----END PGP PUBLIC KEY BLOCK-----" line');
  if (END.exec(lines[i]!)![1] !== type) throw new Error(`armor line ${i + 1}: END line does not match BEGIN`);
  if (lines.slice(i + 1).some((l) => BEGIN.test(l)))
    throw new Error('more than one armored block: serve one PGP PUBLIC KEY BLOCK (it may hold several keys)');
  const b64 = body.join('');
  if (b64.length % 4 !== 0 || /=[^=]/.test(b64)) throw new Error('the armor body is not valid base64 (bad length or padding inside)');
  const bin = Buffer.from(b64, 'base64');
  if (bin.length === 0) throw new Error('the armor body is empty');
  if (checksum !== undefined) {
    const want = Buffer.from(checksum, 'base64');
    const got = crc24(bin);
    if (want.length !== 3 || want.readUIntBE(0, 3) !== got)
      throw new Error(
        `armor checksum mismatch (the line says =${checksum}, the body's CRC-24 is =${Buffer.from([got >> 16, (got >> 8) & 0xff, got & 0xff]).toString('base64')}): the download is corrupt`,
      );
  }
  return bin;
}

export interface Packet {
  tag: number;
  body: Buffer;
}

/** The packets of a binary OpenPGP stream; partial body lengths are refused (keys never use them). */
export function packets(data: Buffer): Packet[] {
  const out: Packet[] = [];
  let p = 0;
  while (p < data.length) {
    const h = data[p]!;
    if (!(h & 0x80)) throw new Error(`not an OpenPGP keyring: byte ${p} (0x${h.toString(16).padStart(2, '0')}) is not a packet header`);
    let tag: number;
    let len: number;
    let q = p + 1;
    const need = (n: number) => {
      if (q + n > data.length) throw new Error(`truncated OpenPGP packet header at byte ${p}`);
    };
    if (h & 0x40) {
      tag = h & 0x3f;
      need(1);
      const o = data[q]!;
      if (o < 192) {
        len = o;
        q += 1;
      } else if (o < 224) {
        need(2);
        len = ((o - 192) << 8) + data[q + 1]! + 192;
        q += 2;
      } else if (o === 255) {
        need(5);
        len = data.readUInt32BE(q + 1);
        q += 5;
      } else throw new Error(`OpenPGP packet at byte ${p} uses a partial body length (not valid in a keyring)`);
    } else {
      tag = (h >> 2) & 0x0f;
      const lt = h & 3;
      if (lt === 3) len = data.length - q;
      else {
        const n = [1, 2, 4][lt]!;
        need(n);
        len = data.readUIntBE(q, n);
        q += n;
      }
    }
    if (q + len > data.length)
      throw new Error(`truncated OpenPGP packet at byte ${p} (tag ${tag}, ${len} bytes declared, ${data.length - q} present)`);
    out.push({ tag, body: data.subarray(q, q + len) });
    p = q + len;
  }
  return out;
}

/** The fingerprint (uppercase hex) of a public-key packet body. */
export function fingerprint(body: Buffer): { version: number; fingerprint: string } {
  const version = body[0];
  let h: Hash;
  if (version === 4) {
    const pre = Buffer.from([0x99, (body.length >> 8) & 0xff, body.length & 0xff]);
    h = createHash('sha1').update(pre).update(body);
  } else if (version === 5 || version === 6) {
    const pre = Buffer.alloc(5);
    pre[0] = version === 6 ? 0x9b : 0x9a;
    pre.writeUInt32BE(body.length, 1);
    h = createHash('sha256').update(pre).update(body);
  } else throw new Error(`version ${version} OpenPGP key: only v4, v5 and v6 keys are supported`);
  return { version, fingerprint: h.digest('hex').toUpperCase() };
}

const TAG = { secretKey: 5, publicKey: 6, secretSubkey: 7 } as const;

export interface KeyInfo {
  armored: boolean;
  /** The binary keyring: the armor's body, or the download itself when it was binary. */
  binary: Buffer;
  /** Primary keys in file order. */
  keys: { version: number; fingerprint: string }[];
}

/**
 * What a downloaded key is: armored or binary, its binary form, its primary keys. Refuses
 * anything that is not an OpenPGP public keyring (an HTML error page, a secret key).
 */
export function inspectKey(data: Buffer): KeyInfo {
  const armored = isArmored(data);
  const binary = armored ? dearmor(data.toString('latin1')) : data;
  if (binary.length === 0) throw new Error('the download is empty');
  const ps = packets(binary);
  if (ps.some((p) => p.tag === TAG.secretKey || p.tag === TAG.secretSubkey))
    throw new Error('the download holds SECRET key material: refusing to deliver it');
  const keys = ps.filter((p) => p.tag === TAG.publicKey).map((p) => fingerprint(p.body));
  if (ps[0]!.tag !== TAG.publicKey || keys.length === 0)
    throw new Error(`not an OpenPGP public key: the first packet has tag ${ps[0]!.tag}, not 6 (public key)`);
  return { armored, binary, keys };
}

/** A fingerprint as written ("ABCD 1234 …", lower case, 0x prefix) → uppercase hex, or an error. */
export function normalizeFingerprint(raw: string): { fingerprint: string } | { error: string } {
  const f = raw.replace(/\s+/g, '').replace(/^0x/i, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(f)) return { error: `fingerprint ${JSON.stringify(raw)} is not hexadecimal` };
  if (f.length !== 40 && f.length !== 64)
    return {
      error: `fingerprint ${JSON.stringify(raw)} has ${f.length} hex digits; a v4 fingerprint has 40, a v5/v6 one 64 (a key id is not enough)`,
    };
  return { fingerprint: f };
}

/** A sha256 pin ("sha256:…" or bare hex) → lowercase hex, or an error. */
export function normalizeSha256(raw: string): { sha256: string } | { error: string } {
  const s = raw
    .trim()
    .replace(/^sha256:/i, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) return { error: `sha256 ${JSON.stringify(raw)} is not 64 hex digits` };
  return { sha256: s };
}

/** The key's source URL: https only, no credentials in it. An error text, or undefined when fine. */
export function urlProblem(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `src ${JSON.stringify(raw)} is not a URL`;
  }
  if (u.protocol === 'http:') return `src ${JSON.stringify(raw)} is plain http://: refused`;
  if (u.protocol !== 'https:') return `src ${JSON.stringify(raw)} is not an https:// URL`;
  if (u.username || u.password) return `src for ${u.host}${u.pathname} has credentials in the URL (user:password@): refused`;
  return undefined;
}
