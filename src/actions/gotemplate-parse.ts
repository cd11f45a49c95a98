/** Go text/template, the subset gotemplate.ts renders: values, lexer and parser. Pure. */

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

export type Operand =
  | { k: 'dot' | 'nil'; at: number }
  | { k: 'field'; names: string[]; at: number }
  | { k: 'var'; name: string; names: string[]; at: number }
  | { k: 'func'; name: string; at: number }
  | { k: 'const'; v: GoValue; at: number }
  | { k: 'pipe'; pipe: Pipe; names: string[]; at: number };
export interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
  at: number;
}
export interface Control {
  k: 'if' | 'with' | 'range';
  pipe: Pipe;
  list: Node[];
  elseList?: Node[];
  at: number;
}
export type Node = { k: 'text'; s: string } | { k: 'action'; pipe: Pipe } | Control | { k: 'break' | 'continue'; at: number };

export const FUNCS = new Set([
  'and',
  'or',
  'not',
  'len',
  'index',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'print',
  'println',
  'printf',
  'html',
  'js',
  'urlquery',
]);
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
    const code =
      e[0] === 'x' || e[0] === 'u' || e[0] === 'U' ? Number.parseInt(e.slice(1), 16) : /^[0-7]{3}$/.test(e) ? Number.parseInt(e, 8) : -1;
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
        if (end2?.word !== 'end')
          throw new GoTemplateError(
            end2 ? 'expected {{end}}, found {{else}}' : `unexpected end of template: {{${w}}} has no {{end}}`,
            end2?.at ?? at,
          );
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

export type GoTemplate = Node[];
