/**
 * `push: {registry, artifact, name, tag, tags?, aliases?: semver, artifact_type?}` —
 * publishes a job artifact (a file or a directory on the orchestrator). Runs once per step
 * on the orchestrator. Same content under an existing tag → "unchanged"; different
 * content → refused (registries are immutable).
 */
import { createHash } from 'node:crypto';
import { annotationKeyProblem } from '../registry/push-rules.js';
import { DEFAULT_CONFIG_MEDIA_TYPE, type IndexPushSource, type Registry } from '../registry/types.js';
import { ActionFailure, type ActionModule, type ActionOutcome, type ActionRuntime, type BaseEntry } from './types.js';
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
  /** A multi-platform artifact: one payload per platform, pushed as an OCI image index (path is then ''). */
  platforms?: { platform: string; path: string }[];
  /** `annotations:` (values expanded). */
  annotations?: Record<string, string>;
  /** The artifact's `config:` (JSON text, read when the hadesfile was loaded) and its media type. */
  config?: { text: string; sha256: string; mediaType: string; source: string };
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
  annotations?: Record<string, unknown>;
}

export const pushAction: ActionModule<PushEntry> = {
  kind: 'push',
  retryable: true,
  noTimeout: ORCHESTRATOR_NO_TIMEOUT,
  check(c) {
    const a = c.value?.annotations;
    if (a && typeof a === 'object' && !Array.isArray(a))
      for (const k of Object.keys(a)) {
        const problem = annotationKeyProblem(k);
        if (problem)
          c.error(
            problem,
            c.pos('annotations'),
            /set by Hades/.test(problem)
              ? 'Hades sets created and title itself; choose another key'
              : 'e.g. org.opencontainers.image.source',
          );
      }
  },
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
      annotations: {
        description: 'Manifest annotations (key → value; values expand ${VAR}). created and title are set by Hades.',
        type: 'object',
        additionalProperties: {
          type: 'string',
        },
      },
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
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.annotations ?? {})) {
      annotations[k] = ctx.expand(String(v), `annotations`);
      // Annotations live in the manifest: anyone who can pull reads them (and a digest never hides them).
      const why = ctx.secretIn?.(String(v), annotations[k]);
      if (why)
        ctx.problems.add(
          `push.annotations.${k}: ${why}: annotations are stored in the registry, readable by anyone who can pull`,
          ctx.fieldPos(`annotations.${k}`),
          'put no secret in an annotation (e.g. a build URL without its token), or drop the annotation',
        );
    }
    const secretConfig = art?.config ? ctx.secretIn?.(undefined, art.config.data.toString('utf8')) : undefined;
    if (secretConfig)
      ctx.problems.add(
        `push: the config of artifact "${art!.name}" ${secretConfig}: the config blob is stored in the registry, readable by anyone who can pull`,
        art!.config!.pos ?? ctx.fieldPos('artifact'),
        'remove the secret from the config (the registry stores the config blob as written)',
      );
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
      ...(art.platforms ? { platforms: art.platforms } : {}),
      ...(Object.keys(annotations).length ? { annotations } : {}),
      ...(art.config
        ? {
            config: {
              text: art.config.data.toString('utf8'),
              sha256: createHash('sha256').update(art.config.data).digest('hex'),
              mediaType: art.configMediaType ?? DEFAULT_CONFIG_MEDIA_TYPE,
              source: art.config.source,
            },
          }
        : {}),
    };
  },
  describe(e) {
    const extra = [...e.tags.map((t) => `${e.name}:${t}`), ...(e.semverAliases ? ['semver aliases (vX.Y, vX, latest)'] : [])];
    const what = e.platforms ? `artifact ${e.artifact} for ${e.platforms.length} platforms` : e.path;
    return [
      `publish ${what}${e.from ? ` (${e.platforms ? '' : `artifact ${e.artifact}, `}${e.from})` : ''} as ${e.name}:${e.tag} in registry "${e.registry}"${extra.length ? ` (+ ${extra.join(', ')})` : ''}`,
      ...(e.platforms ? ['an OCI image index of one manifest per platform:', ...e.platforms.map((p) => `  ${p.platform}: ${p.path}`)] : []),
      ...Object.entries(e.annotations ?? {}).map(([k, v]) => `annotation ${k}=${v}`),
      ...(e.config ? [`config blob ${e.config.mediaType}, sha256:${e.config.sha256} (${e.config.source})`] : []),
      'unchanged if the tag already holds these bytes; refused if it holds others (immutable)',
      ...(e.sign ? [signLine(e.sign, `${e.name}:${e.tag}`)] : []),
      e.platforms
        ? 'sets HADES_ARTIFACT_DIGEST and HADES_ARTIFACT_INDEX_DIGEST (the index) for the next actions'
        : 'sets HADES_ARTIFACT_DIGEST (manifest) and HADES_ARTIFACT_SHA256 (payload) for the next actions',
    ];
  },
  async run(e, rt) {
    const reg = rt.artifacts.registry(e.registry);
    const common = {
      ...(e.artifactType ? { artifactType: e.artifactType } : {}),
      ...(e.annotations ? { annotations: e.annotations } : {}),
      ...(e.config ? { config: { data: Buffer.from(e.config.text, 'utf8'), mediaType: e.config.mediaType } } : {}),
    };
    const opts = { extraTags: e.tags, semverAliases: e.semverAliases };
    if (e.platforms) return runIndexPush(e, rt, reg, common, opts);
    try {
      const res = await meteredRegistry(rt, await fileSize(e.path), () => reg.push(e.name, e.tag, { path: e.path, ...common }, opts));
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

/** A multi-platform push: the index is what the tags name (HADES_ARTIFACT_DIGEST = the index digest). */
async function runIndexPush(
  e: PushEntry,
  rt: ActionRuntime,
  reg: Registry,
  common: Omit<IndexPushSource, 'platforms'>,
  opts: { extraTags: string[]; semverAliases: boolean },
): Promise<ActionOutcome> {
  try {
    const res = await meteredRegistry(rt, undefined, () => reg.pushIndex!(e.name, e.tag, { ...common, platforms: e.platforms! }, opts));
    // Each platform's manifest is signed: that is the digest a host's pull verifies (the one it gets).
    let newSigs = 0;
    if (e.sign)
      for (const p of res.platforms) if (!(await signArtifact(reg, e.name, p.descriptor.manifestDigest, e.sign)).existed) newSigs++;
    const moved = (res.aliases ?? []).filter((a) => a.moved).map((a) => a.tag);
    for (const tag of [e.tag, ...e.tags, ...moved])
      rt.artifacts.record?.({ registry: e.registry, name: e.name, tag, digest: res.indexDigest, kind: 'push' });
    return {
      status: res.unchanged && newSigs === 0 ? 'unchanged' : 'changed',
      detail: `${e.name}:${e.tag} = ${res.indexDigest} (${res.platforms.map((p) => p.platform).join(', ')})${moved.length ? `; aliases ${moved.join(', ')}` : ''}${e.sign ? `; each platform's manifest signed (${newSigs} new)` : ''}`,
      env: { HADES_ARTIFACT_DIGEST: res.indexDigest, HADES_ARTIFACT_INDEX_DIGEST: res.indexDigest },
    };
  } catch (err) {
    throw new ActionFailure(`push ${e.name}:${e.tag} to "${e.registry}": ${(err as Error).message}`);
  }
}
