/**
 * Go text/template templates through the built CLI on a `local: true` host: a Caddyfile-like
 * template without an extension renders byte-identically to Go; an undefined key is exit 2 at
 * the template's file:line:col; a mixed template is an error with a hint; `syntax:` overrides;
 * a render that read a secret is hidden like a nunjucks one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';

// RENDERED is what Go 1.19 renders for CADDYFILE (test/fixtures/gotemplate/record.go run with data
// {"Env": {"DOMAIN": "example.org", "PORT": "8080", "TLS": "off"}, "Host": "web-1", "Target": "web",
// "Vars": {"upstreams": ["a", "b"]}}).
const CADDYFILE = `{{.Env.DOMAIN}} {
\t{{- /* one line per upstream */}}
\treverse_proxy {{ range $i, $u := .Vars.upstreams }}{{ if $i }} {{ end }}{{ $u }}:{{ $.Env.PORT }}{{ end }}
\tlog {
\t\toutput file /var/log/caddy/{{ .Host }}-{{ .Target }}.log
\t}
{{- if eq .Env.TLS "off" }}
\ttls off
{{- end }}
}
`;
const RENDERED = 'example.org {\n\treverse_proxy a:8080 b:8080\n\tlog {\n\t\toutput file /var/log/caddy/web-1-web.log\n\t}\n\ttls off\n}\n';

function goProject(template: string, extra = '') {
  const dir = project({ 'tpl/Caddyfile': template, 'hadesfile.yaml': '' });
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `hosts:
  web-1: { local: true }
targets:
  web: [web-1]
jobs:
  caddy:
    env:
      DOMAIN: { default: example.org }
      PORT: { default: "8080" }
      TLS: { default: "off" }
      API_TOKEN: { default: "tok sekrit/42" }
    actions:
      - template:
          src: tpl/Caddyfile
          dst: ${dir}/Caddyfile
          vars: { upstreams: [a, b] }
${extra}plans:
  release:
    steps:
      - { name: caddy, job: caddy, targets: web }
`,
  );
  return dir;
}

describe('Go templates through the CLI', () => {
  it('a Caddyfile-like template without extension renders byte-identically to Go', async () => {
    const dir = goProject(CADDYFILE);
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'Caddyfile'), 'utf8')).toBe(RENDERED);
  });

  it('an undefined key is exit 2 with the template file:line:col and a hint', async () => {
    const dir = goProject('{{.Env.DOMAIN}} {\n\troot * {{ .Env.WEBROOT }}\n}\n');
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `template for host "web-1": ${join(dir, 'tpl/Caddyfile')}:2:12: map has no entry for key "WEBROOT" (.Env.WEBROOT)`,
    );
    expect(r.stderr).toMatch(/hadesfile\.yaml:\d+:\d+: error: /);
    expect(r.stderr).toContain("hint: every key a Go template reads must exist (as with Go's missingkey=error)");
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a template mixing Go and nunjucks is an error with a hint; syntax: go makes the {% literal', async () => {
    const mixed = '{{.Env.DOMAIN}} {\n\trespond "{% raw %}"\n}\n';
    const dir = goProject(mixed);
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `template ${join(dir, 'tpl/Caddyfile')}:2:11: the template mixes Go text/template ({{.Env.DOMAIN}}) and nunjucks ({%) syntax`,
    );
    expect(r.stderr).toContain(
      'hint: write it in one syntax; if the other is meant as literal text, say which with syntax: go or syntax: nunjucks on the action',
    );

    const hf = join(dir, 'hadesfile.yaml');
    writeFileSync(hf, readFileSync(hf, 'utf8').replace('src: tpl/Caddyfile', 'src: tpl/Caddyfile\n          syntax: go'));
    const r2 = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r2.stderr).not.toContain('error');
    expect(r2.code).toBe(0);
    expect(readFileSync(join(dir, 'Caddyfile'), 'utf8')).toBe('example.org {\n\trespond "{% raw %}"\n}\n');
  });

  it('a bad syntax: value is a schema error at file:line:col', async () => {
    const dir = goProject(CADDYFILE);
    const hf = join(dir, 'hadesfile.yaml');
    writeFileSync(hf, readFileSync(hf, 'utf8').replace('src: tpl/Caddyfile', 'src: tpl/Caddyfile\n          syntax: jinja'));
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hadesfile\.yaml:\d+:\d+: error: .*syntax/);
  });

  it('a render that read a secret is hidden in the dry-run, even when a function changed the value', async () => {
    const dir = goProject('token={{ .Env.API_TOKEN | urlquery }}\n');
    const r = await runCli(['plan', 'release', '--dry-run'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('content hidden: uses secret API_TOKEN');
    expect(r.stdout).not.toContain('sekrit');
  });
});
