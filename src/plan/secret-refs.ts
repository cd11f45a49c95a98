/**
 * Whether a value that leaves for good — a push's manifest annotations and config blob, stored
 * in the registry and readable by anyone who can pull — would carry a secret: a `${NAME}` whose
 * name is secret (the default patterns, `secret_patterns`, and the names the CLI found secret:
 * `--secret-pattern`, vars built from a secret), or the value of one of the step's secret vars.
 * Pure: the planner builds one per host from the env it plans with.
 */
import { DEFAULT_SECRET_PATTERNS, Redactor } from '../env/secrets.js';

/** `raw` as written (its `${NAME}`s), `text` what would be stored; a reason, or undefined. */
export type SecretFinder = (raw: string | undefined, text: string | undefined) => string | undefined;

/** Every `${NAME}` and `${NAME:-default}` of a string. */
const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g;
/** Shorter values are not searched for (as the Redactor does not scrub them from free text). */
const MIN_LENGTH = 4;

export function secretFinder(
  patterns: readonly string[],
  secretNames: readonly string[],
  env: Record<string, string> | undefined,
): SecretFinder {
  const names = new Redactor([...DEFAULT_SECRET_PATTERNS, ...patterns]);
  const named = new Set(secretNames);
  const isSecret = (n: string) => named.has(n) || names.isSecret(n);
  const values = env ? Object.entries(env).filter(([k, v]) => isSecret(k) && v.length >= MIN_LENGTH) : [];
  return (raw, text) => {
    for (const m of raw?.matchAll(REF) ?? []) if (isSecret(m[1]!)) return `uses \${${m[1]}}, a secret`;
    if (text !== undefined) for (const [k, v] of values) if (text.includes(v)) return `holds the value of ${k}, a secret`;
    return undefined;
  };
}
