/**
 * `promote: {from, to, name, tag, as_tag?}` — copies an artifact between registries by
 * digest (the destination's digest equals the source's), verified on arrival. Idempotent;
 * refused when the destination tag holds other content. Runs on the orchestrator.
 */
import { ActionFailure, type ActionModule, type BaseEntry } from './types.js';
import { digestEnv, ORCHESTRATOR_NO_TIMEOUT, refField, registryField } from './registry-fields.js';
import { meteredRegistry } from './progress.js';

import { copySignatures, signArtifact } from '../registry/trust.js';
import { promoteArtifact } from '../registry/index-copy.js';
import { PlatformNeeded } from '../registry/types.js';
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
      const from = rt.artifacts.registry(e.from);
      const target = rt.artifacts.registry(e.to);
      if (e.digest) {
        const now = await rt.artifacts.resolve(e.from, e.name, { tag: e.tag }).then(
          (d) => d.manifestDigest,
          (err: unknown) => {
            if (err instanceof PlatformNeeded) return err.indexDigest; // a multi-platform artifact: its index
            throw err;
          },
        );
        if (now !== e.digest)
          throw new Error(
            `tag ${e.tag} moved since the replayed run: it was ${e.digest}, it is now ${now}; refusing to follow it (skip this step with --steps/--from-step)`,
          );
      }
      // A multi-platform artifact is copied as its index (same digest); each platform's manifest keeps its signatures.
      const res = await meteredRegistry(rt, undefined, () => promoteArtifact(from, target, e.name, e.tag, e.asTag));
      let copied = 0;
      let newSigs = 0;
      let existed = 0;
      let referrer: string | undefined;
      for (const m of res.manifests) {
        copied += await copySignatures(from, target, e.name, m);
        if (!e.sign) continue;
        const signed = await signArtifact(target, e.name, m, e.sign);
        if (signed.existed) existed++;
        else newSigs++;
        referrer = signed.referrer;
      }
      const added = copied + newSigs;
      const digest = res.digest;
      rt.artifacts.record?.({ registry: e.to, name: e.name, tag: e.asTag ?? e.tag, digest, kind: 'promote' });
      if (e.asTag) rt.artifacts.record?.({ registry: e.from, name: e.name, tag: e.tag, digest, kind: 'promote' });
      const signedText = !e.sign
        ? ''
        : res.index
          ? `; each platform's manifest signed (${newSigs} new)`
          : `; signed (${existed ? 'signature already attached' : `referrer ${referrer}`})`;
      const platforms = res.index ? ` (${res.index.platforms.map((p) => p.platform).join(', ')})` : '';
      return {
        status: res.unchanged && added === 0 ? 'unchanged' : 'changed',
        detail: `${e.name}:${e.asTag ?? e.tag} = ${digest}${platforms}${copied ? `; ${copied} signature(s) copied` : ''}${signedText}`,
        env: res.single
          ? digestEnv(digest, res.single.descriptor.layer.digest)
          : { HADES_ARTIFACT_DIGEST: digest, HADES_ARTIFACT_INDEX_DIGEST: digest },
      };
    } catch (err) {
      throw new ActionFailure(`promote ${e.name}:${e.tag} from "${e.from}" to "${e.to}": ${(err as Error).message}`);
    }
  },
};
