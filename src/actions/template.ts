/**
 * `template: {src, dst, mode (0644), owner?, group?, vars?, syntax?}` — a template rendered at
 * plan time, per host: nunjucks (Jinja-like) with context `env`, `host` {name, addr}, `target`,
 * `plan`, `step` and `vars`, or Go text/template (./gotemplate.ts) with `.Env`, `.Host`,
 * `.Target`, `.Vars`, told apart from the template itself unless `syntax` says which.
 * Outputting an undefined variable is an error. Delivered like copy: atomic, skipped when identical.
 */
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import type { Environment } from 'nunjucks';
import type { FileEntry } from './deliver.js';
import { deliverFile, describeFile, planFileEntry, sha256Hex } from './deliver.js';
import { absolutePath, FILE_ATTRS_SCHEMA, modeField, ownership } from './fields.js';
import { executeGoTemplate, type GoTemplate, GoStruct, GoTemplateError, type GoValue, parseGoTemplate } from './gotemplate.js';
import { detectSyntax, lineCol, type Syntax } from './template-syntax.js';
import { inspectFile } from './inspect.js';
import type { ActionModule, PlanContext } from './types.js';

interface TemplateSpec {
  src: string;
  dst: string;
  mode?: unknown;
  owner?: string;
  group?: string;
  vars?: Record<string, unknown>;
  syntax?: Syntax;
}

let nunjucksLib: typeof import('nunjucks') | undefined;
let nunjucksEnv: Environment | undefined;
function engine(): { lib: typeof import('nunjucks'); env: Environment } {
  if (!nunjucksLib || !nunjucksEnv) {
    // Loaded on first use: `hades validate` never pays for it.
    nunjucksLib = createRequire(import.meta.url)('nunjucks') as typeof import('nunjucks');
    nunjucksEnv = new nunjucksLib.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: true, lstripBlocks: true });
  }
  return { lib: nunjucksLib, env: nunjucksEnv };
}

function expandDeep(ctx: PlanContext, v: unknown): unknown {
  if (typeof v === 'string') return ctx.expand(v, 'vars');
  if (Array.isArray(v)) return v.map((x) => expandDeep(ctx, x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expandDeep(ctx, x)]));
  return v;
}

/**
 * Compiled templates by (path, text): a step renders the same template for every host, and
 * compiling is most of the cost (2,000 hosts: ~0.3 s of compiling once per host). A compile
 * error is cached too, so it is reported the same way for every host.
 */
const compiled = new Map<string, { template: import('nunjucks').Template } | { error: unknown }>();

function compileTemplate(text: string, path: string): import('nunjucks').Template {
  const key = `${path}\0${text}`;
  let c = compiled.get(key);
  if (!c) {
    try {
      const { lib, env } = engine();
      c = { template: new lib.Template(text, env, path, true) };
    } catch (error) {
      c = { error };
    }
    compiled.set(key, c);
  }
  if ('error' in c) throw c.error;
  return c.template;
}

/**
 * The env as a template sees it, recording which vars the render reads (a lookup, or every
 * var when it iterates or dumps the map): whether a render used a secret is then known
 * without guessing from its output.
 */
function recordingEnv(env: Record<string, string>, used: Set<string>): Record<string, string> {
  return new Proxy(env, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && Object.hasOwn(target, prop)) used.add(prop);
      return Reflect.get(target, prop, receiver);
    },
    ownKeys(target) {
      for (const k of Object.keys(target)) used.add(k);
      return Reflect.ownKeys(target);
    },
  });
}

/** Every `${NAME}` a vars value refers to (its value lands in the render, too). */
function varsRefs(v: unknown, used: Set<string>): void {
  if (typeof v === 'string') for (const m of v.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) used.add(m[1]!);
  else if (Array.isArray(v)) for (const x of v) varsRefs(x, used);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) varsRefs(x, used);
}

/** Renders a template; on error returns a message with the template's file:line:col. */
export function renderTemplate(text: string, path: string, context: Record<string, unknown>): { content: string } | { error: string } {
  try {
    return { content: compileTemplate(text, path).render(context) };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /\[Line (\d+), Column (\d+)\]\s*(?:\n\s*)?([\s\S]*)$/.exec(msg);
    if (m) return { error: `${path}:${m[1]}:${m[2]}: ${m[3]!.replace(/^\s*(Template render error:)?\s*/, '').trim()}` };
    return {
      error: `${path}: ${msg
        .replace(/^\s*\(.*?\)\s*/, '')
        .replace(/\s+/g, ' ')
        .trim()}`,
    };
  }
}

const reportedSyntax = new WeakMap<object, Set<string>>();
const goParsed = new Map<string, { tpl: GoTemplate } | { error: unknown }>();

/** Renders a Go template (parsed once per text, like nunjucks); on error a message with file:line:col. */
export function renderGoTemplate(text: string, path: string, data: GoValue): { content: string } | { error: string; missingKey: boolean } {
  const key = `${path}\0${text}`;
  let c = goParsed.get(key);
  if (!c) {
    try {
      c = { tpl: parseGoTemplate(text) };
    } catch (error) {
      c = { error };
    }
    goParsed.set(key, c);
  }
  try {
    if ('error' in c) throw c.error;
    return { content: executeGoTemplate(c.tpl, data) };
  } catch (e) {
    if (!(e instanceof GoTemplateError)) throw e;
    const { line, col } = lineCol(text, e.offset);
    return { error: `${path}:${line}:${col}: ${e.message}`, missingKey: /has no entry for key/.test(e.message) };
  }
}

/** `vars` as Go data: strings, integers, booleans, lists and maps (what prints the same in Go). */
function goVars(v: unknown, path: string, bad: string[]): GoValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v))) return v;
  if (Array.isArray(v)) return v.map((x, i) => goVars(x, `${path}[${i}]`, bad));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, goVars(x, `${path}.${k}`, bad)]));
  bad.push(path);
  return '';
}

export const templateAction: ActionModule<FileEntry> = {
  kind: 'template',
  retryable: true,
  schema: {
    title: 'template',
    description: "Render a local template (src, relative to this file) with the step's env and vars, and write it to the host.",
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dst'],
    properties: {
      src: {
        description: 'Local template file, relative to this file.',
        type: 'string',
        minLength: 1,
      },
      dst: {
        description: 'Absolute destination path on the host.',
        type: 'string',
        minLength: 1,
      },
      ...FILE_ATTRS_SCHEMA,
      vars: {
        description: 'Extra template variables.',
        type: 'object',
      },
      syntax: {
        description: "The template's syntax; by default told from the template itself.",
        enum: ['go', 'nunjucks'],
      },
    },
  },
  plan(spec, ctx) {
    const s = spec as TemplateSpec;
    const dst = absolutePath(ctx, s.dst, 'dst');
    const mode = modeField(ctx, s.mode, 0o644);
    const own = ownership(ctx, s);
    if (typeof s.src !== 'string') {
      ctx.problems.add('template: needs src', ctx.action.pos);
      return undefined;
    }
    const srcRaw = ctx.expand(s.src, 'src');
    const src = isAbsolute(srcRaw) ? srcRaw : resolve(ctx.job.baseDir, srcRaw);
    if (dst === undefined) return undefined;
    const fact = ctx.sources.get(src);
    if (!fact) {
      ctx.sources.need(src);
      return undefined;
    }
    if (fact.error || fact.text === undefined) {
      ctx.problems.add(`template.src: ${fact.error ?? `${src} is not a readable text file`}`, ctx.fieldPos('src'));
      return undefined;
    }
    const used = new Set<string>();
    varsRefs(s.vars, used);
    let syntax = s.syntax;
    if (syntax === undefined) {
      const d = detectSyntax(fact.text);
      if ('error' in d) {
        // The same for every host: said once per plan.
        const said = reportedSyntax.get(ctx.problems) ?? new Set<string>();
        reportedSyntax.set(ctx.problems, said);
        const { line, col } = lineCol(fact.text, d.offset);
        const message = `template ${src}:${line}:${col}: ${d.error}`;
        if (!said.has(message)) ctx.problems.add(message, ctx.fieldPos('src'), d.hint);
        said.add(message);
        return undefined;
      }
      syntax = d.syntax;
    }
    let r: { content: string } | { error: string; missingKey?: boolean };
    if (syntax === 'go') {
      const bad: string[] = [];
      const vars = goVars(expandDeep(ctx, s.vars ?? {}), 'vars', bad);
      if (bad.length) {
        ctx.problems.add(
          `template.vars: ${bad.join(', ')}: a Go template takes strings, integers, booleans, lists and maps`,
          ctx.fieldPos('vars'),
        );
        return undefined;
      }
      const data = new GoStruct({ Env: recordingEnv(ctx.env, used), Host: ctx.host.name, Target: ctx.targets.join(','), Vars: vars });
      r = renderGoTemplate(fact.text, src, data);
      if ('error' in r) {
        const hint = r.missingKey
          ? "every key a Go template reads must exist (as with Go's missingkey=error): declare the variable in the job's env, with a default if it is optional"
          : 'Hades renders a subset of Go text/template exactly as Go does (see "Go templates" in the README); anything else is refused';
        ctx.problems.add(`template for host "${ctx.host.name}": ${r.error}`, ctx.fieldPos('src'), hint);
        return undefined;
      }
    } else r = renderTemplate(fact.text, src, nunjucksContext(ctx, s, used));
    if (!('error' in r)) return deliverRendered(ctx, r.content, src, used, dst, mode, own);
    ctx.problems.add(
      `template for host "${ctx.host.name}": ${r.error}`,
      ctx.fieldPos('src'),
      'every variable a template prints must be defined (use {% if x is defined %} or the default filter)',
    );
    return undefined;
  },
  describe: describeFile,
  run: deliverFile,
  inspect: inspectFile,
};

function nunjucksContext(ctx: PlanContext, s: TemplateSpec, used: Set<string>): Record<string, unknown> {
  return {
    env: recordingEnv(ctx.env, used),
    host: { name: ctx.host.name, addr: ctx.host.addr },
    target: ctx.targets.join(','),
    targets: ctx.targets,
    plan: ctx.plan,
    step: ctx.step.name,
    vars: expandDeep(ctx, s.vars ?? {}),
  };
}

function deliverRendered(
  ctx: PlanContext,
  content: string,
  src: string,
  used: Set<string>,
  dst: string,
  mode: number,
  own: ReturnType<typeof ownership>,
): FileEntry | undefined {
  return planFileEntry(
    ctx,
    'template',
    {
      type: 'inline',
      content,
      sha256: sha256Hex(content),
      size: Buffer.byteLength(content),
      origin: `template ${src}`,
      uses: [...used].sort(),
    },
    dst,
    mode,
    own,
    `template ${dst}`,
  );
}
