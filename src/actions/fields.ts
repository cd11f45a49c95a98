/** Helpers for planning structured fields: expand, validate, normalise. Pure. */
import { parseModeToken } from '../config/mode.js';
import type { PlanContext } from './types.js';

/** The schema of the file attributes every writing action takes (mode, owner, group), in that order. */
export const FILE_ATTRS_SCHEMA = {
  mode: { $ref: '#/definitions/mode' },
  owner: { $ref: '#/definitions/account' },
  group: { $ref: '#/definitions/account' },
} as const;

/** An absolute path on the host, `${VAR}`-expanded and checked. */
export function absolutePath(ctx: PlanContext, raw: unknown, field: string): string | undefined {
  if (typeof raw !== 'string' || raw === '') {
    ctx.problems.add(`${ctx.action.kind}.${field}: expected a path`, ctx.fieldPos(field));
    return undefined;
  }
  const p = ctx.expand(raw, field);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f]/.test(p)) {
    ctx.problems.add(`${ctx.action.kind}.${field}: path ${JSON.stringify(p)} contains control characters`, ctx.fieldPos(field));
    return undefined;
  }
  if (!p.startsWith('/')) {
    ctx.problems.add(
      `${ctx.action.kind}.${field}: ${JSON.stringify(p)} is not an absolute path`,
      ctx.fieldPos(field),
      'paths on hosts must start with /',
    );
    return undefined;
  }
  if (p.split('/').includes('..')) {
    ctx.problems.add(
      `${ctx.action.kind}.${field}: ${JSON.stringify(p)} contains ".."`,
      ctx.fieldPos(field),
      'write the path without ".." components',
    );
    return undefined;
  }
  return p.length > 1 ? p.replace(/\/+$/, '').replace(/\/{2,}/g, '/') : p;
}

/** Mode as parsed by the loader (a number) or a string form ("0644", "0o644"). */
export function modeField(ctx: PlanContext, raw: unknown, dflt: number): number {
  if (raw === undefined || raw === null) return dflt;
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string') {
    const r = parseModeToken(raw);
    if ('mode' in r) return r.mode;
    ctx.problems.add(`${ctx.action.kind}.mode: ${r.error}`, ctx.fieldPos('mode'), r.hint);
    return dflt;
  }
  ctx.problems.add(`${ctx.action.kind}.mode: expected a mode like 0644`, ctx.fieldPos('mode'));
  return dflt;
}

const ACCOUNT = /^([a-z_][a-z0-9_.-]*\$?|[0-9]+)$/i;

export function ownership(ctx: PlanContext, s: { owner?: unknown; group?: unknown }): { owner?: string; group?: string } {
  const out: { owner?: string; group?: string } = {};
  for (const k of ['owner', 'group'] as const) {
    const raw = s[k];
    if (raw === undefined || raw === null) continue;
    const v = ctx.expand(String(raw), k);
    if (!ACCOUNT.test(v)) {
      ctx.problems.add(`${ctx.action.kind}.${k}: ${JSON.stringify(v)} is not a valid user or group name`, ctx.fieldPos(k));
      continue;
    }
    out[k] = v;
  }
  return out;
}
