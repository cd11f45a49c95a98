/**
 * The Go text/template subset against outputs recorded from real Go 1.19
 * (test/fixtures/gotemplate: record.go, README.md): every case Go renders is rendered
 * byte-identically; every case Go rejects is rejected; every `refused-*` case (Go renders it,
 * but outside the subset, or silently empty) is an error with the template's line:col.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { executeGoTemplate, GoStruct, GoTemplateError, type GoMap, type GoValue } from '../../src/actions/gotemplate.js';
import { detectSyntax, lineCol } from '../../src/actions/template-syntax.js';
import { ROOT } from '../helpers/cli.js';

const DIR = join(ROOT, 'test/fixtures/gotemplate');
const raw = JSON.parse(readFileSync(join(DIR, 'data.json'), 'utf8')) as {
  Env: Record<string, string>;
  Host: string;
  Target: string;
  Vars: GoMap;
};
const data = (): GoValue => new GoStruct({ Env: { ...raw.Env }, Host: raw.Host, Target: raw.Target, Vars: structuredClone(raw.Vars) });
const cases = readdirSync(join(DIR, 'cases'))
  .filter((f) => f.endsWith('.tpl'))
  .map((f) => f.slice(0, -4))
  .sort();

function render(name: string): { out: string } | { error: GoTemplateError } {
  const src = readFileSync(join(DIR, 'cases', `${name}.tpl`), 'utf8');
  try {
    return { out: executeGoTemplate(src, data()) };
  } catch (e) {
    if (!(e instanceof GoTemplateError)) throw e;
    return { error: e };
  }
}

describe('Go templates render as Go 1.19 renders them (recorded fixtures)', () => {
  it('has a recorded result for every case', () => {
    expect(cases.length).toBeGreaterThan(50);
    for (const c of cases) expect(existsSync(join(DIR, 'cases', `${c}.out`)) !== existsSync(join(DIR, 'cases', `${c}.err`)), c).toBe(true);
  });

  for (const name of cases) {
    const goOut = join(DIR, 'cases', `${name}.out`);
    if (name.startsWith('refused-')) {
      it(`${name}: Go renders it, Hades refuses it`, () => {
        expect(existsSync(goOut)).toBe(true);
        const r = render(name);
        expect('error' in r ? r.error.message : `rendered ${JSON.stringify((r as { out: string }).out)}`).toMatch(
          /not supported|no entry|missing|extra|%d of a string/,
        );
      });
    } else if (existsSync(goOut)) {
      it(`${name}: byte-identical`, () => {
        const r = render(name);
        expect('error' in r ? r.error.message : undefined).toBeUndefined();
        expect((r as { out: string }).out).toBe(readFileSync(goOut, 'utf8'));
      });
    } else {
      it(`${name}: an error, as in Go`, () => {
        const r = render(name);
        expect('error' in r, `Go says: ${readFileSync(join(DIR, 'cases', `${name}.err`), 'utf8')}`).toBe(true);
      });
    }
  }
});

describe('errors carry the line:col of the template', () => {
  const at = (src: string) => {
    try {
      executeGoTemplate(src, data());
    } catch (e) {
      const { line, col } = lineCol(src, (e as GoTemplateError).offset);
      return `${line}:${col}: ${(e as Error).message}`;
    }
    return 'rendered';
  };
  it.each([
    ['line one\n  {{ .Env.MISSING }}\n', '2:6: map has no entry for key "MISSING" (.Env.MISSING)'],
    ['{{ range $k, $v := .Vars.Map }}\n{{ $v.nope }}{{ end }}', "2:4: can't evaluate field nope of $v: it is a string"],
    ['a\nb {{ if .Host }}', '2:3: unexpected end of template: {{if}} has no {{end}}'],
    ['{{ index .Env "NOPE" }}', '1:4: index: map has no entry for key "NOPE"'],
    ['{{ .Host }}\n{{ printf "%x" 1 }}', '2:4: printf: %x is not supported (only %s %d %v %q with a width and the flags - and 0 for %d)'],
    ['{{ $x }}', '1:4: undefined variable "$x"'],
    ['{{ upper .Host }}', '1:4: function "upper" not defined'],
    ['{{ .Nope }}', "1:4: can't evaluate field Nope: the data has .Env, .Host, .Target, .Vars"],
  ])('%j', (src, want) => expect(at(src)).toBe(want));
});

describe('Go or nunjucks, from the template itself', () => {
  const syntax = (src: string) => {
    const d = detectSyntax(src);
    return 'syntax' in d ? d.syntax : `${lineCol(src, d.offset).line}:${lineCol(src, d.offset).col}: ${d.error}`;
  };
  it.each([
    ['{{.Env.DOMAIN}} {\n}', 'go'],
    ['{{ $x := 1 }}', 'go'],
    ['{{- range .Env }}{{ . }}{{ end }}', 'go'],
    ['{{/* c */}}x', 'go'],
    ['{{ printf "%s" "x" }}', 'go'],
    ['{{ not .Host }}', 'go'],
    ['{{ host.name }} {{ env.VERSION }}', 'nunjucks'],
    ['{% if x %}{{ x }}{% endif %}', 'nunjucks'],
    ['{{ range(3) | join(",") }}', 'nunjucks'],
    ['{{ not env.X }}', 'nunjucks'],
    ['plain text, no tags', 'nunjucks'],
    ['{{ .Env.A }}\n{% if x %}', '2:1: the template mixes Go text/template ({{ .Env.A }}) and nunjucks ({%) syntax'],
    ['{{ env.A }}\n  {{ .Env.A }}', '2:3: the template mixes Go text/template ({{ .Env.A }}) and nunjucks ({{ env.A }}) syntax'],
    ['x {{ "literal" }}', '1:3: cannot tell whether the template is Go text/template or nunjucks'],
  ])('%j → %s', (src, want) => expect(syntax(src)).toBe(want));
});
