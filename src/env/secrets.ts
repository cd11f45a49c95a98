/**
 * Secret handling: vars whose NAME matches a secret pattern — or whose value was built
 * from one (`DB_URL: "postgres://u:${DB_PASSWORD}@db"`, see `taint`) — have their VALUES
 * redacted from every output, log and dry-run. Patterns are case-insensitive globs.
 *
 * Free text is scrubbed of every known secret value, and of every non-trivial line of a
 * multi-line one (a key printed line by line). Command output is scrubbed as a stream
 * (`stream()`): bytes are decoded across chunk boundaries and a tail that may be the start
 * of a secret is held back until more data arrives or the stream ends.
 */
import { StringDecoder } from 'node:string_decoder';

export const DEFAULT_SECRET_PATTERNS = ['*TOKEN*', '*PASSWORD*', '*SECRET*', '*KEY*'];
export const MASK = '***';
/** Values shorter than this are masked where shown as a var, but not scrubbed from free text. */
const MIN_SCRUB_LENGTH = 4;

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

export class Redactor {
  private readonly patterns: RegExp[];
  /** Names made secret by what their value was built from. */
  private readonly derived = new Set<string>();
  private readonly values = new Set<string>();
  private scrubRe: RegExp | undefined;
  private longest = 0;

  constructor(patterns: string[] = DEFAULT_SECRET_PATTERNS) {
    this.patterns = patterns.map(globToRegExp);
  }

  isSecret(name: string): boolean {
    return this.derived.has(name) || this.patterns.some((p) => p.test(name));
  }

  /**
   * `refs`: for each var, the names its value was expanded from. A var built from a secret
   * is itself secret (transitively): it is masked wherever shown and its value scrubbed.
   */
  taint(refs: ReadonlyMap<string, Iterable<string>>): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const [name, from] of refs)
        if (!this.isSecret(name) && [...from].some((f) => this.isSecret(f))) {
          this.derived.add(name);
          changed = true;
        }
    }
  }

  /** Remember the secret values of an env map (the OS environment too). */
  learn(env: Record<string, string | undefined>): void {
    for (const [k, v] of Object.entries(env)) if (v !== undefined && this.isSecret(k)) this.addValue(v);
  }

  /** A value to scrub: the whole, and each non-trivial line of a multi-line value. */
  addValue(v: string): void {
    const parts = [v];
    if (/[\r\n]/.test(v)) for (const line of v.split(/\r?\n|\r/)) parts.push(line, line.trim());
    for (const p of parts)
      if (p.length >= MIN_SCRUB_LENGTH && !this.values.has(p)) {
        this.values.add(p);
        this.longest = Math.max(this.longest, p.length);
        this.scrubRe = undefined;
      }
  }

  /** An env map fit for display: secret values replaced by ***. */
  env(env: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) out[k] = this.isSecret(k) ? MASK : this.text(v);
    return out;
  }

  private re(): RegExp | undefined {
    if (this.values.size === 0) return undefined;
    if (!this.scrubRe) {
      const alts = [...this.values].sort((a, b) => b.length - a.length).map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.scrubRe = new RegExp(alts.join('|'), 'g');
    }
    return this.scrubRe;
  }

  /** Scrub known secret values from free text (command output, messages). */
  text(s: string): string {
    const re = this.re();
    if (!re || s.length === 0) return s;
    return s.replace(re, MASK);
  }

  /** Deep-scrub any JSON-like value (events, plan dumps). */
  deep<T>(value: T): T {
    if (typeof value === 'string') return this.text(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.deep(v)) as T;
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = this.deep(v);
      return out as T;
    }
    return value;
  }

  /**
   * The length of the longest tail of `s` that is the beginning (not the whole) of a secret:
   * what a stream must hold back, since the next chunk may complete it.
   */
  private pendingTail(s: string): number {
    const max = Math.min(this.longest - 1, s.length);
    for (let k = max; k > 0; k--) {
      const tail = s.slice(s.length - k);
      for (const v of this.values) if (v.length > k && v.startsWith(tail)) return k;
    }
    return 0;
  }

  /** A scrubber for one byte stream (a command's stdout or stderr). */
  stream(): StreamRedactor {
    return new StreamRedactor(this);
  }

  /** @internal StreamRedactor's step: the scrubbed text that is final, and what to hold. */
  split(text: string, end: boolean): { out: string; held: string } {
    const re = this.re();
    if (!re) return { out: text, held: '' };
    const cut = end ? text.length : text.length - this.pendingTail(text);
    let out = '';
    let last = 0;
    re.lastIndex = 0;
    for (const m of text.matchAll(re)) {
      // A match that starts before the cut is final: every longer secret starting there
      // would fit in `text` (else the tail from there would be pending), and was preferred.
      if (m.index >= cut) break;
      out += text.slice(last, m.index) + MASK;
      last = m.index + m[0].length;
    }
    const emit = Math.max(cut, last);
    return { out: out + text.slice(last, emit), held: text.slice(emit) };
  }
}

/** Scrubs a byte stream: UTF-8 decoded across chunks, secrets split across chunks caught. */
export class StreamRedactor {
  private readonly decoder = new StringDecoder('utf8');
  private held = '';
  constructor(private readonly r: Redactor) {}
  /** The scrubbed text that can be shown now. */
  push(chunk: Buffer): string {
    const { out, held } = this.r.split(this.held + this.decoder.write(chunk), false);
    this.held = held;
    return out;
  }
  /** At the stream's end: the rest. */
  end(): string {
    const { out } = this.r.split(this.held + this.decoder.end(), true);
    this.held = '';
    return out;
  }
}

/**
 * The redactor for everything the CLI prints outside the event sinks (errors, prompts).
 * Until a command has resolved its env it knows the secret-named values of the OS
 * environment; `setOutputRedactor` replaces it with the command's own.
 */
let output: Redactor | undefined;
export function outputRedactor(): Redactor {
  if (!output) {
    output = new Redactor();
    output.learn(process.env);
  }
  return output;
}
export function setOutputRedactor(r: Redactor): void {
  output = r;
}
/** Scrubs text the CLI is about to print. */
export function redactOutput(s: string): string {
  return outputRedactor().text(s);
}
