/**
 * The armor decoder and fingerprints against the real `gpg`: keys made in the test, the
 * dearmored bytes compared with `gpg --dearmor`'s, fingerprints with `gpg --fingerprint`'s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  crc24,
  dearmor,
  fingerprint,
  inspectKey,
  isArmored,
  normalizeFingerprint,
  normalizeSha256,
  packets,
  urlProblem,
} from '../../src/actions/gpg-key.js';
import { type GpgHome, gpgHome } from '../helpers/gpg.js';

let g: GpgHome;
let fprA: string;
let fprB: string;
let armoredA: Buffer;
let binaryA: Buffer;

beforeAll(() => {
  g = gpgHome();
  fprA = g.genKey('Key A <a@example.com>');
  fprB = g.genKey('Key B <b@example.com>');
  armoredA = g.gpg(['--armor', '--export', fprA]);
  binaryA = g.gpg(['--export', fprA]);
});
afterAll(() => g?.close());

describe('dearmor', () => {
  it('gives exactly the bytes of gpg --dearmor (and of gpg --export)', () => {
    const ours = dearmor(armoredA.toString('latin1'));
    expect(ours.equals(g.gpg(['--dearmor'], armoredA))).toBe(true);
    expect(ours.equals(binaryA)).toBe(true);
  });

  it('skips armor headers and text around the block, CRLF line ends too', () => {
    const withComment = g.gpg(['--armor', '--comment', 'made for a test', '--export', fprA]);
    expect(withComment.toString()).toContain('Comment: made for a test');
    const wrapped = `Some text before\r\n${withComment.toString().replace(/\n/g, '\r\n')}trailing words\n`;
    expect(dearmor(wrapped).equals(binaryA)).toBe(true);
  });

  it('refuses a corrupted body (CRC-24 mismatch) and a bad checksum line', () => {
    const text = armoredA.toString();
    const lines = text.split('\n');
    const i = lines.findIndex((l) => l.length > 40);
    const c = lines[i]![10] === 'A' ? 'B' : 'A';
    lines[i] = lines[i]!.slice(0, 10) + c + lines[i]!.slice(11);
    expect(() => dearmor(lines.join('\n'))).toThrow(/checksum mismatch/);
    const sum = text.split('\n').findIndex((l) => /^=.{4}$/.test(l));
    const other = text.split('\n');
    other[sum] = '=AAAA';
    expect(() => dearmor(other.join('\n'))).toThrow(/checksum mismatch/);
  });

  it('accepts armor without a checksum line (RFC 9580 allows it)', () => {
    const noSum = armoredA
      .toString()
      .split('\n')
      .filter((l) => !/^=.{4}$/.test(l))
      .join('\n');
    expect(dearmor(noSum).equals(binaryA)).toBe(true);
  });

  it('refuses non-base64, a missing END, a private key block, two blocks', () => {
    const t = armoredA.toString();
    expect(() => dearmor(t.replace(/\n(m)/, '\n*$1'))).toThrow(/not base64/);
    expect(() => dearmor(t.replace(/-----END[^\n]*/, ''))).toThrow(/no "-----END/);
    expect(() => dearmor(t.replace(/PUBLIC KEY BLOCK/g, 'PRIVATE KEY BLOCK'))).toThrow(/PGP PRIVATE KEY BLOCK/);
    expect(() => dearmor(t + t)).toThrow(/more than one armored block/);
    expect(() => dearmor('<html>404</html>')).toThrow(/no "-----BEGIN PGP PUBLIC KEY BLOCK-----"/);
  });

  it('crc24 of RFC 4880 (the empty input is the init value)', () => {
    expect(crc24(Buffer.alloc(0))).toBe(0xb704ce);
  });
});

describe('inspectKey and fingerprints', () => {
  it('v4: the fingerprints gpg prints, from armored and from binary downloads', () => {
    expect(inspectKey(armoredA)).toMatchObject({ armored: true, keys: [{ version: 4, fingerprint: fprA }] });
    expect(inspectKey(binaryA)).toMatchObject({ armored: false, keys: [{ version: 4, fingerprint: fprA }] });
    expect(inspectKey(armoredA).binary.equals(binaryA)).toBe(true);
    expect(isArmored(binaryA)).toBe(false);
    const both = g.gpg(['--armor', '--export', fprA, fprB]);
    expect(
      inspectKey(both)
        .keys.map((k) => k.fingerprint)
        .sort(),
    ).toEqual([fprA, fprB].sort());
  });

  it("v6: the RFC 9580 sample certificate's primary key (fingerprint CB186C4F…)", () => {
    // The public-key packet body of RFC 9580 Appendix A.3 (Ed25519, created 2022-11-30).
    const body = Buffer.from('BmOHf+MbAAAAIPlNp7tI1gph5WdwamWH0DMZmbudiRoIJC6thFQ9+JWj', 'base64');
    expect(fingerprint(body)).toEqual({ version: 6, fingerprint: 'CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9' });
    const packet = Buffer.concat([Buffer.from([0xc6, body.length]), body]); // new-format tag 6
    expect(packets(packet)).toEqual([{ tag: 6, body }]);
    expect(() => fingerprint(Buffer.from([3, 0, 0]))).toThrow(/version 3 OpenPGP key/);
  });

  it('refuses secret keys, HTML error pages, truncated keyrings, an empty download', () => {
    const secret = g.gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--export-secret-keys', fprA]);
    expect(() => inspectKey(secret)).toThrow(/SECRET key material/);
    expect(() => inspectKey(Buffer.from('<!doctype html><h1>Not here</h1>'))).toThrow(/not a packet header/);
    expect(() => inspectKey(binaryA.subarray(0, binaryA.length - 5))).toThrow(/truncated OpenPGP packet/);
    expect(() => inspectKey(Buffer.alloc(0))).toThrow(/empty/);
    // A user-id packet alone (tag 13) is not a key.
    const uid = packets(binaryA).find((p) => p.tag === 13)!;
    expect(() => inspectKey(Buffer.concat([Buffer.from([0xcd, uid.body.length]), uid.body]))).toThrow(/not an OpenPGP public key/);
  });
});

describe('pins and URLs', () => {
  it('fingerprints: spaces, lower case and 0x allowed; key ids refused', () => {
    expect(normalizeFingerprint('e493 e0c2 734e 790b 76a3  2186 7118 0fde 68fe 4b3e')).toEqual({
      fingerprint: 'E493E0C2734E790B76A3218671180FDE68FE4B3E',
    });
    expect(normalizeFingerprint('0x71180FDE68FE4B3E')).toMatchObject({
      error: expect.stringMatching(/16 hex digits.*key id is not enough/),
    });
    expect(normalizeFingerprint('XYZ')).toMatchObject({ error: expect.stringMatching(/not hexadecimal/) });
    expect(normalizeSha256(`sha256:${'A'.repeat(64)}`)).toEqual({ sha256: 'a'.repeat(64) });
    expect(normalizeSha256('abc')).toMatchObject({ error: expect.stringMatching(/not 64 hex digits/) });
  });

  it('URLs: https only, no credentials', () => {
    expect(urlProblem('https://example.com/key.asc')).toBeUndefined();
    expect(urlProblem('http://example.com/key.asc')).toMatch(/plain http:\/\/: refused/);
    expect(urlProblem('ftp://example.com/key.asc')).toMatch(/not an https:\/\/ URL/);
    expect(urlProblem('https://u:secret@example.com/key.asc')).toMatch(/credentials in the URL/);
    expect(urlProblem('https://u:secret@example.com/key.asc')).not.toContain('secret');
    expect(urlProblem('key.asc')).toMatch(/not a URL/);
  });
});
