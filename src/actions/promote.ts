/**
 * `promote: {from, to, name, tag, as_tag?}` — copies an artifact between registries by
 * digest (the destination's digest equals the source's), verified on arrival. Idempotent;
 * refused when the destination tag holds other content. Runs on the orchestrator.
 */
import { ActionFailure, type ActionModule, type BaseEntry } from './types.js';
import { digestEnv, ORCHESTRATOR_NO_TIMEOUT, refField, registryField } from './registry-fields.js';
import { meteredRegistry } from './progress.js';

import { copySignatures, signArtifact } from '../registry/trust.js';
import { SIGN_SCHEMA, signField, signLine, type PlannedSign } from './trust-fields.js';

export interface PromoteEntry extends BaseEntry {
  kind: 'promote';
  from: string;
  to: string;
  name: string;
  tag: string;
  asTag?: string;
  /** A replay: the digest `tag` had in the replayed run; the copy is refused when the tag moved since. */
  digest?: string;
  /** `sign:` or the destination's `sign_with:`: the promoted manifest is signed in the destination too. */
  sign?: PlannedSign;
}

export const promoteAction: ActionModule<PromoteEntry> = {
  kind: 'promote',
  retryable: true,
  noTimeout: ORCHESTRATOR_NO_TIMEOUT,
  schema: {
    title: 'promote',
    description: 'Copy name:tag from one registry to another by digest (runs once, on the orchestrator).',
    type: 'object',
    additionalProperties: false,
    required: ['from', 'to', 'name', 'tag'],
    properties: {
      from: {
        description: 'Source registry name.',
        $ref: '#/definitions/refString',
      },
      to: {
        description: 'Destination registry name.',
        $ref: '#/definitions/refString',
      },
      name: {
        description: 'Artifact name.',
        $ref: '#/definitions/refString',
      },
      tag: {
        description: 'Tag to promote.',
        $ref: '#/definitions/refString',
      },
      as_tag: {
        description: 'Tag in the destination (default: the same tag).',
        $ref: '#/definitions/refString',
      },
      ...SIGN_SCHEMA,
    },
  },
  runsOnOrchestrator: true,
  plan(spec, ctx) {
    const s = spec as { from: string; to: string; name: string; tag: string; as_tag?: string; sign?: unknown };
    const from = registryField(ctx, s.from, 'from');
    const to = registryField(ctx, s.to, 'to');
    const name = refField(ctx, s.name, 'name', 'name');
    const tag = refField(ctx, s.tag, 'tag', 'tag');
    const asTag = refField(ctx, s.as_tag, 'as_tag', 'tag');
    if (!from || !to || !name || !tag) return undefined;
    const sign = signField(ctx, s.sign, to);
    return {
      kind: 'promote',
      index: ctx.action.index,
      title: ctx.action.name ?? `promote ${name}:${tag} ${from} → ${to}`,
      pos: ctx.action.pos,
      from,
      to,
      name,
      tag,
      ...(asTag ? { asTag } : {}),
      ...(sign ? { sign } : {}),
    };
  },
  describe(e) {
    return [
      `copy ${e.name}:${e.tag} from "${e.from}" to "${e.to}" as ${e.name}:${e.asTag ?? e.tag}, by digest, verified on arrival`,
      'its signatures (OCI referrers) are copied with it',
      ...(e.sign ? [signLine(e.sign, `${e.name}:${e.asTag ?? e.tag} in "${e.to}"`)] : []),
      ...(e.digest
        ? [
            `only if ${e.name}:${e.tag} in "${e.from}" is still ${e.digest} (the replayed run's digest; a moved tag is refused, not followed)`,
          ]
        : []),
    ];
  },
  async run(e, rt) {
    try {
      if (e.digest) {
        const now = await rt.artifacts.resolve(e.from, e.name, { tag: e.tag });
        if (now.manifestDigest !== e.digest)
          throw new Error(
            `tag ${e.tag} moved since the replayed run: it was ${e.digest}, it is now ${now.manifestDigest}; refusing to follow it (skip this step with --steps/--from-step)`,
          );
      }
      const res = await meteredRegistry(rt, undefined, () =>
        rt.artifacts.registry(e.from).copyTo(rt.artifacts.registry(e.to), e.name, e.tag, e.asTag),
      );
      const d = res.descriptor;
      const target = rt.artifacts.registry(e.to);
      const copied = await copySignatures(rt.artifacts.registry(e.from), target, e.name, d.manifestDigest);
      const signed = e.sign ? await signArtifact(target, e.name, d.manifestDigest, e.sign) : undefined;
      const added = copied + (signed && !signed.existed ? 1 : 0);
      rt.artifacts.record?.({ registry: e.to, name: e.name, tag: e.asTag ?? e.tag, digest: d.manifestDigest, kind: 'promote' });
      if (e.asTag) rt.artifacts.record?.({ registry: e.from, name: e.name, tag: e.tag, digest: d.manifestDigest, kind: 'promote' });
      return {
        status: res.unchanged && added === 0 ? 'unchanged' : 'changed',
        detail: `${e.name}:${e.asTag ?? e.tag} = ${d.manifestDigest}${copied ? `; ${copied} signature(s) copied` : ''}${signed ? `; signed (${signed.existed ? 'signature already attached' : `referrer ${signed.referrer}`})` : ''}`,
        env: digestEnv(d.manifestDigest, d.layer.digest),
      };
    } catch (err) {
      throw new ActionFailure(`promote ${e.name}:${e.tag} from "${e.from}" to "${e.to}": ${(err as Error).message}`);
    }
  },
};
