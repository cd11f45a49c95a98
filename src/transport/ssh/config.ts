/**
 * The subset of OpenSSH's client config (~/.ssh/config) Hades honours:
 * HostName, User, Port, IdentityFile, ProxyJump, ConnectTimeout, IdentitiesOnly —
 * with `Host` patterns (`*`, `?`, `!negation`, several per line), first-obtained-value-wins,
 * IdentityFile accumulating, `Include` (globs; relative paths under ~/.ssh), `%` tokens
 * and `~` expansion. `Match all` applies; `Match host PATTERNS` is matched against the
 * host as given; any other `Match` criterion makes its block inapplicable (never guessed).
 *
 * The HostSpec wins over the config: callers only take values the HostSpec leaves out.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../errors.js';
import { matchPatternList } from './known-hosts.js';

export interface SshConfigValues {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  /** `none` already mapped to undefined. May be a comma-separated chain. */
  proxyJump?: string;
  connectTimeoutMs?: number;
  identitiesOnly?: boolean;
}

interface Directive {
  key: string; // lower-case keyword
  args: string[];
  file: string;
  line: number;
}

export function defaultSshConfigPath(): string {
  return path.join(os.homedir(), '.ssh', 'config');
}

/** Splits a config line into keyword + args (OpenSSH argv_split: quotes group, `=` may separate the keyword). */
export function tokenizeLine(raw: string): { key: string; args: string[] } | null {
  const s = raw.trim();
  if (s === '' || s.startsWith('#')) return null;
  const m = /^([A-Za-z][A-Za-z0-9]*)(\s*=\s*|\s+)(.*)$/.exec(s) ?? /^([A-Za-z][A-Za-z0-9]*)()$/.exec(s);
  if (!m) return { key: '', args: [s] };
  const args: string[] = [];
  const rest = m[3] ?? '';
  let cur = '';
  let inArg = false;
  let quote: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
      continue;
    }
    if (c === '#' && !inArg) break; // trailing comment
    if (/\s/.test(c)) {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
      continue;
    }
    cur += c;
    inArg = true;
  }
  if (quote) return { key: m[1]!.toLowerCase(), args: [...args, cur] };
  if (inArg) args.push(cur);
  return { key: m[1]!.toLowerCase(), args };
}

export class SshConfig {
  private readonly cache = new Map<string, Directive[]>();

  /**
   * @param file the top-level config file; a missing file means an empty config.
   * @param sources optional in-memory contents by path (tests, or callers that already read it).
   */
  constructor(
    readonly file: string = defaultSshConfigPath(),
    private readonly sources: Record<string, string> = {},
  ) {}

  /** Parses a config given as text (no filesystem access except for Include). */
  static fromText(text: string, file = '<ssh-config>'): SshConfig {
    return new SshConfig(file, { [file]: text });
  }

  private read(file: string): Directive[] {
    const hit = this.cache.get(file);
    if (hit) return hit;
    let text: string | undefined = this.sources[file];
    if (text === undefined) {
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') text = '';
        else throw new UserError({ message: `cannot read ssh config ${file}: ${(e as Error).message}` });
      }
    }
    const out: Directive[] = [];
    text.split('\n').forEach((raw, i) => {
      const t = tokenizeLine(raw.replace(/\r$/, ''));
      if (!t) return;
      if (t.key === '') {
        throw new UserError({
          pos: { file, line: i + 1, col: 1 },
          message: `ssh config: cannot parse line ${JSON.stringify(raw.trim())}`,
        });
      }
      out.push({ key: t.key, args: t.args, file, line: i + 1 });
    });
    this.cache.set(file, out);
    return out;
  }

  /** The values that apply to `host` (the name as given, e.g. HostSpec.addr). */
  resolve(host: string): SshConfigValues {
    const v: SshConfigValues = { identityFiles: [] };
    const seen = new Set<string>();
    const rawIdentities: string[] = [];
    this.walk(this.file, host, { active: true, never: false }, v, seen, rawIdentities, 0);
    const hostName = v.hostName ?? host;
    for (const f of rawIdentities) {
      const expanded = expandTokens(f, { host: hostName, alias: host, user: v.user, port: v.port });
      if (!v.identityFiles.includes(expanded)) v.identityFiles.push(expanded);
    }
    return v;
  }

  /**
   * OpenSSH readconf.c semantics: `Host`/`Match` lines flip one shared "active" flag,
   * which carries across the files of one Include and is restored after it; an Include
   * inside an inapplicable block applies nothing.
   */
  private walk(
    file: string,
    host: string,
    state: { active: boolean; never: boolean },
    v: SshConfigValues,
    seen: Set<string>,
    identities: string[],
    depth: number,
  ): void {
    if (depth > 16) throw new UserError({ message: `ssh config: Include nested too deeply at ${file}` });
    for (const d of this.read(file)) {
      const pos = { file: d.file, line: d.line, col: 1 };
      switch (d.key) {
        case 'host':
          state.active = !state.never && d.args.length > 0 && matchPatternList(d.args.join(','), host);
          continue;
        case 'match':
          state.active = !state.never && matchDirective(d.args, host);
          continue;
        case 'include': {
          const saved = { ...state };
          const inner = { active: state.active, never: state.never || !state.active };
          for (const arg of d.args) {
            const pattern = expandHome(arg);
            const abs = path.isAbsolute(pattern) ? pattern : path.join(os.homedir(), '.ssh', pattern);
            for (const f of globFiles(abs)) this.walk(f, host, inner, v, seen, identities, depth + 1);
          }
          Object.assign(state, saved);
          continue;
        }
      }
      const active = state.active;
      if (!active) continue;
      const first = d.args[0];
      if (first === undefined) throw new UserError({ pos, message: `ssh config: ${d.key} needs a value` });
      if (d.key === 'identityfile') {
        identities.push(first);
        continue;
      }
      if (seen.has(d.key)) continue; // first obtained value wins
      switch (d.key) {
        case 'hostname':
          seen.add(d.key);
          v.hostName = expandTokens(first, { host, alias: host });
          break;
        case 'user':
          seen.add(d.key);
          v.user = first;
          break;
        case 'port': {
          seen.add(d.key);
          const n = Number(first);
          if (!Number.isInteger(n) || n < 1 || n > 65535) {
            throw new UserError({ pos, message: `ssh config: bad Port ${JSON.stringify(first)}`, hint: 'a number 1-65535' });
          }
          v.port = n;
          break;
        }
        case 'proxyjump':
          seen.add(d.key);
          if (first.toLowerCase() !== 'none') v.proxyJump = d.args.join(',');
          break;
        case 'connecttimeout': {
          seen.add(d.key);
          const n = Number(first);
          if (!Number.isFinite(n) || n < 0)
            throw new UserError({ pos, message: `ssh config: bad ConnectTimeout ${JSON.stringify(first)}` });
          if (n > 0) v.connectTimeoutMs = n * 1000;
          break;
        }
        case 'identitiesonly':
          seen.add(d.key);
          v.identitiesOnly = first.toLowerCase() === 'yes';
          break;
        default:
          // Every other keyword is OpenSSH's business, not ours.
          break;
      }
    }
  }
}

function matchDirective(args: string[], host: string): boolean {
  const a = args.map((x) => x.toLowerCase());
  if (a.length === 1 && a[0] === 'all') return true;
  if (a.length === 2 && (a[0] === 'host' || a[0] === 'originalhost')) return matchPatternList(args[1]!, host);
  return false;
}

export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** OpenSSH % tokens: %% %h (host) %n (original name) %r (remote user) %p (port) %u (local user) %d (home). */
export function expandTokens(s: string, t: { host: string; alias: string; user?: string; port?: number }): string {
  const out = s.replace(/%([%hnrpud])/g, (_m, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'h':
        return t.host;
      case 'n':
        return t.alias;
      case 'r':
        return t.user ?? os.userInfo().username;
      case 'p':
        return String(t.port ?? 22);
      case 'u':
        return os.userInfo().username;
      case 'd':
        return os.homedir();
      default:
        return _m;
    }
  });
  return expandHome(out);
}

/** Expands `*`/`?` in any path component; results sorted (OpenSSH uses glob(3), sorted). */
function globFiles(pattern: string): string[] {
  if (!/[*?]/.test(pattern)) return fs.existsSync(pattern) ? [pattern] : [];
  const parts = pattern.split(path.sep);
  let bases = [parts[0] === '' ? path.sep : parts[0]!];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '') continue;
    const next: string[] = [];
    for (const b of bases) {
      if (!/[*?]/.test(part)) {
        next.push(path.join(b, part));
        continue;
      }
      let names: string[];
      try {
        names = fs.readdirSync(b);
      } catch {
        continue;
      }
      for (const n of names.sort()) if (!n.startsWith('.') && matchPatternList(part, n)) next.push(path.join(b, n));
    }
    bases = next;
  }
  return bases.filter((f) => {
    try {
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
