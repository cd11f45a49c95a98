/**
 * `pull: {registry, name, tag | digest, to, mode (0644), owner?, group?, extract?}` — on the
 * step's hosts. The orchestrator resolves the tag and reads + verifies the payload once per
 * run; each host gets the bytes streamed over its existing connection into a temp file
 * beside `to`, verifies sha256, then chmod/chown and rename. Skipped (no bytes sent) when
 * `to` already has that digest and mode. Directory artifacts (and `extract: true` tars)
 * are checked entry by entry on the orchestrator first, then extracted into `to`.
 */
import { createReadStream } from 'node:fs';
import { octal } from '../shell/command.js';
import { dirCheckCommand, dirWriteCommand, tempPathFor } from '../shell/delivery.js';
import { deliverBytes, fileCommands } from './deliver.js';
import { execQuiet } from './exec.js';
import { metered } from './progress.js';
import { absolutePath, FILE_ATTRS_SCHEMA, modeField, ownership } from './fields.js';
import { ownText } from './mkdir.js';
import { describeViaHost, pullViaHost } from './pull-host.js';
import { digestEnv, refField, registryField } from './registry-fields.js';
import { type CheckChange, inspectArtifactDir, inspectFileTarget } from './inspect.js';
import { verifyField, verifyLine, type PlannedVerify } from './trust-fields.js';
import { formatPlatform, parsePlatform, platformFromUname } from '../registry/platform.js';
import { PlatformNeeded } from '../registry/types.js';
import { envScript } from '../shell/command.js';
import { platformProbeCommand } from '../shell/platform.js';
import { ActionFailure, type ActionModule, type ActionRuntime, type BaseEntry } from './types.js';

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export interface PullEntry extends BaseEntry {
  kind: 'pull';
  registry: string;
  name: string;
  tag?: string;
  digest?: string;
  /** A replay pinned this pull's tag to the digest the replayed run resolved it to. */
  pinnedTag?: string;
  to: string;
  mode: number;
  owner?: string;
  group?: string;
  /** Extract a tar (or tar.gz) file artifact into `to`; directory artifacts always extract. */
  extract: boolean;
  tmp: string;
  /** `via: host`: each host downloads the blob from the (oci) registry itself (pull-host.ts). */
  via?: 'host';

  /** `verify:` or the registry's `verify:`: refused unless signed by an allowed principal. */
  verify?: PlannedVerify;
  /** `platform:` for a multi-platform artifact; absent: the host's, detected at run time. */
  platform?: string;
}

interface PullSpec {
  registry: string;
  name: string;
  tag?: string;
  digest?: string;
  to: string;
  mode?: unknown;
  owner?: string;
  group?: string;
  extract?: boolean;
  via?: 'host' | 'orchestrator';

  verify?: unknown;
  platform?: string;
}

export const pullAction: ActionModule<PullEntry> = {
  kind: 'pull',
  retryable: true,
  check(c) {
    if (c.has('tag') && c.has('digest')) c.error('pull has both tag and digest', c.pos('digest'), 'pull one reference: a tag or a digest');
    else if (!c.has('tag') && !c.has('digest'))
      c.error('pull needs tag or digest', c.pos(), 'add tag: (e.g. ${VERSION}) or digest: sha256:...');
    const platform = c.value?.platform;
    if (typeof platform === 'string' && !platform.includes('$')) {
      const p = parsePlatform(platform);
      if (typeof p === 'string') c.error(p, c.pos('platform', 'value'), 'e.g. platform: linux/arm64 (or leave it out: the host platform)');
    }
    const digest = c.value?.digest;
    if (typeof digest === 'string' && !digest.includes('$') && !DIGEST.test(digest)) {
      c.error(
        `invalid digest ${JSON.stringify(digest)}`,
        c.pos('digest', 'value'),
        'a digest is sha256: followed by 64 lowercase hex digits',
      );
    }
  },
  schema: {
    title: 'pull',
    description: 'Fetch name:tag (or name@digest) from a registry and deliver it to the host, digest-verified.',
    type: 'object',
    additionalProperties: false,
    required: ['registry', 'name', 'to'],
    properties: {
      registry: {
        description: 'A registry name.',
        $ref: '#/definitions/refString',
      },
      name: {
        description: 'Artifact name in the registry.',
        $ref: '#/definitions/refString',
      },
      tag: {
        description: 'Tag to pull (or give digest).',
        $ref: '#/definitions/refString',
      },
      digest: {
        description: 'Manifest digest to pull (sha256:…), instead of a tag.',
        $ref: '#/definitions/refString',
      },
      to: {
        description: 'Absolute destination path on the host.',
        type: 'string',
        minLength: 1,
      },
      ...FILE_ATTRS_SCHEMA,
      extract: {
        description: 'Unpack a directory artifact into `to` (default: deliver as pushed).',
        type: 'boolean',
      },
      via: {
        description:
          'Who downloads the payload: orchestrator (default: read once, streamed to each host over SSH) or host (each host fetches the blob from the oci registry itself with curl or wget; the orchestrator sends commands only).',
        enum: ['orchestrator', 'host'],
      },

      verify: { $ref: '#/definitions/verifySignatures' },
      platform: {
        description: "For a multi-platform artifact: the platform to pull (os/arch[/variant]); default the host's (uname).",
        type: 'string',
        minLength: 1,
      },
    },
  },
  plan(spec, ctx) {
    const s = spec as PullSpec;
    const registry = registryField(ctx, s.registry, 'registry');
    const name = refField(ctx, s.name, 'name', 'name');
    const tag = refField(ctx, s.tag, 'tag', 'tag');
    const digest = refField(ctx, s.digest, 'digest', 'digest');
    const to = absolutePath(ctx, s.to, 'to');
    const mode = modeField(ctx, s.mode, 0o644);
    const own = ownership(ctx, s);
    let platform: string | undefined;
    if (s.platform !== undefined) {
      const p = parsePlatform(ctx.expand(s.platform, 'platform'));
      if (typeof p === 'string') ctx.problems.add(`pull.platform: ${p}`, ctx.fieldPos('platform'));
      else platform = formatPlatform(p);
    }
    if (!registry || !name || (!tag && !digest) || to === undefined) {
      if (s.tag === undefined && s.digest === undefined) ctx.problems.add('pull: needs tag or digest', ctx.action.pos);
      return undefined;
    }
    const verify = verifyField(ctx, s.verify, registry);
    return {
      kind: 'pull',
      index: ctx.action.index,
      title: ctx.action.name ?? `pull ${name}:${tag ?? digest} to ${to}`,
      ...(ctx.become ? { become: ctx.become } : {}),
      pos: ctx.action.pos,
      registry,
      name,
      ...(tag ? { tag } : {}),
      ...(digest ? { digest } : {}),
      to,
      mode,
      ...own,
      extract: s.extract === true,
      tmp: tempPathFor(to),
      ...(s.via === 'host' ? { via: 'host' as const } : {}),

      ...(verify ? { verify } : {}),
      ...(platform ? { platform } : {}),
    };
  },
  describe(e) {
    if (e.via === 'host') return describeViaHost(e);
    const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
    const sha = '<sha256 of the payload>';
    const own = { owner: e.owner, group: e.group };
    return [
      `${ref} from registry "${e.registry}" -> ${e.to} mode ${octal(e.mode)}${ownText(e)}${e.extract ? ' (extracted)' : ''}`,
      ...(e.verify ? [verifyLine(e.verify)] : []),
      ...(e.pinnedTag ? [`tag ${e.pinnedTag} pinned to this digest (the digest the replayed run got; the tag is not looked up)`] : []),
      e.platform
        ? `if ${ref} is multi-platform: platform ${e.platform}`
        : `if ${ref} is multi-platform: platform chosen per host at run time ($ ${platformProbeCommand()}, once per host)`,
      `resolved and verified once per run on the orchestrator; skip if ${e.to} already has the payload's sha256 and mode`,
      'a file payload (same sha256 but other mode/owner: fixed without sending bytes):',
      ...Object.values(fileCommands({ ...e, dst: e.to }, sha)).map((c) => `$ ${c}`),
      'a directory payload (or extract: true): entries checked on the orchestrator first, then',
      `$ ${dirCheckCommand(e.to, '<manifest digest>', e.become)}`,
      `$ ${dirWriteCommand(e.to, e.tmp, sha, '<manifest digest>', { gzip: true, stripComponents: 1, ...own }, e.become)}`,
    ];
  },
  async run(e, rt) {
    const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
    const what = `pull ${ref} to ${e.to}`;
    let desc: Awaited<ReturnType<typeof rt.artifacts.resolve>>;
    const r = { ...(e.tag ? { tag: e.tag } : {}), ...(e.digest ? { digest: e.digest } : {}) };
    try {
      desc = await rt.artifacts.resolve(e.registry, e.name, r, e.platform);
    } catch (err) {
      if (!(err instanceof PlatformNeeded)) throw new ActionFailure(`${what}: ${(err as Error).message}`);
      // A multi-platform artifact and no platform: the host's (detected once per host per run).
      const platform = await hostPlatform(rt, what);
      try {
        desc = await rt.artifacts.resolve(e.registry, e.name, r, platform);
      } catch (err2) {
        throw new ActionFailure(`${what}: host ${rt.host.host} is ${platform}: ${(err2 as Error).message}`);
      }
    }
    if (e.verify) {
      // Fail closed: no verifier, no delivery.
      if (!rt.artifacts.verifySignature) throw new ActionFailure(`${what}: this run cannot verify signatures; refusing to deliver`);
      try {
        await rt.artifacts.verifySignature(desc, ref, e.verify.allowedSigners);
      } catch (err) {
        throw new ActionFailure(`${what}: ${(err as Error).message} (nothing was sent to the host)`);
      }
    }
    // The tag's digest as the run saw it: for a multi-platform artifact the index (each host's
    // platform entry differs), so a replay pins the index and every host picks its platform again.
    rt.artifacts.record?.({
      registry: e.registry,
      name: e.name,
      tag: e.tag ?? e.pinnedTag,
      digest: desc.index?.digest ?? desc.manifestDigest,
      kind: 'pull',
    });
    // The payload is fetched and verified into the local cache (once per run) only when a
    // host needs its bytes: a host that already has them (sha256 checked on the host) costs
    // no registry read at all.
    const materialize = async (): Promise<string> => {
      try {
        return await rt.artifacts.materialize(desc);
      } catch (err) {
        throw new ActionFailure(`${what}: ${(err as Error).message}`);
      }
    };
    const sha = desc.layer.digest.replace(/^sha256:/, '');
    const env = {
      ...digestEnv(desc.manifestDigest, desc.layer.digest),
      ...(desc.index ? { HADES_ARTIFACT_INDEX_DIGEST: desc.index.digest, HADES_ARTIFACT_PLATFORM: desc.platform ?? '' } : {}),
    };
    const own = { owner: e.owner, group: e.group };
    if (e.via === 'host') return pullViaHost(e, rt, desc, what, env);

    if (!desc.layer.directory && !e.extract) {
      const how = await deliverBytes(rt, { ...e, dst: e.to }, what, sha, async () =>
        metered(rt, createReadStream(await materialize()), desc.layer.size),
      );
      if (how === 'unchanged') return { status: 'unchanged', detail: desc.manifestDigest, env };
      return {
        status: 'changed',
        detail:
          how === 'meta' ? `mode/owner fixed, no bytes sent, ${desc.manifestDigest}` : `${desc.layer.size} bytes, ${desc.manifestDigest}`,
        env,
      };
    }

    const local = await materialize();
    const archive = await rt.artifacts.inspectArchive(desc, local);
    if (archive.problems.length)
      throw new ActionFailure(
        `${what}: refusing to extract ${ref}: ${archive.problems.map((p) => p.message).join('; ')} (nothing was written on the host)`,
      );
    const check = await execQuiet(rt, dirCheckCommand(e.to, desc.manifestDigest, e.become, e.owner), what, e.become);
    if (check.stdout.trim() === 'unchanged') return { status: 'unchanged', detail: desc.manifestDigest, env };
    await execQuiet(
      rt,
      dirWriteCommand(
        e.to,
        e.tmp,
        sha,
        desc.manifestDigest,
        { gzip: archive.gzip, stripComponents: archive.stripComponents, ...own },
        e.become,
      ),
      what,
      e.become,
      {
        stdin: metered(rt, createReadStream(local), desc.layer.size),
      },
    );
    return { status: 'changed', detail: `extracted ${desc.layer.size} bytes, ${desc.manifestDigest}`, env };
  },
};

/**
 * `--check`: the tag is resolved (a registry read), then the host's `to` is probed read-only:
 * a file artifact by sha256 and mode/owner (no diff: artifacts are compared by digest), a
 * directory artifact by the `.hades-artifact` marker the delivery wrote.
 */
async function inspectPull(e: PullEntry, rt: Parameters<NonNullable<typeof pullAction.inspect>>[1]): Promise<CheckChange> {
  const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
  const what = `pull ${ref} to ${e.to}`;
  let desc: Awaited<ReturnType<typeof rt.artifacts.resolve>>;
  try {
    desc = await rt.artifacts.resolve(e.registry, e.name, { ...(e.tag ? { tag: e.tag } : {}), ...(e.digest ? { digest: e.digest } : {}) });
  } catch (err) {
    return {
      path: e.to,
      change: 'unknown',
      message: `${ref} from registry "${e.registry}" cannot be resolved now: ${(err as Error).message}`,
    };
  }
  if (!desc.layer.directory && !e.extract) {
    const c = await inspectFileTarget(rt, { ...e, dst: e.to }, what, desc.layer.digest.replace(/^sha256:/, ''));
    if (c.change === 'replace') c.noDiff = `artifact ${desc.manifestDigest}: compared by digest`;
    return c;
  }
  return inspectArtifactDir(rt, e, what, desc.manifestDigest);
}
pullAction.inspect = inspectPull;
/** The host's platform from `uname -s; uname -m` (run like a `run:` command), once per host per run. */
async function hostPlatform(rt: ActionRuntime, what: string): Promise<string> {
  const detect = async (): Promise<string> => {
    const res = await execQuiet(rt, platformProbeCommand(), `${what}: detect the platform of host ${rt.host.host}`, undefined, {
      stdin: envScript(rt.env),
    });
    const p = platformFromUname(res.stdout);
    if (typeof p === 'string') throw new ActionFailure(`${what}: host ${rt.host.host}: ${p}`);
    return formatPlatform(p);
  };
  return rt.artifacts.hostPlatform ? rt.artifacts.hostPlatform(rt.host.host, detect) : detect();
}
