import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  entryMatchesHost,
  fingerprint,
  hostKeyError,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  loadKnownHosts,
  matchPatternList,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  wildcardMatch,
} from '../../src/transport/ssh/known-hosts.js';

// Vectors made with OpenSSH 9.2: ssh-keygen -t ..., ssh-keygen -lf, ssh-keygen -H.
const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHD2Eolafwnk7mj9i0F+eNVlUrcMud/I06jvOG2gNQpV';
const ED_FP = 'SHA256:ROKllcHoEvvN8UgxmDyZBPs1WDtrlS7KwYLoQUQW1HI';
const EC =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHYXUZLcZ800CiDi2M+ewoLvX5pW6QZpUMCEeaqXyR+cgNfpz6+onvTCbg1ao0Pz1V0SEAXbFNO+xDULfKMpaU4=';
const EC_FP = 'SHA256:kNEc1wF/wAdzVrRqAjvFi2MVn0f694v09qbdolwSVa8';
const HASHED_22 = '|1|nUxjLbgMY6OpCM0jb0J3RRq72Eo=|of3kuspG7Gx6stN6jghhMfvwKQM='; // web.example.com
const HASHED_2222 = '|1|sKwmWt12j00RjXSIqQ9Z9KaJ8+A=|DJ+8IFfdy0GcAxG6guKvWS27hS8='; // [web.example.com]:2222

const blob = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');
const edKey = blob(ED);
const ecKey = blob(EC);

describe('known_hosts parsing', () => {
  it('reads entries with file:line, markers, and skips comments, blanks and junk', () => {
    const text = [
      '# comment',
      '',
      `web1,10.0.0.1 ${ED} a comment`,
      `  [web2]:2222 ${EC}`,
      `@revoked * ${ED}`,
      `@cert-authority *.example.com ${EC}`,
      '@bogus host ssh-ed25519 AAAA',
      'only-two-fields ssh-ed25519',
      `mismatch ssh-rsa ${ED.split(' ')[1]}`, // type field disagrees with the blob
      'bad ssh-ed25519 not*base64',
      `crlf ${ED}\r`,
    ].join('\n');
    const e = parseKnownHosts(text, '/kh');
    expect(e.map((x) => [x.line, x.marker ?? '', x.hosts, x.keyType])).toEqual([
      [3, '', 'web1,10.0.0.1', 'ssh-ed25519'],
      [4, '', '[web2]:2222', 'ecdsa-sha2-nistp256'],
      [5, 'revoked', '*', 'ssh-ed25519'],
      [6, 'cert-authority', '*.example.com', 'ecdsa-sha2-nistp256'],
      [11, '', 'crlf', 'ssh-ed25519'],
    ]);
    expect(e[0]!.file).toBe('/kh');
    expect(e[0]!.key.equals(edKey)).toBe(true);
  });

  it('missing files are empty; files are read in order', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kh-'));
    fs.writeFileSync(path.join(dir, 'b'), `b ${EC}\n`);
    const e = await loadKnownHosts([path.join(dir, 'nope'), path.join(dir, 'b')]);
    expect(e.map((x) => `${x.file}:${x.line}`)).toEqual([`${dir}/b:1`]);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('fingerprints and names', () => {
  it('SHA256 fingerprints match ssh-keygen -l', () => {
    expect(fingerprint(edKey)).toBe(ED_FP);
    expect(fingerprint(ecKey)).toBe(EC_FP);
    expect(keyTypeOf(ecKey)).toBe('ecdsa-sha2-nistp256');
  });

  it('[host]:port for every port but 22, lower-cased', () => {
    expect(knownHostName('Web.Example.COM', 22)).toBe('web.example.com');
    expect(knownHostName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });
});

describe('pattern matching (OpenSSH match.c)', () => {
  it.each([
    ['*', 'anything', true],
    ['web?', 'web1', true],
    ['web?', 'web10', false],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['10.0.*.1', '10.0.255.1', true],
    ['WEB*', 'web1', true],
    ['[10.0.0.*]:2222', '[10.0.0.7]:2222', true],
    ['[10.0.0.*]:2222', '10.0.0.7', false],
    ['a*b*c', 'aXXbYYbc', true],
  ])('%s ~ %s → %s', (p, s, want) => expect(wildcardMatch(p, s)).toBe(want));

  it('lists: any positive match, vetoed by a negated one', () => {
    expect(matchPatternList('a,b,c', 'b')).toBe(true);
    expect(matchPatternList('10.0.0.*,!10.0.0.5', '10.0.0.4')).toBe(true);
    expect(matchPatternList('10.0.0.*,!10.0.0.5', '10.0.0.5')).toBe(false);
    expect(matchPatternList('!10.0.0.5', '10.0.0.4')).toBe(false); // negation alone never matches
  });

  it('hashed entries from ssh-keygen -H', () => {
    expect(entryMatchesHost(HASHED_22, 'web.example.com')).toBe(true);
    expect(entryMatchesHost(HASHED_22, 'WEB.example.com')).toBe(true);
    expect(entryMatchesHost(HASHED_22, 'web.example.org')).toBe(false);
    expect(entryMatchesHost(HASHED_2222, '[web.example.com]:2222')).toBe(true);
    expect(entryMatchesHost(HASHED_2222, 'web.example.com')).toBe(false);
    expect(entryMatchesHost('|1|broken', 'web.example.com')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const entries = parseKnownHosts(
    [`web1,10.0.0.1 ${ED}`, `${HASHED_2222} ${ED}`, `[db]:2222 ${EC}`, `@cert-authority ca-host ${ED}`, `*.wild ${EC}`].join('\n'),
    '/kh',
  );

  it('ok when the host is known with this key (plain, hashed, [host]:port, wildcard)', () => {
    expect(checkHostKey(entries, 'web1', 22, edKey).status).toBe('ok');
    expect(checkHostKey(entries, '10.0.0.1', 22, edKey).status).toBe('ok');
    expect(checkHostKey(entries, 'web.example.com', 2222, edKey).status).toBe('ok');
    expect(checkHostKey(entries, 'db', 2222, ecKey).status).toBe('ok');
    expect(checkHostKey(entries, 'x.wild', 22, ecKey).status).toBe('ok');
  });

  it('unknown when no entry names the host (port matters; cert-authority lines do not count)', () => {
    expect(checkHostKey(entries, 'web2', 22, edKey).status).toBe('unknown');
    expect(checkHostKey(entries, 'web1', 2222, edKey).status).toBe('unknown');
    expect(checkHostKey(entries, 'db', 22, ecKey).status).toBe('unknown');
    expect(checkHostKey(entries, 'ca-host', 22, edKey).status).toBe('unknown');
  });

  it('changed when known with other keys only — same type or not', () => {
    const v = checkHostKey(entries, 'web1', 22, ecKey);
    expect(v.status).toBe('changed');
    expect(v.status === 'changed' && v.known.map((e) => e.line)).toEqual([1]);
    expect(checkHostKey(entries, 'db', 2222, edKey).status).toBe('changed');
  });

  it('revoked beats everything', () => {
    const withRevoked = [...entries, ...parseKnownHosts(`@revoked * ${ED}`, '/revoked')];
    const v = checkHostKey(withRevoked, 'web1', 22, edKey);
    expect(v).toMatchObject({ status: 'revoked', entry: { file: '/revoked', line: 1 } });
  });

  it('knownKeyTypes/preferredHostKeyAlgorithms put known types first', () => {
    const rsaEntries = parseKnownHosts(`[db]:2222 ${EC}\n[db]:2222 ${ED}`, '/kh');
    expect(knownKeyTypes(rsaEntries, 'db', 2222)).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
    expect(preferredHostKeyAlgorithms(['ssh-rsa']).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(preferredHostKeyAlgorithms([])[0]).toBe('ssh-ed25519');
    expect(preferredHostKeyAlgorithms(['ecdsa-sha2-nistp256'])).toHaveLength(7);
  });

  it('error messages carry host, type, fingerprint and the way out', () => {
    const unknown = hostKeyError('web2', '10.0.0.9', 2222, edKey, { status: 'unknown' }, ['/home/u/.ssh/known_hosts']);
    expect(unknown.message).toBe(
      `web2: unknown host key for 10.0.0.9 port 2222: ssh-ed25519 ${ED_FP}\n` +
        `    it is in none of: /home/u/.ssh/known_hosts\n` +
        `    hint: check the fingerprint out of band, then rerun with --accept-new-hosts, ` +
        `or add it yourself: ssh-keyscan -p 2222 10.0.0.9 >> /home/u/.ssh/known_hosts`,
    );
    const v = checkHostKey(entries, 'web1', 22, ecKey);
    if (v.status !== 'changed') throw new Error('expected changed');
    const changed = hostKeyError('web1', 'web1', 22, ecKey, v, ['/kh']);
    expect(changed.message).toContain(
      `HOST KEY CHANGED for web1: it presented ecdsa-sha2-nistp256 ${EC_FP}, but it is known with a different key at /kh:1 (ssh-ed25519 ${ED_FP})`,
    );
    expect(changed.message).toContain('ssh-keygen -R web1 -f /kh');
    expect(changed.problem).toBe('changed');
  });
});

describe('appendKnownHost', () => {
  it('creates dir 0700 and file 0600, appends whole lines, serialises concurrent appends', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kh-'));
    const file = path.join(dir, 'deep', '.ssh', 'known_hosts');
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendKnownHost(file, `h${i}`, i % 2 ? 2222 : 22, i % 3 ? edKey : ecKey)));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const parsed = parseKnownHosts(fs.readFileSync(file, 'utf8'), file);
    expect(parsed).toHaveLength(20);
    for (let i = 0; i < 20; i++) {
      expect(checkHostKey(parsed, `h${i}`, i % 2 ? 2222 : 22, i % 3 ? edKey : ecKey).status).toBe('ok');
    }
    fs.writeFileSync(file, `x ${ED}`); // no trailing newline
    await appendKnownHost(file, 'y', 22, ecKey);
    expect(fs.readFileSync(file, 'utf8')).toBe(`x ${ED}\ny ${EC}\n`);
    fs.rmSync(dir, { recursive: true });
  });
});
