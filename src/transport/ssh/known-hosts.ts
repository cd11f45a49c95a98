/**
 * OpenSSH known_hosts: parsing, matching and appending (accept-new), without ssh-keygen.
 *
 * Supported, as in OpenSSH's hostfile.c / match.c:
 *  - plain entries, comma-separated host lists, `[host]:port` for ports other than 22;
 *  - hashed entries `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`;
 *  - wildcard patterns (`*`, `?`) and negation (`!pattern`: a negated match vetoes the line);
 *  - `@revoked` (the key is refused, whatever the host) and `@cert-authority`
 *    (ignored: we cannot verify host certificates, so such lines never vouch for a key);
 *  - comments and blank lines; unparseable lines are skipped (OpenSSH does the same).
 *
 * Verdict (OpenSSH semantics): a host known with any key, presenting a key that matches
 * none of them, is CHANGED — refused whatever the flags.
 */
import { createHash, createHmac } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TransportError } from '../types.js';

export interface KnownHostEntry {
  file: string;
  line: number; // 1-based
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written (comma-separated patterns, or one `|1|salt|hash`). */
  hosts: string;
  keyType: string;
  /** Raw public key blob (SSH wire format). */
  key: Buffer;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. Lower-cased. */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** OpenSSH fingerprint: `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Key type embedded at the start of a wire-format public key blob. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  if (n > 64 || 4 + n > blob.length) return 'unknown';
  return blob.subarray(4, 4 + n).toString('latin1');
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let s = lines[i]!.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) continue;
    let marker: KnownHostEntry['marker'];
    if (s.startsWith('@')) {
      const m = /^@(\S+)\s+/.exec(s);
      if (!m) continue;
      if (m[1] === 'revoked') marker = 'revoked';
      else if (m[1] === 'cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH skips the line
      s = s.slice(m[0].length);
    }
    const parts = s.split(/\s+/);
    if (parts.length < 3) continue;
    const [hosts, keyType, b64] = parts as [string, string, string];
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) continue;
    // The blob names its own type; a line whose type field disagrees is corrupt.
    if (keyTypeOf(key) !== keyType) continue;
    out.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return out;
}

/** Reads known_hosts files in order; a missing file is simply empty. */
export async function loadKnownHosts(files: string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await fsp.readFile(f, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    all.push(...parseKnownHosts(text, f));
  }
  return all;
}

/** OpenSSH match_pattern: `*` any run, `?` one char; case-insensitive (both sides lower-cased). */
export function wildcardMatch(pattern: string, s: string): boolean {
  const p = pattern.toLowerCase();
  const t = s.toLowerCase();
  // Iterative glob with backtracking on the last `*`.
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star !== -1) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * OpenSSH match_hostname over a comma-separated pattern list:
 * true when some positive pattern matches and no negated one does.
 */
export function matchPatternList(list: string, name: string): boolean {
  let positive = false;
  for (const raw of list.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pat = negated ? raw.slice(1) : raw;
    if (wildcardMatch(pat, name)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** Does this entry's host field name `name` (already `[host]:port`-formatted)? */
export function entryMatchesHost(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) {
    const m = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
    if (!m) return false;
    const salt = Buffer.from(m[1]!, 'base64');
    const want = Buffer.from(m[2]!, 'base64');
    const got = createHmac('sha1', salt).update(name.toLowerCase()).digest();
    return got.length === want.length && got.equals(want);
  }
  return matchPatternList(hosts, name);
}

export type HostKeyVerdict =
  | { status: 'ok'; entry: KnownHostEntry }
  | { status: 'unknown' }
  | { status: 'changed'; known: KnownHostEntry[] }
  | { status: 'revoked'; entry: KnownHostEntry };

/** Decides what to do with `key` presented by `host:port`. Pure. */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  // A revoked key is refused for every host: revocation is about the key, not the name.
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const name = knownHostName(host, port);
  const known = entries.filter((e) => e.marker === undefined && entryMatchesHost(e.hosts, name));
  const same = known.find((e) => e.key.equals(key));
  if (same) return { status: 'ok', entry: same };
  if (known.length) return { status: 'changed', known };
  return { status: 'unknown' };
}

/** Key types known for a host, in file order: used to prefer those host-key algorithms. */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const types: string[] = [];
  for (const e of entries) {
    if (e.marker === undefined && entryMatchesHost(e.hosts, name) && !types.includes(e.keyType)) types.push(e.keyType);
  }
  return types;
}

/** The host-key algorithms ssh2 would offer, reordered so key types we already know come first (as OpenSSH does). */
export function preferredHostKeyAlgorithms(knownTypes: string[]): string[] {
  const all = [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
  ];
  const algsFor = (t: string) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]);
  const first: string[] = [];
  for (const t of knownTypes) for (const a of algsFor(t)) if (all.includes(a) && !first.includes(a)) first.push(a);
  return [...first, ...all.filter((a) => !first.includes(a))];
}

export function knownHostsLine(host: string, port: number, key: Buffer): string {
  return `${knownHostName(host, port)} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

let appendChain: Promise<unknown> = Promise.resolve();

/**
 * Appends one entry (OpenSSH accept-new): O_APPEND write of a whole line, fsync'd.
 * Creates the file 0600 and its directory 0700 when missing. Calls are serialised
 * within the process so concurrent accepts never interleave.
 */
export function appendKnownHost(file: string, host: string, port: number, key: Buffer): Promise<void> {
  const run = async () => {
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh = await fsp.open(file, 'a+', 0o600);
    try {
      const { size } = await fh.stat();
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
      await fh.write(`${prefix}${knownHostsLine(host, port, key)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  };
  const p = appendChain.then(run, run);
  appendChain = p.catch(() => undefined);
  return p;
}

export type HostKeyProblem = 'unknown' | 'changed' | 'revoked';

/** A host key we may not trust. Never retried, never bypassed for 'changed' and 'revoked'. */
export class HostKeyError extends TransportError {
  constructor(
    host: string,
    readonly problem: HostKeyProblem,
    readonly addr: string,
    readonly port: number,
    readonly keyType: string,
    readonly fingerprint: string,
    message: string,
  ) {
    super(host, message);
    this.name = 'HostKeyError';
  }
}

export function hostKeyError(
  hostName: string,
  addr: string,
  port: number,
  key: Buffer,
  verdict: Exclude<HostKeyVerdict, { status: 'ok' }>,
  files: string[],
): HostKeyError {
  const type = keyTypeOf(key);
  const fp = fingerprint(key);
  const where = port === 22 ? addr : `${addr} port ${port}`;
  const primary = files[0] ?? '~/.ssh/known_hosts';
  let msg: string;
  switch (verdict.status) {
    case 'unknown':
      msg =
        `unknown host key for ${where}: ${type} ${fp}\n` +
        `    it is in none of: ${files.join(', ') || '(no known_hosts files)'}\n` +
        `    hint: check the fingerprint out of band, then rerun with --accept-new-hosts, ` +
        `or add it yourself: ssh-keyscan -p ${port} ${addr} >> ${primary}`;
      break;
    case 'changed': {
      const sameType = verdict.known.filter((e) => e.keyType === type);
      const shown = (sameType.length ? sameType : verdict.known)
        .map((e) => `${e.file}:${e.line} (${e.keyType} ${fingerprint(e.key)})`)
        .join(', ');
      msg =
        `HOST KEY CHANGED for ${where}: it presented ${type} ${fp}, but it is known with a different key at ${shown}\n` +
        `    someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled.\n` +
        `    Hades refuses to connect, whatever the flags (--accept-new-hosts only accepts unknown hosts).\n` +
        `    hint: if the change is legitimate, remove the old entry: ssh-keygen -R ${quoteHint(knownHostName(addr, port))} -f ${verdict.known[0]!.file}`;
      break;
    }
    case 'revoked':
      msg =
        `REVOKED host key presented by ${where}: ${type} ${fp} is marked @revoked at ${verdict.entry.file}:${verdict.entry.line}\n` +
        `    Hades refuses to connect, whatever the flags.`;
      break;
  }
  return new HostKeyError(hostName, verdict.status, addr, port, type, fp, msg);
}

function quoteHint(s: string): string {
  return /^[A-Za-z0-9_.:-]+$/.test(s) ? s : `'${s}'`;
}
