/** `copy: {src | artifact, dst, mode (0644), owner?, group?}` — atomic, skipped when identical. */
import { isAbsolute, resolve } from 'node:path';
import type { FileEntry } from './deliver.js';
import { deliverFile, describeFile, planFileEntry } from './deliver.js';
import { declaredBy, meta, type VisibleArtifact } from '../config/artifact-refs.js';
import type { ArtifactSpec } from '../config/model.js';
import { absolutePath, FILE_ATTRS_SCHEMA, modeField, ownership } from './fields.js';
import { inspectFile } from './inspect.js';
import type { ActionModule, PlanContext } from './types.js';

interface CopySpec {
  src?: string;
  artifact?: string;
  dst: string;
  mode?: unknown;
  owner?: string;
  group?: string;
}

/**
 * An artifact by name: the job's own, else one declared by the job of an earlier step of the
 * plan (ctx.artifacts, filled by the planner). Its path is resolved; `from` says where it was
 * declared when that is another step ("declared by job build in step 1 (build)").
 */
export interface ResolvedArtifact {
  name: string;
  path: string;
  from?: string;
  platforms?: { platform: string; path: string }[];
  config?: ArtifactSpec['config'];
  configMediaType?: string;
}

export function resolveArtifact(ctx: PlanContext, raw: unknown): ResolvedArtifact | undefined {
  const name = ctx.expand(String(raw ?? ''), 'artifact');
  const own = ctx.job.artifacts[name];
  const art: VisibleArtifact | undefined = own
    ? { ...meta(own), path: own.path, job: ctx.job.name, baseDir: ctx.job.baseDir }
    : ctx.artifacts?.get(name);
  if (!art) {
    const known = [...new Set([...Object.keys(ctx.job.artifacts), ...(ctx.artifacts?.keys() ?? [])])];
    ctx.problems.add(
      `${ctx.action.kind}.artifact: "${name}" is not declared by job "${ctx.job.name}" nor by any earlier step of plan "${ctx.plan}"`,
      ctx.fieldPos('artifact'),
      known.length
        ? `artifacts this step can use: ${known.join(', ')}`
        : "declare it under the job's artifacts: {NAME: {path}}, or under those of a job that runs in an earlier step",
    );
    return undefined;
  }
  const at = (p: string) => resolve(art.baseDir, ctx.expand(p, 'artifact'));
  return {
    name,
    path: art.platforms ? '' : at(art.path),
    ...(art.step ? { from: declaredBy(art) } : {}),
    ...(art.platforms ? { platforms: art.platforms.map((p) => ({ platform: p.platform, path: at(p.path) })) } : {}),
    ...(art.config ? { config: art.config } : {}),
    ...(art.configMediaType ? { configMediaType: art.configMediaType } : {}),
  };
}

/** The orchestrator-side file a copy reads: `src` relative to the declaring file, or an artifact (see resolveArtifact). */
export function localSource(
  ctx: PlanContext,
  s: { src?: string; artifact?: string },
): { path: string; field: string; from?: string } | undefined {
  if (s.artifact !== undefined) {
    const art = resolveArtifact(ctx, s.artifact);
    if (art?.platforms) {
      ctx.problems.add(
        `${ctx.action.kind}.artifact: "${art.name}" is a multi-platform artifact (${art.platforms.map((p) => p.platform).join(', ')}); ${ctx.action.kind} delivers one file`,
        ctx.fieldPos('artifact'),
        'push it to a registry and pull it (each host gets its platform), or declare a single-path artifact',
      );
      return undefined;
    }
    return art ? { path: art.path, field: 'artifact', ...(art.from ? { from: `artifact ${art.name}, ${art.from}` } : {}) } : undefined;
  }
  if (typeof s.src !== 'string') {
    ctx.problems.add(`${ctx.action.kind}: needs src (or artifact)`, ctx.action.pos);
    return undefined;
  }
  const src = ctx.expand(s.src, 'src');
  return { path: isAbsolute(src) ? src : resolve(ctx.job.baseDir, src), field: 'src' };
}

export const copyAction: ActionModule<FileEntry> = {
  kind: 'copy',
  retryable: true,
  check(c) {
    if (c.has('src') && c.has('artifact')) {
      c.error(
        'copy has both src and artifact',
        c.pos('artifact'),
        "copy takes one source: a local file (src) or one of the job's artifacts (artifact)",
      );
    } else if (!c.has('src') && !c.has('artifact')) {
      c.error(
        'copy needs src or artifact',
        c.pos(),
        "add src: (a file relative to this hadesfile) or artifact: (one of the job's artifacts)",
      );
    }
  },
  schema: {
    title: 'copy',
    description: "Copy a local file (src, relative to this file) or an artifact (the job's, or an earlier step's) to the host.",
    type: 'object',
    additionalProperties: false,
    required: ['dst'],
    properties: {
      src: {
        description: 'Local file, relative to this file.',
        type: 'string',
        minLength: 1,
      },
      artifact: {
        description: 'Name of an artifact of the job, or of the job of an earlier step.',
        type: 'string',
        minLength: 1,
      },
      dst: {
        description: 'Absolute destination path on the host.',
        type: 'string',
        minLength: 1,
      },
      ...FILE_ATTRS_SCHEMA,
    },
  },
  plan(spec, ctx) {
    const s = spec as CopySpec;
    const src = localSource(ctx, s);
    const dst = absolutePath(ctx, s.dst, 'dst');
    const mode = modeField(ctx, s.mode, 0o644);
    const own = ownership(ctx, s);
    if (!src || dst === undefined) return undefined;
    return planFileEntry(
      ctx,
      'copy',
      { type: 'file', path: src.path, ...(src.from ? { from: src.from } : {}) },
      dst,
      mode,
      own,
      `copy ${dst}`,
    );
  },
  describe: describeFile,
  run: deliverFile,
  inspect: inspectFile,
};
