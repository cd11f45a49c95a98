/**
 * Turns JSON Schema (ajv) errors into positioned Problems a person can act on:
 * the offending key or value, the place it was found, and a hint ("did you mean ...").
 */
import type { Problem } from '../errors.js';
import { ACTION_KINDS } from './model.js';
import { didYouMean } from './suggest.js';
import type { Locator, Path } from './yaml-positions.js';

/** The subset of ajv's ErrorObject (with `verbose: true`) this module reads. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  propertyName?: string;
  parentSchema?: Record<string, unknown>;
  data?: unknown;
}

/** Decodes an ajv instancePath (JSON pointer) into path segments; array indices become numbers. */
export function pointerToPath(pointer: string, root: unknown): Array<string | number> {
  if (!pointer) return [];
  const out: Array<string | number> = [];
  let cur: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function get(root: unknown, path: Path): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** A value as shown in a message: strings quoted, maps and lists named. */
export function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') {
    const s = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return JSON.stringify(s);
  }
  return String(v);
}

const TYPE_NAMES: Record<string, string[]> = {
  null: ['nothing'],
  string: ['a string'],
  integer: ['an integer'],
  number: ['a number'],
  boolean: ['true', 'false'],
  object: ['a map'],
  array: ['a list'],
};

/** ["boolean", "string"] → "true, false or a string". */
function typeList(t: unknown): string {
  const list = (Array.isArray(t) ? t : [t]).flatMap((x) => TYPE_NAMES[String(x)] ?? [String(x)]);
  if (list.length <= 1) return list[0] ?? 'nothing';
  return `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
}

/** Common names from other tools for keys Hades spells differently. */
const SYNONYMS: Record<string, string> = {
  keyfile: 'identity_file',
  key_file: 'identity_file',
  private_key: 'identity_file',
  ssh_key: 'identity_file',
  identityfile: 'identity_file',
  hostname: 'addr',
  host: 'addr',
  address: 'addr',
  ip: 'addr',
  username: 'user',
  sudo: 'become',
  dest: 'dst',
  destination: 'dst',
  source: 'src',
  command: 'run',
  shell: 'run',
  hosts: 'targets',
  target: 'targets',
  vars: 'env',
  environment: 'env',
  serial: 'parallelism',
  concurrency: 'parallelism',
  permissions: 'mode',
  chmod: 'mode',
  user: 'owner',
};

function suggestKey(key: string, allowed: string[]): string | undefined {
  const d = didYouMean(key, allowed);
  if (d) return d;
  const syn = SYNONYMS[key.toLowerCase()];
  return syn && allowed.includes(syn) ? `did you mean "${syn}"?` : undefined;
}

const q = (s: string): string => JSON.stringify(s);

/**
 * A human name for the thing at `path`: `job "deploy"`, `step "canary"`, `copy (action 2 of job "deploy")`,
 * or the key itself (`port`, `targets[0]`).
 */
export function describe(path: Path, root: unknown): string {
  const [s0, s1, s2, s3, s4] = path;
  const n = path.length;
  if (n === 0) return 'the hadesfile';
  if (n === 1) return String(s0);
  const entity: Record<string, string> = { hosts: 'host', targets: 'target', registries: 'registry', jobs: 'job', plans: 'plan' };
  if (n === 2 && entity[String(s0)]) {
    if (s0 === 'hosts' && typeof s1 === 'number') {
      const nm = get(root, ['hosts', s1, 'name']);
      return typeof nm === 'string' ? `host ${q(nm)}` : `host ${s1 + 1}`;
    }
    return `${entity[String(s0)]} ${q(String(s1))}`;
  }
  if (s0 === 'jobs' && s2 === 'actions' && typeof s3 === 'number') {
    const action = `action ${s3 + 1} of job ${q(String(s1))}`;
    if (n === 4) return action;
    if (n === 5 && (ACTION_KINDS as readonly string[]).includes(String(s4))) return `${String(s4)} (${action})`;
  }
  if (s0 === 'jobs' && s2 === 'artifacts' && n === 4) return `artifact ${q(String(s3))} of job ${q(String(s1))}`;
  if (s0 === 'jobs' && s2 === 'guard' && n === 3) return `guard of job ${q(String(s1))}`;
  if (s0 === 'plans' && s2 === 'steps' && typeof s3 === 'number' && n === 4) {
    const nm = get(root, path.slice(0, 4).concat('name'));
    return typeof nm === 'string' ? `step ${q(nm)}` : `step ${s3 + 1} of plan ${q(String(s1))}`;
  }
  const last = path[n - 1]!;
  if (typeof last === 'number') return `${String(path[n - 2])}[${last}]`;
  if (path[n - 2] === 'env') return `variable ${last}`;
  return String(last);
}

/** Keys that may appear in a place but should be refused with a specific explanation. */
const REFUSED_KEYS: Record<string, { message: (place: string) => string; hint: string }> = {
  password: {
    message: (place) => `literal password in ${place}: secrets do not belong in the hadesfile`,
    hint: 'use password_env: NAME, the environment variable that holds the password',
  },
};

/** Translates ajv errors (validated `data`) into Problems positioned with `loc`. */
export function translateSchemaErrors(errors: readonly SchemaError[], data: unknown, loc: Locator): Problem[] {
  const out: Problem[] = [];
  // A misspelt required key shows up twice (unknown "jbo", missing "job"): report only the unknown key.
  const suggested = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const allowed = Object.keys((e.parentSchema?.properties as Record<string, unknown>) ?? {});
    const m = /"(.*)"/.exec(suggestKey(String(e.params.additionalProperty), allowed) ?? '');
    if (m) suggested.add(`${e.instancePath}\0${m[1]}`);
  }
  for (const e of errors) {
    // `if` only says "then/else failed" (those errors are reported themselves); errors inside
    // propertyNames are reported once, by the propertyNames error that names the key.
    if (e.keyword === 'if' || e.propertyName !== undefined) continue;
    const path = pointerToPath(e.instancePath, data);
    const ps = e.parentSchema ?? {};
    const xhint = typeof ps['x-hint'] === 'string' ? (ps['x-hint'] as string) : undefined;
    const label = describe(path, data);
    const value = e.data;
    // numbers and booleans as written (1.0 stays 1.0, not 1)
    const shown = typeof value === 'number' || typeof value === 'boolean' ? (loc.plainText(path) ?? show(value)) : show(value);
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(e.params.additionalProperty);
        const allowed = Object.keys((ps.properties as Record<string, unknown>) ?? {});
        const pos = loc.keyPos([...path, key]);
        const refused = REFUSED_KEYS[key];
        if (refused && path[0] === 'registries') {
          out.push({ pos, message: refused.message(label), hint: refused.hint });
          break;
        }
        const where = path.length === 0 ? 'at the top level' : `in ${label}`;
        out.push({
          pos,
          message: `unknown key ${q(key)} ${where} (allowed: ${allowed.join(', ')})`,
          hint: suggestKey(key, allowed) ?? 'remove it, or check its spelling and indentation',
        });
        break;
      }
      case 'required': {
        const key = String(e.params.missingProperty);
        if (suggested.has(`${e.instancePath}\0${key}`)) break;
        const prop = (ps.properties as Record<string, Record<string, unknown>> | undefined)?.[key];
        const desc = typeof prop?.description === 'string' ? ` (${(prop.description as string).replace(/\.$/, '')})` : '';
        out.push({ pos: loc.valuePos(path), message: `${label} is missing required key ${q(key)}`, hint: `add ${key}:${desc}` });
        break;
      }
      case 'type': {
        const expected = typeList(e.params.type);
        if (path.length === 0) {
          out.push({
            pos: loc.valuePos(path),
            message: `a hadesfile must be a map of top-level keys, got ${show(value)}`,
            hint: 'top-level keys are registries, jobs, plans, hosts, targets, known_hosts, secret_patterns',
          });
          break;
        }
        const numberAsString = (typeof value === 'number' || typeof value === 'boolean') && expected === 'a string';
        const yesNo = typeof value === 'string' && /^(yes|no|on|off|y|n)$/i.test(value) && expected === 'true or false';
        out.push({
          pos: loc.valuePos(path),
          message: `${label} must be ${expected}, got ${shown}`,
          hint: numberAsString
            ? `quote it so YAML keeps it as written: "${loc.token(path) ?? String(value)}"`
            : yesNo
              ? 'write true or false (YAML 1.2 reads yes/no/on/off as strings)'
              : (xhint ?? `write ${expected}`),
        });
        break;
      }
      case 'minimum':
      case 'maximum':
        out.push({
          pos: loc.valuePos(path),
          message: `${label} must be ${e.params.comparison} ${String(e.params.limit)}, got ${shown}`,
          hint: xhint ?? `write a number ${e.params.comparison} ${String(e.params.limit)}`,
        });
        break;
      case 'pattern':
        out.push({
          pos: loc.valuePos(path),
          message: `invalid ${label} ${shown}`,
          hint: xhint ?? `must match ${String(e.params.pattern)}`,
        });
        break;
      case 'propertyNames': {
        const key = String(e.params.propertyName);
        out.push({
          pos: loc.keyPos([...path, key]),
          message: `invalid variable name ${q(key)}`,
          hint: 'variable names are letters, digits and _, not starting with a digit',
        });
        break;
      }
      case 'enum': {
        const allowed = (e.params.allowedValues as unknown[]).map(String);
        out.push({
          pos: loc.valuePos(path),
          message: `invalid ${label} ${shown} (allowed: ${allowed.join(', ')})`,
          hint: (typeof value === 'string' ? didYouMean(value, allowed) : undefined) ?? `write one of: ${allowed.join(', ')}`,
        });
        break;
      }
      case 'const':
        out.push({ pos: loc.valuePos(path), message: `invalid ${label} ${show(value)}`, hint: `write ${show(e.params.allowedValue)}` });
        break;
      case 'minItems':
      case 'minLength':
        out.push({ pos: loc.valuePos(path), message: `${label} must not be empty`, hint: xhint ?? 'give it a value' });
        break;
      default:
        out.push({
          pos: loc.valuePos(path),
          message: `${label} ${e.message ?? 'is invalid'}: ${show(value)}`,
          hint: xhint ?? 'see `hades schema`',
        });
    }
  }
  return out;
}
