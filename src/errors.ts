/**
 * Two kinds of errors reach the user:
 *  - UserError: bad input (file, flag, reference). Printed as `file:line:col: message`
 *    with a hint; the CLI exits 2 and never shows a stack trace.
 *  - RunError: something failed while executing (host, step, action, cause); exit 1.
 * Anything else is a bug and may show a stack trace.
 */

export interface Position {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export interface Problem {
  pos?: Position;
  message: string;
  hint?: string;
}

export function formatProblem(p: Problem): string {
  const where = p.pos ? `${p.pos.file}:${p.pos.line}:${p.pos.col}: ` : '';
  const hint = p.hint ? `\n    hint: ${p.hint}` : '';
  return `${where}error: ${p.message}${hint}`;
}

/** One or more user mistakes, all reported at once. */
export class UserError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[] | Problem | string) {
    const list: Problem[] = typeof problems === 'string' ? [{ message: problems }] : Array.isArray(problems) ? problems : [problems];
    super(list.map(formatProblem).join('\n'));
    this.name = 'UserError';
    this.problems = list;
  }
  format(): string {
    const n = this.problems.length;
    const body = this.problems.map(formatProblem).join('\n');
    return n > 1 ? `${body}\n${n} errors` : body;
  }
}

/** A failure while running: names where it happened. */
export class RunError extends Error {
  readonly host?: string;
  readonly step?: string;
  readonly action?: string;
  constructor(message: string, where: { host?: string; step?: string; action?: string; cause?: unknown } = {}) {
    super(message, where.cause !== undefined ? { cause: where.cause } : undefined);
    this.name = 'RunError';
    this.host = where.host;
    this.step = where.step;
    this.action = where.action;
  }
}

/** Collects problems; throws them together. */
export class Problems {
  readonly list: Problem[] = [];
  add(message: string, pos?: Position, hint?: string): void {
    this.list.push({ message, pos, hint });
  }
  addAll(ps: Problem[]): void {
    this.list.push(...ps);
  }
  get empty(): boolean {
    return this.list.length === 0;
  }
  throwIfAny(): void {
    if (this.list.length) throw new UserError(sortProblems(this.list));
  }
}

export function sortProblems(ps: Problem[]): Problem[] {
  return [...ps].sort((a, b) => {
    if (!a.pos || !b.pos) return a.pos ? -1 : b.pos ? 1 : 0;
    if (a.pos.file !== b.pos.file) return a.pos.file < b.pos.file ? -1 : 1;
    return a.pos.line - b.pos.line || a.pos.col - b.pos.col;
  });
}

/**
 * Exit codes, one place: 0 ok; 1 the run failed (stopped); 2 usage or user error; 3 a gate
 * was declined; 4 every step completed, but some hosts failed within their step's
 * `max_failures`; 5 a host is locked by another run (nothing ran); 130 interrupted.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, declined: 3, partial: 4, locked: 5, interrupted: 130 } as const;
