/** `copy: {src | artifact, dst, mode (0644), owner?, group?}` — atomic, skipped when identical. */
import { isAbsolute, resolve } from 'node:path';
import type { FileEntry } from './deliver.js';
import { deliverFile, describeFile, planFileEntry } from './deliver.js';
import { absolutePath, checkArtifactRef, FILE_ATTRS_SCHEMA, modeField, ownership } from './fields.js';
import type { ActionModule, PlanContext } from './types.js';

interface CopySpec {
  src?: string;
  artifact?: string;
  dst: string;
  mode?: unknown;
  owner?: string;
  group?: string;
}

/** The orchestrator-side file a copy reads: `src` relative to the declaring file, or a job artifact. */
export function localSource(ctx: PlanContext, s: { src?: string; artifact?: string }): { path: string; field: string } | undefined {
  if (s.artifact !== undefined) {
    const name = ctx.expand(String(s.artifact), 'artifact');
    const art = ctx.job.artifacts[name];
    if (!art) {
      const known = Object.keys(ctx.job.artifacts);
      ctx.problems.add(`${ctx.action.kind}.artifact: job "${ctx.job.name}" has no artifact "${name}"`, ctx.fieldPos('artifact'), known.length ? `declared artifacts: ${known.join(', ')}` : 'declare it under the job\'s artifacts:');
      return undefined;
    }
    return { path: resolve(ctx.job.baseDir, ctx.expand(art.path, 'artifact')), field: 'artifact' };
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
      c.error('copy has both src and artifact', c.pos('artifact'), "copy takes one source: a local file (src) or one of the job's artifacts (artifact)");
    } else if (!c.has('src') && !c.has('artifact')) {
      c.error('copy needs src or artifact', c.pos(), "add src: (a file relative to this hadesfile) or artifact: (one of the job's artifacts)");
    }
    checkArtifactRef(c);
  },
  schema: {
    title: "copy",
    description: "Copy a local file (src, relative to this file) or a job artifact to the host.",
    type: "object",
    additionalProperties: false,
    required: [
      "dst"
    ],
    properties: {
      src: {
        description: "Local file, relative to this file.",
        type: "string",
        minLength: 1
      },
      artifact: {
        description: "Name of one of the job's artifacts.",
        type: "string",
        minLength: 1
      },
      dst: {
        description: "Absolute destination path on the host.",
        type: "string",
        minLength: 1
      },
      ...FILE_ATTRS_SCHEMA
    }
  },
  plan(spec, ctx) {
    const s = spec as CopySpec;
    const src = localSource(ctx, s);
    const dst = absolutePath(ctx, s.dst, 'dst');
    const mode = modeField(ctx, s.mode, 0o644);
    const own = ownership(ctx, s);
    if (!src || dst === undefined) return undefined;
    return planFileEntry(ctx, 'copy', { type: 'file', path: src.path }, dst, mode, own, `copy ${dst}`);
  },
  describe: describeFile,
  run: deliverFile,
};
