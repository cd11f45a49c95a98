/**
 * `push: {registry, artifact, name, tag, tags?, aliases?: semver, artifact_type?}` —
 * publishes a job artifact (a file or a directory on the orchestrator). Runs once per step
 * on the orchestrator. Same content under an existing tag → "unchanged"; different
 * content → refused (registries are immutable).
 */
import { ActionFailure, type ActionModule, type BaseEntry } from './types.js';
import { digestEnv, ORCHESTRATOR_NO_TIMEOUT, refField, registryField } from './registry-fields.js';
import { resolveArtifact } from './copy.js';
import { fileSize, meteredRegistry } from './progress.js';

import { signArtifact } from '../registry/trust.js';
import { SIGN_SCHEMA, signField, signLine, type PlannedSign } from './trust-fields.js';

export interface PushEntry extends BaseEntry {
  kind: 'push';
  registry: string;
  artifact: string; // the artifact's name
  path: string; // absolute, on the orchestrator
  /** Set when an earlier step's job declares the artifact: "declared by job build in step 1 (build)". */
  from?: string;
  name: string;
  tag: string;
  tags: string[]; // extra tags
  semverAliases: boolean;
  artifactType?: string;
  /** `sign:` or the registry's `sign_with:`: the pushed manifest is signed with this key. */
  sign?: PlannedSign;
}

interface PushSpec {
  registry: string;
  artifact: string;
  name: string;
  tag: string;
  tags?: string[];
  aliases?: string;
  artifact_type?: string;
  sign?: unknown;
}

export const pushAction: ActionModule<PushEntry> = {
  kind: 'push',
  retryable: true,
  noTimeout: ORCHESTRATOR_NO_TIMEOUT,
  schema: {
    title: 'push',
    description: "Publish one of the job's artifacts to a registry as name:tag (runs once, on the orchestrator).",
    type: 'object',
    additionalProperties: false,
    required: ['registry', 'artifact', 'name', 'tag'],
    properties: {
      registry: {
        description: 'A registry name.',
        $ref: '#/definitions/refString',
      },
      artifact: {
        description: 'Name of an artifact of the job, or of the job of an earlier step.',
        $ref: '#/definitions/refString',
      },
      name: {
        description: 'Artifact name in the registry.',
        $ref: '#/definitions/refString',
      },
      tag: {
        description: 'Tag (immutable once pushed).',
        $ref: '#/definitions/refString',
      },
      tags: {
        description: 'More tags for the same artifact.',
        type: 'array',
        items: {
          $ref: '#/definitions/refString',
        },
      },
      aliases: {
        description: 'semver: also move the vX and vX.Y (and latest) alias tags.',
        enum: ['semver'],
      },
      artifact_type: {
        description: "Overrides the registry's artifact type.",
        type: 'string',
        minLength: 1,
      },
      ...SIGN_SCHEMA,
    },
  },
  runsOnOrchestrator: true,
  plan(spec, ctx) {
    const s = spec as PushSpec;
    const registry = registryField(ctx, s.registry, 'registry');
    const art = resolveArtifact(ctx, s.artifact);
    const name = refField(ctx, s.name, 'name', 'name');
    const tag = refField(ctx, s.tag, 'tag', 'tag');
    const tags = (s.tags ?? []).map((t, i) => refField(ctx, t, `tags`, 'tag') ?? `#${i}`);
    if (!registry || !art || !name || !tag) return undefined;
    const sign = signField(ctx, s.sign, registry);
    return {
      kind: 'push',
      index: ctx.action.index,
      title: ctx.action.name ?? `push ${name}:${tag} to ${registry}`,
      pos: ctx.action.pos,
      registry,
      artifact: art.name,
      path: art.path,
      ...(art.from ? { from: art.from } : {}),
      name,
      tag,
      tags,
      semverAliases: s.aliases === 'semver',
      ...(s.artifact_type ? { artifactType: ctx.expand(s.artifact_type, 'artifact_type') } : {}),
      ...(sign ? { sign } : {}),
    };
  },
  describe(e) {
    const extra = [...e.tags.map((t) => `${e.name}:${t}`), ...(e.semverAliases ? ['semver aliases (vX.Y, vX, latest)'] : [])];
    return [
      `publish ${e.path}${e.from ? ` (artifact ${e.artifact}, ${e.from})` : ''} as ${e.name}:${e.tag} in registry "${e.registry}"${extra.length ? ` (+ ${extra.join(', ')})` : ''}`,
      'unchanged if the tag already holds these bytes; refused if it holds others (immutable)',
      ...(e.sign ? [signLine(e.sign, `${e.name}:${e.tag}`)] : []),
      'sets HADES_ARTIFACT_DIGEST (manifest) and HADES_ARTIFACT_SHA256 (payload) for the next actions',
    ];
  },
  async run(e, rt) {
    const reg = rt.artifacts.registry(e.registry);
    try {
      const res = await meteredRegistry(rt, await fileSize(e.path), () =>
        reg.push(
          e.name,
          e.tag,
          { path: e.path, ...(e.artifactType ? { artifactType: e.artifactType } : {}) },
          { extraTags: e.tags, semverAliases: e.semverAliases },
        ),
      );
      const d = res.descriptor;
      const signed = e.sign ? await signArtifact(reg, e.name, d.manifestDigest, e.sign) : undefined;
      const moved = (res.aliases ?? []).filter((a) => a.moved).map((a) => a.tag);
      for (const tag of [e.tag, ...e.tags, ...moved])
        rt.artifacts.record?.({ registry: e.registry, name: e.name, tag, digest: d.manifestDigest, kind: 'push' });
      return {
        status: res.unchanged && !(signed && !signed.existed) ? 'unchanged' : 'changed',
        detail: `${e.name}:${e.tag} = ${d.manifestDigest}${moved.length ? `; aliases ${moved.join(', ')}` : ''}${signed ? `; signed (${signed.existed ? 'signature already attached' : `referrer ${signed.referrer}`})` : ''}`,
        env: digestEnv(d.manifestDigest, d.layer.digest),
      };
    } catch (err) {
      throw new ActionFailure(`push ${e.name}:${e.tag} to "${e.registry}": ${(err as Error).message}`);
    }
  },
};
