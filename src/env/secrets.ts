/**
 * Secret handling: vars whose NAME matches a secret pattern have their VALUES redacted
 * from every output, log and dry-run. Patterns are case-insensitive globs.
 */
export const DEFAULT_SECRET_PATTERNS = ['*TOKEN*', '*PASSWORD*', '*SECRET*', '*KEY*'];
export const MASK = '***';
/** Values shorter than this are masked where shown as a var, but not scrubbed from free text. */
const MIN_SCRUB_LENGTH = 4;

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

export class Redactor {
  private readonly patterns: RegExp[];
  private readonly values = new Set<string>();
  private scrubRe: RegExp | undefined;

  constructor(patterns: string[] = DEFAULT_SECRET_PATTERNS) {
    this.patterns = patterns.map(globToRegExp);
  }

  isSecret(name: string): boolean {
    return this.patterns.some((p) => p.test(name));
  }

  /** Remember the secret values of an env map. */
  learn(env: Record<string, string>): void {
    for (const [k, v] of Object.entries(env)) if (this.isSecret(k)) this.addValue(v);
  }

  addValue(v: string): void {
    if (v.length >= MIN_SCRUB_LENGTH && !this.values.has(v)) {
      this.values.add(v);
      this.scrubRe = undefined;
    }
  }

  /** An env map fit for display: secret values replaced by ***. */
  env(env: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) out[k] = this.isSecret(k) ? MASK : this.text(v);
    return out;
  }

  /** Scrub known secret values from free text (command output, messages). */
  text(s: string): string {
    if (this.values.size === 0 || s.length === 0) return s;
    if (!this.scrubRe) {
      const alts = [...this.values].sort((a, b) => b.length - a.length).map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.scrubRe = new RegExp(alts.join('|'), 'g');
    }
    return s.replace(this.scrubRe, MASK);
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
}
