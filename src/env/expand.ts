/**
 * `${VAR}` and `${VAR:-default}` expansion, done once by Hades for env values and
 * structured fields (paths, names, tags). `$$` is a literal `$`. A bare `$VAR` is left
 * alone (it belongs to the shell, e.g. inside `run:` commands, which Hades never expands).
 */
export interface ExpandResult {
  value: string;
  missing: string[];
}

const REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function expand(input: string, vars: Record<string, string | undefined>): ExpandResult {
  const missing: string[] = [];
  const value = input.replace(REF, (whole, name: string | undefined, dflt: string | undefined) => {
    if (whole === '$$') return '$';
    const v = vars[name!];
    if (v !== undefined && !(dflt !== undefined && v === '')) return v;
    if (dflt !== undefined) return dflt;
    missing.push(name!);
    return '';
  });
  return { value, missing };
}

/** Names referenced by `${...}` in a string (for contract checks before expansion). */
export function references(input: string): string[] {
  const out: string[] = [];
  for (const m of input.matchAll(REF)) if (m[1] && m[2] === undefined) out.push(m[1]);
  return out;
}
