/** Which syntax a template is written in (Go text/template or nunjucks), told from the template itself. Pure. */
import { FUNCS, UNSUPPORTED } from './gotemplate.js';

const GO_WORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
  ...FUNCS,
  ...UNSUPPORTED,
]);
GO_WORDS.delete('not'); // `{{ not x }}` is nunjucks too: the word after it decides

export type Syntax = 'go' | 'nunjucks';
export type Detected = { syntax: Syntax } | { error: string; offset: number; hint: string };

/**
 * Go or nunjucks, from the template itself: an action that begins with `.`, `$` or `/*`, or
 * with a Go keyword or function (which nunjucks never accepts), is Go; a `{%`/`{#` tag or an
 * action that begins with any other name (`env.X`, `host.name`) is nunjucks. Both is an error;
 * actions that are neither (`{{ "x" }}`) are ambiguous. A template without tags is nunjucks
 * (it renders unchanged either way).
 */
export function detectSyntax(src: string): Detected {
  let go: { at: number; what: string } | undefined;
  let nj: { at: number; what: string } | undefined;
  let neutral: number | undefined;
  const tag = /\{%|\{#/.exec(src);
  if (tag) nj = { at: tag.index, what: tag[0] };
  for (const m of src.matchAll(/\{\{-?([\s\S]*?)\}\}/g)) {
    const body = m[1]!.replace(/^\s+/, '').replace(/^(not\s+)+/, '');
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(body)?.[0];
    const bare = body.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
    const isGo =
      /^(\/\*|[.$])/.test(body) ||
      (word !== undefined && GO_WORDS.has(word) && body[word.length] !== '(') ||
      /(^|[\s(|,])(\.[\p{L}_]|\$)/u.test(bare);
    const what = m[0].length > 40 ? `${m[0].slice(0, 37)}...` : m[0];
    if (isGo) go ??= { at: m.index, what };
    else if (word !== undefined && word !== 'true' && word !== 'false') nj ??= { at: m.index, what };
    else neutral ??= m.index;
  }
  if (go && nj) {
    const later = go.at > nj.at ? go : nj;
    return {
      error: `the template mixes Go text/template (${go.what}) and nunjucks (${nj.what}) syntax`,
      offset: later.at,
      hint: 'write it in one syntax; if the other is meant as literal text, say which with syntax: go or syntax: nunjucks on the action',
    };
  }
  if (go) return { syntax: 'go' };
  if (nj || neutral === undefined) return { syntax: 'nunjucks' };
  return {
    error: 'cannot tell whether the template is Go text/template or nunjucks',
    offset: neutral,
    hint: 'say which with syntax: go or syntax: nunjucks on the action',
  };
}

/** 1-based line and column of an offset in a text. */
export function lineCol(src: string, offset: number): { line: number; col: number } {
  const before = src.slice(0, offset);
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, col: offset - nl };
}
