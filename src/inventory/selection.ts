/**
 * `--limit`: the hosts a run may touch. Pure: the caller reads `@file` entries and passes
 * their lines in. Each pattern is a host name, a glob over host names (`*`, `?`), or
 * `target:NAME`; a pattern that matches no host of the inventory is a user error.
 */
import type { Hadesfile } from '../config/model.js';
import { didYouMean } from '../config/suggest.js';
import type { Position, Problem } from '../errors.js';

export interface LimitPattern {
  pattern: string;
  /** Where it was written: `--limit` (no position) or a line of an `@file`. */
  pos?: Position;
  /** The `@file` it came from, as written. */
  from?: string;
}

export interface Selection {
  /** The patterns as given (`@file` entries as `@file`), in order. */
  patterns: string[];
  /** The selected host names, in inventory order. */
  hosts: string[];
}

/** Splits `--limit a,b --limit c` into patterns (empty entries dropped). */
export function splitLimitArgs(args: string[]): string[] {
  return args
    .flatMap((a) => a.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
}

/** The lines of an `@file`: one pattern per line; blank lines and `# comments` ignored. */
export function fileLines(text: string, file: string): LimitPattern[] {
  const out: LimitPattern[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    out.push({ pattern: trimmed, pos: { file, line: i + 1, col: line.indexOf(trimmed) + 1 }, from: file });
  });
  return out;
}

function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Resolves the patterns against the inventory; problems for patterns that match nothing. */
export function resolveSelection(hf: Hadesfile, patterns: LimitPattern[], problems: Problem[]): Set<string> {
  const hostNames = [...hf.hosts.keys()];
  const declared = [...hf.hosts.values()].filter((h) => !h.builtin).map((h) => h.name);
  const selected = new Set<string>();
  for (const p of patterns) {
    const add = (message: string, hint: string) =>
      problems.push({ ...(p.pos ? { pos: p.pos } : {}), message: `--limit ${JSON.stringify(p.pattern)}: ${message}`, hint });
    if (p.pattern.startsWith('target:')) {
      const name = p.pattern.slice('target:'.length);
      const t = hf.targets.get(name);
      if (!t)
        add(
          `no target "${name}"`,
          didYouMean(name, hf.targets.keys()) ?? `targets: ${[...hf.targets.keys()].join(', ') || '(none declared)'}`,
        );
      else if (t.hosts.length === 0) add(`target "${name}" has no hosts`, 'list hosts in the target, or name hosts instead');
      else for (const h of t.hosts) selected.add(h);
      continue;
    }
    if (/[*?]/.test(p.pattern)) {
      const re = globRegExp(p.pattern);
      const hits = hostNames.filter((n) => re.test(n));
      if (!hits.length) add('matches no host', `hosts: ${preview(declared)}`);
      for (const h of hits) selected.add(h);
      continue;
    }
    if (hf.hosts.has(p.pattern)) {
      selected.add(p.pattern);
      continue;
    }
    if (hf.targets.has(p.pattern)) add(`no host "${p.pattern}" (it is a target)`, `write target:${p.pattern} to select the target's hosts`);
    else add(`no host "${p.pattern}"`, didYouMean(p.pattern, hostNames) ?? `hosts: ${preview(declared)}`);
  }
  return selected;
}

function preview(names: string[]): string {
  if (!names.length) return '(none declared)';
  return names.length > 10 ? `${names.slice(0, 10).join(', ')}, … (${names.length} hosts)` : names.join(', ');
}
