/**
 * A subset of Go's text/template, rendered byte-identically to Go (checked against outputs
 * recorded from Go 1.19: test/fixtures/gotemplate). Pure: text and data in, text out.
 *
 * Supported: text, `{{/* comments *\/}}`, trim markers `{{- ` / ` -}}`, `.`, `.A.B`, `$`,
 * `$x.A`, `(pipeline).A`, string / raw-string / integer / true / false literals, pipelines
 * `a | f b`, `$x := …`, `$x = …`, `if` / `else if` / `else`, `range` (maps in sorted key
 * order, lists; `$k, $v :=`; `else`; `break` / `continue`), `with` / `else`, and the
 * functions and or not len index eq ne lt le gt ge print println printf html js urlquery.
 * printf knows %s %d %v %q %% with a width and the flags `-` (and `0` for %d).
 * Like Go with `missingkey=error`, a missing map key is an error — `index` included. Anything
 * outside the subset is an error too (never a guess): every output is the one Go gives.
 */
import {
  type Control,
  type GoMap,
  GoStruct,
  type GoTemplate,
  GoTemplateError,
  type GoValue,
  type Node,
  type Operand,
  type Pipe,
  parseGoTemplate,
} from './gotemplate-parse.js';

export {
  FUNCS,
  type GoMap,
  GoStruct,
  type GoTemplate,
  GoTemplateError,
  type GoValue,
  parseGoTemplate,
  UNSUPPORTED,
} from './gotemplate-parse.js';

// ---- values: printing and truth, as fmt and text/template do ----

const goType = (v: GoValue): string =>
  typeof v === 'string'
    ? 'string'
    : typeof v === 'number'
      ? 'int'
      : typeof v === 'boolean'
        ? 'bool'
        : Array.isArray(v)
          ? 'list'
          : v instanceof GoStruct
            ? 'struct'
            : 'map';

/** Map keys as Go sorts them (byte-wise). */
const sortedKeys = (m: GoMap): string[] => Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** fmt's %v. */
export function formatValue(v: GoValue): string {
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (v instanceof GoStruct) return `{${Object.values(v.fields).map(formatValue).join(' ')}}`;
  if (typeof v === 'object')
    return `map[${sortedKeys(v)
      .map((k) => `${k}:${formatValue(v[k]!)}`)
      .join(' ')}]`;
  return String(v);
}

function truth(v: GoValue): boolean {
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  return v instanceof GoStruct || Object.keys(v).length > 0;
}

/** fmt.Sprint: a space between operands when neither is a string. */
const sprint = (args: GoValue[]): string =>
  args.map((a, i) => (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + formatValue(a)).join('');

function quote(s: string, at: number): string {
  if (/[^\x00-\x7f]/.test(s)) throw new GoTemplateError('%q of a non-ASCII string is not supported', at);
  const e: Record<string, string> = {
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
    '\\': '\\\\',
    '"': '\\"',
  };
  return `"${s.replace(/[\x00-\x1f\x7f\\"]/g, (c) => e[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

function printf(format: string, args: GoValue[], at: number): string {
  let n = 0;
  const out = format.replace(
    /%([-+# 0]*)([0-9]*)(\.[0-9]*)?(.?)/gs,
    (all, flags: string, width: string, prec: string | undefined, verb: string) => {
      if (verb === '%' && !flags && !width && !prec) return '%';
      if (
        !'sdvq'.includes(verb) ||
        !verb ||
        prec !== undefined ||
        /[+# ]/.test(flags) ||
        (flags.includes('0') && (verb !== 'd' || flags.includes('-')))
      )
        throw new GoTemplateError(`printf: ${all} is not supported (only %s %d %v %q with a width and the flags - and 0 for %d)`, at);
      if (n >= args.length) throw new GoTemplateError(`printf: missing argument for ${all}`, at);
      const a = args[n++]!;
      let s: string;
      if (verb === 'd' && typeof a !== 'number') throw new GoTemplateError(`printf: %d of a ${goType(a)}`, at);
      if (verb === 's' && typeof a !== 'string') throw new GoTemplateError(`printf: %s of a ${goType(a)}`, at);
      if (verb === 'q' && typeof a !== 'string') throw new GoTemplateError(`printf: %q of a ${goType(a)}`, at);
      if (width && typeof a === 'object') throw new GoTemplateError(`printf: a width for a ${goType(a)} is not supported`, at);
      s = verb === 'q' ? quote(a as string, at) : formatValue(a);
      const w = Number(width || 0);
      const len = [...s].length;
      if (len < w) {
        if (flags.includes('-')) s += ' '.repeat(w - len);
        else if (flags.includes('0')) s = s[0] === '-' ? `-${'0'.repeat(w - len)}${s.slice(1)}` : '0'.repeat(w - len) + s;
        else s = ' '.repeat(w - len) + s;
      }
      return s;
    },
  );
  if (n < args.length) throw new GoTemplateError(`printf: ${args.length - n} extra argument(s) for ${JSON.stringify(format)}`, at);
  return out;
}

const HTML: Record<string, string> = { '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;', '\0': '\ufffd' };
const JS: Record<string, string> = { '\\': '\\\\', "'": "\\'", '"': '\\"', '<': '\\u003C', '>': '\\u003E', '&': '\\u0026', '=': '\\u003D' };
const escapers: Record<string, (s: string, at: number) => string> = {
  html: (s) => s.replace(/["'&<>\0]/g, (c) => HTML[c]!),
  js: (s, at) => {
    if (/[^\x00-\x7f]/.test(s)) throw new GoTemplateError('js of a non-ASCII string is not supported', at);
    return s.replace(/[\\'"<>&=\x00-\x1f]/g, (c) => JS[c] ?? `\\u00${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  },
  urlquery: (s) =>
    [...Buffer.from(s)]
      .map((b) =>
        /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b))
          ? String.fromCharCode(b)
          : b === 0x20
            ? '+'
            : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
      )
      .join(''),
};

function compare(name: string, a: GoValue, b: GoValue, at: number): number {
  const ka = goType(a);
  if (ka !== goType(b)) throw new GoTemplateError(`${name}: incompatible types for comparison (${ka} and ${goType(b)})`, at);
  if (typeof a === 'object') throw new GoTemplateError(`${name}: a ${ka} cannot be compared`, at);
  if (typeof a === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b as string));
  if (typeof a === 'boolean') {
    if (name !== 'eq' && name !== 'ne') throw new GoTemplateError(`${name}: invalid type for comparison (bool)`, at);
    return a === b ? 0 : 1;
  }
  return a < (b as number) ? -1 : a > (b as number) ? 1 : 0;
}

// ---- execution ----

class Break {}
class Continue {}

class Exec {
  private vars: { name: string; v: GoValue }[];
  readonly out: string[] = [];
  constructor(root: GoValue) {
    this.vars = [{ name: '$', v: root }];
  }

  walk(dot: GoValue, list: Node[]): void {
    for (const n of list) {
      if (n.k === 'text') this.out.push(n.s);
      else if (n.k === 'action') {
        const v = this.pipe(dot, n.pipe);
        if (!n.pipe.decl.length) this.out.push(formatValue(v));
      } else if (n.k === 'break') throw new Break();
      else if (n.k === 'continue') throw new Continue();
      else if (n.k === 'if' || n.k === 'with' || n.k === 'range') {
        const mark = this.vars.length;
        try {
          const v = this.pipe(dot, n.pipe);
          if (n.k === 'range') this.range(n, v, dot);
          else if (truth(v)) this.walk(n.k === 'with' ? v : dot, n.list);
          else if (n.elseList) this.walk(dot, n.elseList);
        } finally {
          this.vars.length = mark;
        }
      }
    }
  }

  private range(n: Control, v: GoValue, dot: GoValue): void {
    let pairs: [GoValue, GoValue][];
    if (Array.isArray(v)) pairs = v.map((x, i) => [i, x]);
    else if (typeof v === 'object' && !(v instanceof GoStruct)) pairs = sortedKeys(v).map((k) => [k, v[k]!]);
    else throw new GoTemplateError(`range can't iterate over a ${goType(v)}`, n.at);
    if (!pairs.length) {
      if (n.elseList) this.walk(dot, n.elseList);
      return;
    }
    const mark = this.vars.length;
    for (const [key, elem] of pairs) {
      if (n.pipe.decl.length) this.vars[mark - 1]!.v = elem;
      if (n.pipe.decl.length > 1) this.vars[mark - 2]!.v = key;
      try {
        this.walk(elem, n.list);
      } catch (e) {
        if (e instanceof Break) break;
        if (!(e instanceof Continue)) throw e;
      } finally {
        this.vars.length = mark;
      }
    }
  }

  private pipe(dot: GoValue, p: Pipe): GoValue {
    let v: GoValue | undefined;
    for (const cmd of p.cmds) v = this.command(dot, cmd, v);
    if (p.assign) this.vars.findLast((x) => x.name === p.decl[0])!.v = v!;
    else for (const name of p.decl) this.vars.push({ name, v: v! });
    return v!;
  }

  private command(dot: GoValue, cmd: Operand[], final: GoValue | undefined): GoValue {
    const [first, ...args] = cmd;
    if (first!.k === 'func') return this.call(dot, first!.name, args, final, first!.at);
    if (args.length || final !== undefined)
      throw new GoTemplateError(`can't give argument to non-function ${describe(first!)}`, (args[0] ?? first!).at);
    return this.operand(dot, first!);
  }

  private operand(dot: GoValue, op: Operand): GoValue {
    switch (op.k) {
      case 'dot':
        return dot;
      case 'const':
        return op.v;
      case 'field':
        return this.fields(dot, op.names, op.at, '');
      case 'var':
        return this.fields(this.vars.findLast((x) => x.name === op.name)!.v, op.names, op.at, op.name);
      case 'pipe':
        return this.fields(this.pipe(dot, op.pipe), op.names, op.at, '(…)');
      case 'func':
        return this.call(dot, op.name, [], undefined, op.at);
      default:
        throw new GoTemplateError('nil is not supported', op.at);
    }
  }

  private fields(v: GoValue, names: string[], at: number, base: string): GoValue {
    let path = base;
    for (const name of names) {
      const m = v instanceof GoStruct ? v.fields : typeof v === 'object' && !Array.isArray(v) ? v : undefined;
      if (!m) throw new GoTemplateError(`can't evaluate field ${name} of ${path || '.'}: it is a ${goType(v)}`, at);
      if (!Object.hasOwn(m, name)) {
        if (v instanceof GoStruct)
          throw new GoTemplateError(
            `can't evaluate field ${name}: the data has ${Object.keys(m)
              .map((k) => `.${k}`)
              .join(', ')}`,
            at,
          );
        throw new GoTemplateError(`map has no entry for key "${name}" (${path}.${name})`, at);
      }
      v = m[name]!;
      path += `.${name}`;
    }
    return v;
  }

  private call(dot: GoValue, name: string, argOps: Operand[], final: GoValue | undefined, at: number): GoValue {
    const lazy = (): (() => GoValue)[] => [
      ...argOps.map((o) => () => this.command(dot, [o], undefined)),
      ...(final === undefined ? [] : [() => final]),
    ];
    if (name === 'and' || name === 'or') {
      const fs = lazy();
      if (!fs.length) throw new GoTemplateError(`wrong number of args for ${name}: want at least 1 got 0`, at);
      let v: GoValue = false;
      for (const f of fs) {
        v = f();
        if (truth(v) === (name === 'or')) return v;
      }
      return v;
    }
    const args = lazy().map((f) => f());
    const want = (lo: number, hi = lo) => {
      if (args.length < lo || args.length > hi)
        throw new GoTemplateError(
          `wrong number of args for ${name}: want ${lo === hi ? lo : hi === Infinity ? `at least ${lo}` : `${lo}..${hi}`} got ${args.length}`,
          at,
        );
    };
    switch (name) {
      case 'not':
        want(1);
        return !truth(args[0]!);
      case 'len': {
        want(1);
        const a = args[0]!;
        if (typeof a === 'string') return Buffer.byteLength(a);
        if (Array.isArray(a)) return a.length;
        if (typeof a === 'object' && !(a instanceof GoStruct)) return Object.keys(a).length;
        throw new GoTemplateError(`len of a ${goType(a)}`, at);
      }
      case 'index': {
        want(1, Infinity);
        let v = args[0]!;
        for (const k of args.slice(1)) {
          if (Array.isArray(v) && typeof k === 'number') {
            if (k < 0 || k >= v.length) throw new GoTemplateError(`index out of range: ${k}`, at);
            v = v[k]!;
          } else if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof GoStruct) && typeof k === 'string') {
            if (!Object.hasOwn(v, k)) throw new GoTemplateError(`index: map has no entry for key ${JSON.stringify(k)}`, at);
            v = v[k]!;
          } else throw new GoTemplateError(`can't index a ${goType(v)} with a ${goType(k)}`, at);
        }
        return v;
      }
      case 'eq':
        want(2, Infinity);
        for (const b of args.slice(1)) if (compare(name, args[0]!, b, at) === 0) return true;
        return false;
      case 'ne':
      case 'lt':
      case 'le':
      case 'gt':
      case 'ge': {
        want(2);
        const c = compare(name, args[0]!, args[1]!, at);
        return { ne: c !== 0, lt: c < 0, le: c <= 0, gt: c > 0, ge: c >= 0 }[name];
      }
      case 'print':
        return sprint(args);
      case 'println':
        return `${args.map(formatValue).join(' ')}\n`;
      case 'printf':
        want(1, Infinity);
        if (typeof args[0] !== 'string') throw new GoTemplateError(`printf: the format is a ${goType(args[0]!)}, not a string`, at);
        return printf(args[0], args.slice(1), at);
      default: {
        const s = args.length === 1 && typeof args[0] === 'string' ? args[0] : sprint(args);
        return escapers[name]!(s, at);
      }
    }
  }
}

function describe(op: Operand): string {
  if (op.k === 'field') return `.${op.names.join('.')}`;
  if (op.k === 'var') return [op.name, ...op.names].join('.');
  if (op.k === 'const') return formatValue(op.v);
  return op.k === 'dot' ? '.' : '(…)';
}

/** Renders a template (text or parsed) with `data` as Go's text/template with missingkey=error would; throws GoTemplateError. */
export function executeGoTemplate(tpl: string | GoTemplate, data: GoValue): string {
  const ex = new Exec(data);
  ex.walk(data, typeof tpl === 'string' ? parseGoTemplate(tpl) : tpl);
  return ex.out.join('');
}
