/**
 * The hadesfile loader: find files → parse YAML (positions kept) → JSON schema → typed
 * declarations and per-file checks → merge across files → cross-reference checks.
 * Every problem in every file is collected and thrown as one UserError, sorted by position.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLError } from 'yaml';
import { sortProblems, UserError, type Position, type Problem } from '../errors.js';
import type { ActionKindTable } from './action-kinds.js';
import { checkArtifactRefs } from './artifact-refs.js';
import { buildFile, type FileDecls, type SourceFile } from './build.js';
import type { Hadesfile, HostSpec } from './model.js';
import { translateSchemaErrors, type SchemaError } from './schema-errors.js';
import validateGenerated from './schema-validator.generated.js';
import { checkPullVia } from './pull-via.js';
import { didYouMean } from './suggest.js';
import { Locator } from './yaml-positions.js';

export { parseModeToken } from './mode.js';
export { parseDuration } from './duration.js';

/** Which files to read (-f, -i) and where from. */
export type FileOptions = Pick<LoadOptions, 'files' | 'inventory' | 'cwd'>;

export interface LoadOptions {
  /** -f entries: files or directories (relative to cwd). */
  files?: string[];
  /** -i entries: inventory files or directories (hosts and targets only). */
  inventory?: string[];
  cwd: string;
  /** Each action kind's own loader checks (the CLI passes src/actions' registry: kindTable(ACTIONS)). */
  actions: ActionKindTable;
}

type Validate = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };
const validate = validateGenerated as unknown as Validate;

const SCHEMA_URL = new URL('../../schemas/hadesfile.schema.json', import.meta.url);
let schemaCache: object | undefined;

/** The hadesfile JSON schema (draft-07), as shipped in schemas/ (for `hades schema` and editors). */
export function loadSchema(): object {
  schemaCache ??= JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as object;
  return schemaCache;
}

const MAIN_NAMES = ['hadesfile.yaml', 'hadesfile.yml'];
const LOOKED_FOR = 'hadesfile.yaml, hadesfile.yml, *.hades.yaml, *.hades.yml';
const INVENTORY_KEYS = new Set(['hosts', 'targets']);

/** hadesfile.yaml|yml in `dir`, else every *.hades.yaml|yml (sorted). Throws a Problem for an ambiguous pair. */
function filesInDir(dir: string, shown: string, problems: Problem[]): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    problems.push({ message: `cannot read directory ${shown}: ${(e as Error).message}`, hint: 'check the path and its permissions' });
    return [];
  }
  const isFile = (n: string): boolean => {
    try {
      return statSync(join(dir, n)).isFile();
    } catch {
      return false;
    }
  };
  const main = MAIN_NAMES.filter((n) => names.includes(n) && isFile(n));
  if (main.length === 2) {
    problems.push({
      message: `both hadesfile.yaml and hadesfile.yml are in ${shown}`,
      hint: 'keep one of them, or name the one to use with -f',
    });
    return [];
  }
  if (main.length === 1) return [join(dir, main[0]!)];
  return names
    .filter((n) => /\.hades\.ya?ml$/.test(n) && isFile(n))
    .sort()
    .map((n) => join(dir, n));
}

function displayPath(cwd: string, abs: string): string {
  const rel = relative(cwd, abs);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? abs : rel;
}

interface Discovered {
  main: string[];
  inventory: string[];
}

function discover(opts: FileOptions): Discovered {
  const cwd = resolve(opts.cwd);
  const problems: Problem[] = [];
  const expand = (entries: string[], what: string): string[] => {
    const out: string[] = [];
    for (const entry of entries) {
      const abs = resolve(cwd, entry);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(abs);
      } catch {
        problems.push({ message: `${what} ${entry} does not exist`, hint: `check the path (relative to ${cwd})` });
        continue;
      }
      if (st.isDirectory()) {
        const before = problems.length;
        const found = filesInDir(abs, entry, problems);
        if (!found.length && problems.length === before) {
          problems.push({ message: `no hadesfile in directory ${entry}`, hint: `looked for ${LOOKED_FOR}` });
        }
        out.push(...found);
      } else out.push(abs);
    }
    return out;
  };
  const before = problems.length;
  const main = opts.files?.length ? expand(opts.files, 'file') : filesInDir(cwd, cwd, problems);
  const inventory = opts.inventory?.length ? expand(opts.inventory, 'inventory') : [];
  if (!opts.files?.length && !main.length && !inventory.length && problems.length === before) {
    problems.push({ message: `no hadesfile found in ${cwd}`, hint: `looked for ${LOOKED_FOR}; name a file with -f FILE` });
  }
  if (problems.length) throw new UserError(problems);
  // The same file named twice (e.g. -f . and -f hadesfile.yaml) is read once, in its first role.
  const seen = new Set<string>();
  const once = (list: string[]): string[] =>
    list.filter((p) => {
      if (seen.has(p)) return false;
      seen.add(p);
      return true;
    });
  return { main: once(main), inventory: once(inventory) };
}

/** Which files `loadHadesfile` would read, in load order (absolute): -f files first, then -i files. */
export function discoverFiles(opts: FileOptions): string[] {
  const d = discover(opts);
  return [...d.main, ...d.inventory];
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  MULTIPLE_DOCS: 'a hadesfile holds one YAML document: split the others into their own *.hades.yaml files',
  BAD_INDENT: 'check the indentation of this line against the lines above it',
  MISSING_CHAR: 'a quote or bracket is not closed',
  BAD_ALIAS: 'an alias (*name) must refer to an anchor (&name) defined before it',
  TAG_RESOLVE_FAILED: 'remove the tag: hadesfiles use plain YAML values',
};

/**
 * Every duplicate key of every map, with where the key was first written. (yaml's own
 * `uniqueKeys` check compares each key with all earlier ones — quadratic: 2,000 hosts took
 * ~40 ms of it; this is one hash lookup per key, with the same notion of "same key": equal
 * scalar values.)
 */
function duplicateKeys(root: unknown, loc: Locator): Problem[] {
  const out: Problem[] = [];
  const stack: unknown[] = [root];
  while (stack.length) {
    const n = stack.pop();
    if (isMap(n)) {
      const seen = new Map<unknown, Node>();
      for (const p of n.items as Pair<Node, Node>[]) {
        stack.push(p.key, p.value);
        if (!isScalar(p.key)) continue;
        const first = seen.get(p.key.value);
        if (!first) {
          seen.set(p.key.value, p.key);
          continue;
        }
        const firstPos = first.range ? loc.at(first.range[0]) : undefined;
        out.push({
          pos: loc.at(p.key.range?.[0] ?? 0),
          message: `duplicate key ${JSON.stringify(String(p.key.value))}${firstPos ? ` (first at line ${firstPos.line}, column ${firstPos.col})` : ''}`,
          hint: 'a key may appear only once in a map: merge the two entries or remove one',
        });
      }
    } else if (isSeq(n)) stack.push(...n.items);
    else if (isPair(n)) stack.push(n.key, n.value);
  }
  return out;
}

/** The innermost node of a kind whose range ends at `offset` (where an unclosed quote/bracket runs out). */
function openerEndingAt(root: unknown, offset: number, want: (n: unknown) => boolean): Node | undefined {
  let best: Node | undefined;
  const stack: unknown[] = [root];
  while (stack.length) {
    const n = stack.pop();
    if (want(n) && (n as Node).range?.[1] === offset && (!best || (n as Node).range![0] > best.range![0])) best = n as Node;
    if (isMap(n) || isSeq(n)) stack.push(...n.items);
    else if (isPair(n)) stack.push(n.key, n.value);
  }
  return best;
}

const YAML_MESSAGES: Record<string, string> = {
  MULTIPLE_DOCS: 'the file holds more than one YAML document (--- separates documents)',
};

function yamlProblem(e: YAMLError, src: string, doc: ReturnType<typeof parseDocument>, loc: Locator): Problem {
  let pos = loc.at(Math.min(e.pos[0], src.length));
  let hint = YAML_HINTS[e.code] ?? 'fix the YAML syntax here';
  let msg = YAML_MESSAGES[e.code] ?? e.message.replace(/\s+at line \d+, column \d+:?[\s\S]*$/, '').trim();
  // The parser notices an unclosed quote or bracket where the text runs out: point at the opener.
  if (e.code === 'MISSING_CHAR' && /quote/.test(e.message)) {
    const type = e.message.includes('"') ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE';
    const n = openerEndingAt(doc.contents, e.pos[0], (x) => isScalar(x) && x.type === type);
    if (n) {
      pos = loc.at(n.range![0]);
      msg = `unclosed ${type === 'QUOTE_DOUBLE' ? 'double' : 'single'} quote`;
      hint = `end the string with ${type === 'QUOTE_DOUBLE' ? '"' : "'"}`;
    }
  } else if (/^Flow (sequence|mapping)/.test(e.message)) {
    const seq = e.message.startsWith('Flow sequence');
    const n = openerEndingAt(doc.contents, e.pos[0], (x) => (seq ? isSeq(x) : isMap(x)) && (x as { flow?: boolean }).flow === true);
    if (n) {
      pos = loc.at(n.range![0]);
      msg = `unclosed ${seq ? '[' : '{'}: a flow ${seq ? 'sequence' : 'mapping'} must end with ${seq ? ']' : '}'}`;
      hint = `close it with ${seq ? ']' : '}'} (on the same line, or indented under its key)`;
    }
  }
  return { pos, message: `invalid YAML: ${msg}`, hint };
}

/** Aliases (*name) without an anchor (&name) before them: toJS would throw without a position. */
function unresolvedAliases(doc: ReturnType<typeof parseDocument>, loc: Locator): Problem[] {
  const out: Problem[] = [];
  const stack: unknown[] = [doc.contents];
  while (stack.length) {
    const n = stack.pop();
    if (isAlias(n)) {
      if (!n.resolve(doc)) {
        out.push({
          pos: loc.at(n.range?.[0] ?? 0),
          message: `invalid YAML: unknown alias *${n.source}`,
          hint: `define the anchor &${n.source} before using it`,
        });
      }
    } else if (isMap(n) || isSeq(n)) stack.push(...n.items);
    else if (isPair(n)) stack.push(n.key, n.value);
  }
  return out;
}

function readSource(abs: string, role: 'main' | 'inventory', cwd: string, problems: Problem[]): SourceFile {
  const display = displayPath(cwd, abs);
  const f: SourceFile = { abs, display, dir: dirname(abs), role, parsed: false };
  let src: string;
  try {
    src = readFileSync(abs, 'utf8');
  } catch (e) {
    problems.push({
      pos: { file: display, line: 1, col: 1 },
      message: `cannot read ${display}: ${(e as Error).message}`,
      hint: 'check the file and its permissions',
    });
    return f;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(src, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: false });
  const loc = new Locator(doc, lineCounter, display, src);
  f.loc = loc;
  // Duplicate keys are independent mistakes: all of them. A syntax error makes the parser
  // misread what follows, so only the first one per file is worth showing.
  const syntax = [...doc.errors, ...doc.warnings]
    .map((e) => yamlProblem(e, src, doc, loc))
    .sort((a, b) => (a.pos && b.pos ? a.pos.line - b.pos.line || a.pos.col - b.pos.col : 0));
  const errs = [...duplicateKeys(doc.contents, loc), ...syntax.slice(0, 1)];
  if (!errs.length) errs.push(...unresolvedAliases(doc, loc));
  problems.push(...errs);
  if (errs.length) return f;
  try {
    f.data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    problems.push({ pos: loc.at(0), message: `invalid YAML: ${(e as Error).message}`, hint: 'simplify the anchors and aliases' });
    return f;
  }
  f.parsed = true;
  return f;
}

/** Schema + per-file checks for one parsed file. */
function checkFile(f: SourceFile, problems: Problem[], kinds: ActionKindTable): FileDecls {
  const loc = f.loc!;
  let data = f.data;
  if (f.role === 'inventory' && data && typeof data === 'object' && !Array.isArray(data)) {
    const kept: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data)) {
      if (INVENTORY_KEYS.has(k)) kept[k] = v;
      else {
        problems.push({
          pos: loc.keyPos([k]),
          message: `key ${JSON.stringify(k)} is not allowed in an inventory file (only hosts and targets)`,
          hint: 'inventory files (-i) hold hosts and targets; load this file with -f instead',
        });
      }
    }
    data = kept;
    f.data = kept;
  }
  if (!validate(data)) problems.push(...translateSchemaErrors(validate.errors ?? [], data, loc));
  return buildFile(f, problems, kinds);
}

const BUILTIN_POS: Position = { file: '(built-in)', line: 1, col: 1 };
const q = (s: string): string => JSON.stringify(s);
const at = (p: Position): string => `${p.file}:${p.line}:${p.col}`;

function listHint(what: string, names: Iterable<string>): string {
  const list = [...names];
  if (!list.length) return `no ${what} are declared`;
  const shown = list.slice(0, 12).join(', ') + (list.length > 12 ? `, ... (${list.length} in all)` : '');
  return `declared ${what}: ${shown}`;
}

/**
 * Finds, parses, validates and merges hadesfiles (plus -i inventory files).
 * Throws one UserError listing ALL problems, sorted by file, line and column.
 */
export function loadHadesfile(opts: LoadOptions): Hadesfile {
  const cwd = resolve(opts.cwd);
  const found = discover(opts);
  const problems: Problem[] = [];
  const files = [
    ...found.main.map((p) => readSource(p, 'main', cwd, problems)),
    ...found.inventory.map((p) => readSource(p, 'inventory', cwd, problems)),
  ];
  const decls = files.filter((f) => f.parsed).map((f) => checkFile(f, problems, opts.actions));
  const allParsed = files.every((f) => f.parsed);

  const model: Hadesfile = {
    files: files.map((f) => f.abs),
    baseDir: found.main.length ? dirname(found.main[0]!) : cwd,
    hosts: new Map(),
    targets: new Map(),
    jobs: new Map(),
    plans: new Map(),
    registries: new Map(),
    knownHosts: [],
    secretPatterns: [],
  };

  // ---- merge, refusing a name declared twice (in one file or across files)
  const firstPos = new Map<string, Position>();
  const claim = (kind: string, name: string, pos: Position): boolean => {
    const key = `${kind}\0${name}`;
    const prev = firstPos.get(key);
    if (prev) {
      problems.push({
        pos,
        message: `duplicate ${kind} ${q(name)}: already declared at ${at(prev)}`,
        hint: `${kind} names must be unique across all loaded files; rename or remove one`,
      });
      return false;
    }
    firstPos.set(key, pos);
    return true;
  };
  const jumpPos = new Map<string, Position>();
  const targetHostPos = new Map<string, Position[]>();
  const stepRefs: Array<{ plan: string; refs: FileDecls['plans'][number]['steps'] }> = [];
  for (const d of decls) {
    for (const h of d.hosts) {
      if (!claim('host', h.spec.name, h.spec.pos)) continue;
      h.spec.order = model.hosts.size;
      model.hosts.set(h.spec.name, h.spec);
      if (h.jumpPos) jumpPos.set(h.spec.name, h.jumpPos);
    }
    for (const t of d.targets) {
      if (!claim('target', t.name, t.pos)) continue;
      model.targets.set(t.name, { hosts: t.hosts, pos: t.pos });
      targetHostPos.set(t.name, t.hostPos);
    }
    for (const { job } of d.jobs) if (claim('job', job.name, job.pos)) model.jobs.set(job.name, job);
    for (const p of d.plans) {
      if (!claim('plan', p.plan.name, p.plan.pos)) continue;
      model.plans.set(p.plan.name, p.plan);
      stepRefs.push({ plan: p.plan.name, refs: p.steps });
    }
    for (const { reg } of d.registries) if (claim('registry', reg.name, reg.pos)) model.registries.set(reg.name, reg);
    model.knownHosts.push(...d.knownHosts);
    model.secretPatterns.push(...d.secretPatterns);
  }
  if (!model.hosts.has('localhost')) {
    const local: HostSpec = { name: 'localhost', addr: 'localhost', local: true, builtin: true, order: model.hosts.size, pos: BUILTIN_POS };
    model.hosts.set('localhost', local);
  }

  // ---- cross references (only when every file parsed: a broken file may declare the missing names)
  if (allParsed) {
    const names = { hosts: new Set<string>(), targets: new Set<string>(), jobs: new Set<string>(), registries: new Set<string>() };
    for (const d of decls) for (const k of ['hosts', 'targets', 'jobs', 'registries'] as const) for (const n of d.names[k]) names[k].add(n);
    names.hosts.add('localhost');
    crossCheck(model, names, { jumpPos, targetHostPos, stepRefs }, problems);
  }

  if (problems.length) throw new UserError(dedupe(sortProblems(problems)));
  return model;
}

function dedupe(ps: Problem[]): Problem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = `${p.pos ? at(p.pos) : ''}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function crossCheck(
  model: Hadesfile,
  names: { hosts: Set<string>; targets: Set<string>; jobs: Set<string>; registries: Set<string> },
  side: {
    jumpPos: Map<string, Position>;
    targetHostPos: Map<string, Position[]>;
    stepRefs: Array<{ plan: string; refs: FileDecls['plans'][number]['steps'] }>;
  },
  problems: Problem[],
): void {
  const add = (message: string, pos: Position, hint: string): void => {
    problems.push({ pos, message, hint });
  };

  // targets: known hosts (a target may share a host's name: in a step's targets the target wins)
  for (const [tname, t] of model.targets) {
    const hp = side.targetHostPos.get(tname) ?? [];
    t.hosts.forEach((h, i) => {
      if (names.hosts.has(h)) return;
      const hint = names.targets.has(h)
        ? `${q(h)} is a target; a target lists host names`
        : (didYouMean(h, names.hosts) ?? listHint('hosts', names.hosts));
      add(`unknown host ${q(h)} in target ${q(tname)}`, hp[i] ?? t.pos, hint);
    });
  }

  // hosts: jump references and loops
  const bareJump = (h: HostSpec): string | undefined => (h.jump !== undefined && !/[@:]/.test(h.jump) ? h.jump : undefined);
  for (const h of model.hosts.values()) {
    const j = bareJump(h);
    if (j === undefined) continue;
    const pos = side.jumpPos.get(h.name) ?? h.pos;
    if (j === h.name) add(`host ${q(h.name)} uses itself as its jump host`, pos, 'remove jump, or name another host');
    else if (!names.hosts.has(j)) {
      add(
        `unknown jump host ${q(j)} for host ${q(h.name)}`,
        pos,
        didYouMean(j, names.hosts) ?? 'name a host from the inventory, or write user@addr:port',
      );
    } else {
      // follow the chain; report a loop once, at its first host in inventory order
      const chain = [h.name];
      let cur = model.hosts.get(j);
      while (cur && !chain.includes(cur.name)) {
        chain.push(cur.name);
        const nj = bareJump(cur);
        cur = nj !== undefined ? model.hosts.get(nj) : undefined;
      }
      if (cur && cur.name === h.name && chain.every((n) => (model.hosts.get(n)?.order ?? 0) >= h.order)) {
        add(`jump hosts form a loop: ${[...chain, h.name].join(' -> ')}`, pos, 'a jump chain must end at a host without jump');
      }
    }
  }

  // steps: job, targets, typo guard
  for (const { plan, refs } of side.stepRefs) {
    const p = model.plans.get(plan)!;
    p.steps.forEach((st, i) => {
      const r = refs[i]!;
      const job = model.jobs.get(st.job);
      if (st.job && !names.jobs.has(st.job)) {
        add(`unknown job ${q(st.job)} in step ${q(st.name)}`, r.jobPos, didYouMean(st.job, names.jobs) ?? listHint('jobs', names.jobs));
      }
      st.targets.forEach((t, ti) => {
        if (names.targets.has(t) || names.hosts.has(t)) return;
        add(
          `unknown target or host ${q(t)} in step ${q(st.name)}`,
          r.targetPos[ti] ?? st.pos,
          didYouMean(t, [...names.targets, ...names.hosts]) ?? `${listHint('targets', names.targets)}; ${listHint('hosts', names.hosts)}`,
        );
      });
      if (job?.env) {
        const declared = Object.keys(job.env);
        for (const v of Object.keys(st.env)) {
          if (declared.includes(v)) continue;
          add(
            `step ${q(st.name)} sets ${v} but job ${q(job.name)} does not declare it`,
            st.envPos[v] ?? st.pos,
            didYouMean(v, declared) ??
              `declare ${v} in the env: of job ${q(job.name)}${declared.length ? ` (declared: ${declared.join(', ')})` : ''}, or remove it from the step`,
          );
        }
      }
    });
  }

  checkArtifactRefs(model, problems);

  // actions: registry references
  const REGISTRY_FIELDS: Record<string, string[]> = { push: ['registry'], pull: ['registry'], promote: ['from', 'to'] };
  for (const job of model.jobs.values()) {
    for (const a of job.actions) {
      const fields = REGISTRY_FIELDS[a.kind];
      if (!fields || !a.spec || typeof a.spec !== 'object') continue;
      for (const f of fields) {
        const r = (a.spec as Record<string, unknown>)[f];
        if (a.kind === 'pull' && typeof r === 'string') checkPullVia(model, a, r, add);
        if (typeof r !== 'string' || names.registries.has(r)) continue;
        add(
          `unknown registry ${q(r)} in ${a.kind} (action ${a.index + 1} of job ${q(job.name)})`,
          a.fieldPos[f] ?? a.pos,
          didYouMean(r, names.registries) ??
            (names.registries.size ? listHint('registries', names.registries) : 'declare it under registries: (type: filesystem or oci)'),
        );
      }
    }
  }
}
