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

export type GoValue = string | number | boolean | GoValue[] | GoMap | GoStruct;
export type GoMap = { [key: string]: GoValue };
/** A Go struct: fields in declaration order (the data root, `{Env Host Target Vars}`). */
export class GoStruct {
  constructor(readonly fields: Record<string, GoValue>) {}
}

export class GoTemplateError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

type Operand =
  | { k: 'dot' | 'nil'; at: number }
  | { k: 'field'; names: string[]; at: number }
  | { k: 'var'; name: string; names: string[]; at: number }
  | { k: 'func'; name: string; at: number }
  | { k: 'const'; v: GoValue; at: number }
  | { k: 'pipe'; pipe: Pipe; names: string[]; at: number };
interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
  at: number;
}
interface Control {
  k: 'if' | 'with' | 'range';
  pipe: Pipe;
  list: Node[];
  elseList?: Node[];
  at: number;
}
type Node = { k: 'text'; s: string } | { k: 'action'; pipe: Pipe } | Control | { k: 'break' | 'continue'; at: number };

export const FUNCS = new Set(['and', 'or', 'not', 'len', 'index', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'print', 'println', 'printf', 'html', 'js', 'urlquery']);
export const UNSUPPORTED = new Set(['call', 'slice', 'define', 'template', 'block']);
const SPACE = /[ \t\r\n]/;
const ALNUM = /[\p{L}\p{Nd}_]/u;

// ---- lexing: the text, split into text pieces and actions ----

interface Tok {
  t: 'field' | 'dot' | 'var' | 'ident' | 'const' | '(' | ')' | '|' | ':=' | '=' | ',';
  v: string;
  c?: GoValue;
  at: number;
  /** Whitespace before this token. */
  sp: boolean;
}
type Item = { k: 'text'; s: string } | { k: 'action'; toks: Tok[]; at: number };

function lex(src: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) items.push({ k: 'text', s: text });
      break;
    }
    let p = open + 2;
    if (src[p] === '-' && SPACE.test(src[p + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      p += 2;
    }
    if (text) items.push({ k: 'text', s: text });
    if (src.startsWith('/*', p)) {
      const end = src.indexOf('*/', p + 2);
      if (end < 0) throw new GoTemplateError('unclosed comment', open);
      const q = end + 2;
      if (SPACE.test(src[q] ?? '') && src.startsWith('-}}', q + 1)) [i, trimNext] = [q + 4, true];
      else if (src.startsWith('}}', q)) i = q + 2;
      else throw new GoTemplateError('comment ends before closing delimiter', open);
      continue;
    }
    const [toks, next, trim] = lexAction(src, p, open);
    items.push({ k: 'action', toks, at: open });
    [i, trimNext] = [next, trim];
  }
  return items;
}

/** The tokens of one action from `p` to its `}}` (or ` -}}`). */
function lexAction(src: string, p: number, open: number): [Tok[], number, boolean] {
  const toks: Tok[] = [];
  let sp = false;
  for (;;) {
    if (p >= src.length) throw new GoTemplateError('unclosed action', open);
    const ch = src[p]!;
    if (SPACE.test(ch)) {
      let q = p;
      while (q < src.length && SPACE.test(src[q]!)) q++;
      if (src.startsWith('-}}', q)) return [toks, q + 3, true];
      [p, sp] = [q, true];
      continue;
    }
    if (src.startsWith('}}', p)) return [toks, p + 2, false];
    const at = p;
    const push = (t: Tok['t'], v: string, c?: GoValue) => {
      toks.push({ t, v, c, at, sp });
      sp = false;
    };
    const word = (from: number) => {
      let q = from;
      while (q < src.length && ALNUM.test(src[q]!)) q++;
      return q;
    };
    if (ch === '.' && ALNUM.test(src[p + 1] ?? '') && !/[0-9]/.test(src[p + 1]!)) {
      const q = word(p + 1);
      push('field', src.slice(p + 1, q));
      p = q;
    } else if (ch === '.' && !/[0-9]/.test(src[p + 1] ?? '')) {
      push('dot', '.');
      p++;
    } else if (ch === '$') {
      const q = word(p + 1);
      push('var', src.slice(p, q));
      p = q;
    } else if (ch === '"') {
      let q = p + 1;
      while (q < src.length && src[q] !== '"' && src[q] !== '\n') q += src[q] === '\\' ? 2 : 1;
      if (src[q] !== '"') throw new GoTemplateError('unterminated quoted string', at);
      push('const', src.slice(p, q + 1), unquote(src.slice(p + 1, q), at));
      p = q + 1;
    } else if (ch === '`') {
      const q = src.indexOf('`', p + 1);
      if (q < 0) throw new GoTemplateError('unterminated raw quoted string', at);
      push('const', src.slice(p, q + 1), src.slice(p + 1, q).replace(/\r/g, ''));
      p = q + 1;
    } else if (/[0-9+-]/.test(ch)) {
      const m = /^[+-]?[0-9a-zA-Z_.]*/.exec(src.slice(p))![0];
      if (!/^[+-]?(0|[1-9][0-9]*)$/.test(m)) throw new GoTemplateError(`number ${m} is not supported (only decimal integers)`, at);
      const n = Number(m);
      if (!Number.isSafeInteger(n)) throw new GoTemplateError(`number ${m} is too large`, at);
      push('const', m, n);
      p += m.length;
    } else if (ALNUM.test(ch)) {
      const q = word(p);
      const w = src.slice(p, q);
      if (w === 'true' || w === 'false') push('const', w, w === 'true');
      else push('ident', w);
      p = q;
    } else if (src.startsWith(':=', p)) {
      push(':=', ':=');
      p += 2;
    } else if ('()|=,'.includes(ch)) {
      push(ch as Tok['t'], ch);
      p++;
    } else {
      throw new GoTemplateError(`unexpected ${JSON.stringify(ch)} in action (not supported)`, at);
    }
  }
}

const ESC: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"' };
function unquote(body: string, at: number): string {
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_, e: string) => {
    if (e in ESC) return ESC[e]!;
    const code = e[0] === 'x' || e[0] === 'u' || e[0] === 'U' ? Number.parseInt(e.slice(1), 16) : /^[0-7]{3}$/.test(e) ? Number.parseInt(e, 8) : -1;
    if (code < 0 || ((e[0] === 'x' || /^[0-7]/.test(e)) && code > 0x7f) || code > 0x10ffff || (code >= 0xd800 && code < 0xe000))
      throw new GoTemplateError(`unsupported escape \\${e} in a string`, at);
    return String.fromCodePoint(code);
  });
}

// ---- parsing ----

class Parser {
  private i = 0;
  private vars: string[][] = [['$']];
  private rangeDepth = 0;
  constructor(private readonly items: Item[]) {}

  parse(): Node[] {
    const [list, end] = this.list();
    if (end) throw new GoTemplateError(`unexpected {{${end.word}}}`, end.at);
    return list;
  }

  /** Nodes up to an `end` / `else` action (returned with its remaining tokens) or the end of the text. */
  private list(): [Node[], { word: 'end' | 'else'; toks: Tok[]; at: number } | undefined] {
    const out: Node[] = [];
    while (this.i < this.items.length) {
      const it = this.items[this.i++]!;
      if (it.k === 'text') {
        out.push(it);
        continue;
      }
      const [first, ...rest] = it.toks;
      if (!first) throw new GoTemplateError('missing value for command', it.at);
      const w = first.t === 'ident' ? first.v : '';
      if (w === 'end' || w === 'else') {
        if (w === 'end' && rest.length) throw new GoTemplateError('unexpected tokens after {{end}}', rest[0]!.at);
        return [out, { word: w, toks: rest, at: it.at }];
      }
      if (w === 'if' || w === 'with' || w === 'range') out.push(this.control(w, rest, it.at));
      else if (w === 'break' || w === 'continue') {
        if (!this.rangeDepth) throw new GoTemplateError(`{{${w}}} outside {{range}}`, it.at);
        if (rest.length) throw new GoTemplateError(`unexpected tokens after {{${w}}}`, rest[0]!.at);
        out.push({ k: w, at: it.at });
      } else if (UNSUPPORTED.has(w)) throw new GoTemplateError(`{{${w}}} is not supported`, it.at);
      else out.push({ k: 'action', pipe: this.pipe(it.toks, it.at, false) });
    }
    return [out, undefined];
  }

  private control(w: 'if' | 'with' | 'range', toks: Tok[], at: number): Node {
    this.vars.push([]);
    try {
      const pipe = this.pipe(toks, at, w === 'range');
      if (!pipe.cmds.length) throw new GoTemplateError(`missing value for ${w}`, at);
      if (w === 'range') this.rangeDepth++;
      const [list, end] = this.list();
      if (w === 'range') this.rangeDepth--;
      if (!end) throw new GoTemplateError(`unexpected end of template: {{${w}}} has no {{end}}`, at);
      const node: Control = { k: w, pipe, list, at };
      if (end.word === 'else') {
        if (end.toks[0]?.t === 'ident' && end.toks[0].v === 'if') {
          // `{{else if …}}` is an `if` inside the else branch, closed by the same {{end}} (as in Go).
          node.elseList = [this.control('if', end.toks.slice(1), end.at)];
          return node;
        }
        if (end.toks.length) throw new GoTemplateError(`{{else ${end.toks[0]!.v}}} is not supported here`, end.toks[0]!.at);
        const [elseList, end2] = this.list();
        if (end2?.word !== 'end') throw new GoTemplateError(end2 ? 'expected {{end}}, found {{else}}' : `unexpected end of template: {{${w}}} has no {{end}}`, end2?.at ?? at);
        node.elseList = elseList;
      }
      return node;
    } finally {
      this.vars.pop();
    }
  }

  private defined(name: string, at: number): void {
    if (!this.vars.some((s) => s.includes(name))) throw new GoTemplateError(`undefined variable "${name}"`, at);
  }

  private pipe(toks: Tok[], at: number, isRange: boolean): Pipe {
    let i = 0;
    const decl: string[] = [];
    let assign = false;
    if (toks[0]?.t === 'var') {
      if (toks[1]?.t === ':=' || toks[1]?.t === '=') {
        decl.push(toks[0].v);
        assign = toks[1].t === '=';
        i = 2;
      } else if (isRange && toks[1]?.t === ',' && toks[2]?.t === 'var' && toks[3]?.t === ':=') {
        decl.push(toks[0].v, toks[2].v);
        i = 4;
      }
    }
    if (assign) {
      if (isRange) throw new GoTemplateError('range with "=" is not supported; use ":="', at);
      this.defined(decl[0]!, toks[0]!.at);
    }
    const [pipe, j] = this.commands(toks, i, at);
    if (j < toks.length) throw new GoTemplateError(`unexpected ${toks[j]!.v}`, toks[j]!.at);
    if (decl.length && !pipe.cmds.length) throw new GoTemplateError('missing value for declaration', at);
    if (!assign) this.vars[this.vars.length - 1]!.push(...decl);
    return { ...pipe, decl, assign };
  }

  private commands(toks: Tok[], i: number, at: number): [Pipe, number] {
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    while (i < toks.length && toks[i]!.t !== ')') {
      const t = toks[i]!;
      if (t.t === '|') {
        if (!cmd.length) throw new GoTemplateError('missing command before |', t.at);
        cmds.push(cmd);
        cmd = [];
        i++;
        continue;
      }
      if (cmd.length && !t.sp && t.t !== '(') throw new GoTemplateError(`unexpected ${t.v} (missing space?)`, t.at);
      const [op, j] = this.operand(toks, i);
      cmd.push(op);
      i = j;
    }
    if (cmd.length) cmds.push(cmd);
    else if (cmds.length) throw new GoTemplateError('missing command after |', toks[i - 1]?.at ?? at);
    return [{ decl: [], assign: false, cmds, at }, i];
  }

  private operand(toks: Tok[], i: number): [Operand, number] {
    const t = toks[i]!;
    let op: Operand;
    i++;
    if (t.t === 'field') op = { k: 'field', names: [t.v], at: t.at };
    else if (t.t === 'dot') op = { k: 'dot', at: t.at };
    else if (t.t === 'var') {
      this.defined(t.v, t.at);
      op = { k: 'var', name: t.v, names: [], at: t.at };
    } else if (t.t === 'const') op = { k: 'const', v: t.c!, at: t.at };
    else if (t.t === 'ident') {
      if (t.v === 'nil') throw new GoTemplateError('nil is not supported', t.at);
      if (UNSUPPORTED.has(t.v)) throw new GoTemplateError(`function "${t.v}" is not supported`, t.at);
      if (!FUNCS.has(t.v)) throw new GoTemplateError(`function "${t.v}" not defined`, t.at);
      op = { k: 'func', name: t.v, at: t.at };
    } else if (t.t === '(') {
      const [pipe, j] = this.commands(toks, i, t.at);
      if (toks[j]?.t !== ')') throw new GoTemplateError('unclosed left paren', t.at);
      if (!pipe.cmds.length) throw new GoTemplateError('missing value in parentheses', t.at);
      op = { k: 'pipe', pipe, names: [], at: t.at };
      i = j + 1;
    } else throw new GoTemplateError(`unexpected ${t.v}`, t.at);
    while (toks[i]?.t === 'field' && !toks[i]!.sp) {
      if (op.k === 'field' || op.k === 'var' || op.k === 'pipe') op.names.push(toks[i]!.v);
      else throw new GoTemplateError(`unexpected .${toks[i]!.v}`, toks[i]!.at);
      i++;
    }
    return [op, i];
  }
}

export function parseGoTemplate(src: string): GoTemplate {
  return new Parser(lex(src)).parse();
}

// ---- values: printing and truth, as fmt and text/template do ----

const goType = (v: GoValue): string =>
  typeof v === 'string' ? 'string' : typeof v === 'number' ? 'int' : typeof v === 'boolean' ? 'bool' : Array.isArray(v) ? 'list' : v instanceof GoStruct ? 'struct' : 'map';

/** Map keys as Go sorts them (byte-wise). */
const sortedKeys = (m: GoMap): string[] => Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** fmt's %v. */
export function formatValue(v: GoValue): string {
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (v instanceof GoStruct) return `{${Object.values(v.fields).map(formatValue).join(' ')}}`;
  if (typeof v === 'object') return `map[${sortedKeys(v).map((k) => `${k}:${formatValue(v[k]!)}`).join(' ')}]`;
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
  const e: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\', '"': '\\"' };
  return `"${s.replace(/[\x00-\x1f\x7f\\"]/g, (c) => e[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

function printf(format: string, args: GoValue[], at: number): string {
  let n = 0;
  const out = format.replace(/%([-+# 0]*)([0-9]*)(\.[0-9]*)?(.?)/gs, (all, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%' && !flags && !width && !prec) return '%';
    if (!'sdvq'.includes(verb) || !verb || prec !== undefined || /[+# ]/.test(flags) || (flags.includes('0') && (verb !== 'd' || flags.includes('-'))))
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
  });
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
    [...Buffer.from(s)].map((b) => (/[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : b === 0x20 ? '+' : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join(''),
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
    if (args.length || final !== undefined) throw new GoTemplateError(`can't give argument to non-function ${describe(first!)}`, (args[0] ?? first!).at);
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
        if (v instanceof GoStruct) throw new GoTemplateError(`can't evaluate field ${name}: the data has ${Object.keys(m).map((k) => `.${k}`).join(', ')}`, at);
        throw new GoTemplateError(`map has no entry for key "${name}" (${path}.${name})`, at);
      }
      v = m[name]!;
      path += `.${name}`;
    }
    return v;
  }

  private call(dot: GoValue, name: string, argOps: Operand[], final: GoValue | undefined, at: number): GoValue {
    const lazy = (): (() => GoValue)[] => [...argOps.map((o) => () => this.command(dot, [o], undefined)), ...(final === undefined ? [] : [() => final])];
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
      if (args.length < lo || args.length > hi) throw new GoTemplateError(`wrong number of args for ${name}: want ${lo === hi ? lo : hi === Infinity ? `at least ${lo}` : `${lo}..${hi}`} got ${args.length}`, at);
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

export type GoTemplate = Node[];

/** Renders a template (text or parsed) with `data` as Go's text/template with missingkey=error would; throws GoTemplateError. */
export function executeGoTemplate(tpl: string | GoTemplate, data: GoValue): string {
  const ex = new Exec(data);
  ex.walk(data, typeof tpl === 'string' ? parseGoTemplate(tpl) : tpl);
  return ex.out.join('');
}
