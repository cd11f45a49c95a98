/**
 * `gpg: {src, path, mode (0644), owner?, group?, dearmor?, fingerprint?, sha256?, timeout (30s)}`
 * — an OpenPGP public key (e.g. an apt repository's signing key) downloaded ONCE per run on
 * the orchestrator over https (see ./gpg-fetch.ts), checked (it must be an OpenPGP public
 * keyring; a `fingerprint:` / `sha256:` pin must match, else the action fails before
 * anything reaches a host), optionally dearmored on the orchestrator (the host needs no
 * gpg), then delivered like copy: atomic, skipped when identical, mode/owner, become.
 */
import type { ActionCheck } from '../config/action-kinds.js';
import { durationField, formatDuration } from '../config/duration.js';
import { octal } from '../shell/command.js';
import { tempPathFor } from '../shell/delivery.js';
import { deliverBytes, fileCommands, sha256Hex } from './deliver.js';
import { absolutePath, modeField, ownership, FILE_ATTRS_SCHEMA } from './fields.js';
import { DownloadError, downloadOnce, MAX_KEY_BYTES, MAX_REDIRECTS } from './gpg-fetch.js';
import { inspectKey, type KeyInfo, normalizeFingerprint, normalizeSha256, urlProblem } from './gpg-key.js';
import { ownText } from './mkdir.js';
import { ActionFailure, type ActionModule, type BaseEntry, type PlanContext } from './types.js';

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface GpgEntry extends BaseEntry {
  kind: 'gpg';
  src: string;
  dst: string;
  mode: number;
  owner?: string;
  group?: string;
  dearmor: boolean;
  /** Pinned primary-key fingerprints (uppercase hex): the download's primary keys must be exactly these. */
  fingerprints?: string[];
  /** Pinned sha256 (lowercase hex) of the bytes as downloaded. */
  sha256?: string;
  timeoutMs: number;
  tmp: string;
}

interface GpgSpec {
  src?: unknown;
  path?: unknown;
  mode?: unknown;
  owner?: string;
  group?: string;
  dearmor?: boolean;
  fingerprint?: unknown;
  sha256?: unknown;
  timeout?: unknown;
}

const URL_HINT =
  'keys are downloaded over https:// only (TLS 1.2 or newer, certificate verified); pin the key with fingerprint: if you doubt the server';
const FPR_HINT =
  'write the full fingerprint `gpg --with-colons --fingerprint` prints (40 hex digits for a v4 key, 64 for v6); spaces are allowed';
const SHA_HINT = 'sha256 pins the bytes as downloaded: 64 hex digits, e.g. the output of sha256sum';

const fprList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);
const hasVar = (v: unknown): boolean => typeof v === 'string' && v.includes('$');

function check(c: ActionCheck): void {
  const v = c.value ?? {};
  if (typeof v.src === 'string' && !hasVar(v.src)) {
    const p = urlProblem(v.src);
    if (p) c.error(`gpg.${p}`, c.pos('src', 'value'), URL_HINT);
  }
  if (c.has('fingerprint')) {
    for (const f of fprList(v.fingerprint)) {
      if (typeof f !== 'string' || hasVar(f)) continue;
      const r = normalizeFingerprint(f);
      if ('error' in r) c.error(`gpg.${r.error}`, c.pos('fingerprint', 'value'), FPR_HINT);
    }
  }
  if (typeof v.sha256 === 'string' && !hasVar(v.sha256)) {
    const r = normalizeSha256(v.sha256);
    if ('error' in r) c.error(`gpg.${r.error}`, c.pos('sha256', 'value'), SHA_HINT);
  }
}

function planPins(ctx: PlanContext, s: GpgSpec): { fingerprints?: string[]; sha256?: string } | undefined {
  const out: { fingerprints?: string[]; sha256?: string } = {};
  let ok = true;
  if (s.fingerprint !== undefined && s.fingerprint !== null) {
    const fprs: string[] = [];
    for (const f of fprList(s.fingerprint)) {
      const r = normalizeFingerprint(ctx.expand(String(f), 'fingerprint'));
      if ('error' in r) {
        ctx.problems.add(`gpg.${r.error}`, ctx.fieldPos('fingerprint'), FPR_HINT);
        ok = false;
      } else if (!fprs.includes(r.fingerprint)) fprs.push(r.fingerprint);
    }
    out.fingerprints = fprs;
  }
  if (s.sha256 !== undefined && s.sha256 !== null) {
    const r = normalizeSha256(ctx.expand(String(s.sha256), 'sha256'));
    if ('error' in r) {
      ctx.problems.add(`gpg.${r.error}`, ctx.fieldPos('sha256'), SHA_HINT);
      ok = false;
    } else out.sha256 = r.sha256;
  }
  return ok ? out : undefined;
}

function pinText(e: GpgEntry): string {
  const pins = [
    ...(e.fingerprints
      ? [`primary-key fingerprint${e.fingerprints.length > 1 ? 's' : ''} ${e.fingerprints.join(', ')} (exactly these primary keys)`]
      : []),
    ...(e.sha256 ? [`sha256 ${e.sha256} of the download`] : []),
  ];
  return pins.length
    ? `pinned: ${pins.join('; ')}; a mismatch fails the action before anything reaches a host`
    : 'not pinned: any OpenPGP public key served at that URL is accepted (add fingerprint: or sha256:)';
}

export const gpgAction: ActionModule<GpgEntry> = {
  kind: 'gpg',
  check,
  schema: {
    title: 'gpg',
    description:
      'Download an OpenPGP public key over https once per run on the orchestrator, verify it (optional fingerprint/sha256 pin), optionally dearmor it, and deliver it to the host like copy.',
    type: 'object',
    additionalProperties: false,
    required: ['src', 'path'],
    properties: {
      src: { description: 'https:// URL of the key (ASCII-armored or binary).', type: 'string', minLength: 1 },
      path: { description: 'Absolute destination path on the host.', type: 'string', minLength: 1 },
      ...FILE_ATTRS_SCHEMA,
      dearmor: { description: 'Convert ASCII armor to a binary keyring (as gpg --dearmor), on the orchestrator.', type: 'boolean' },
      fingerprint: {
        description: 'Pin: the primary-key fingerprint(s) the download must hold (exactly these primary keys).',
        type: ['string', 'array'],
        minLength: 1,
        minItems: 1,
        items: { type: 'string', minLength: 1 },
        'x-hint': 'quote the fingerprint: "E493 E0C2 …" (YAML reads 0x… and all-digit values as numbers)',
      },
      sha256: { description: 'Pin: the sha256 of the bytes as downloaded.', type: 'string', minLength: 1 },
      timeout: { description: 'Deadline for the download, redirects included (default 30s).', $ref: '#/definitions/duration' },
    },
  },
  plan(spec, ctx) {
    const s = (spec ?? {}) as GpgSpec;
    const dst = absolutePath(ctx, s.path, 'path');
    const mode = modeField(ctx, s.mode, 0o644);
    const own = ownership(ctx, s);
    const pins = planPins(ctx, s);
    let timeoutMs = DEFAULT_TIMEOUT_MS;
    if (s.timeout !== undefined && s.timeout !== null) {
      const ms = durationField(typeof s.timeout === 'number' ? s.timeout : ctx.expand(String(s.timeout), 'timeout'));
      if (ms === undefined || ms <= 0)
        ctx.problems.add(
          `gpg.timeout: invalid duration ${JSON.stringify(s.timeout)}`,
          ctx.fieldPos('timeout'),
          'write e.g. 30s, 2m or 500ms',
        );
      else timeoutMs = ms;
    }
    if (typeof s.src !== 'string') {
      ctx.problems.add('gpg: needs src (an https:// URL)', ctx.action.pos);
      return undefined;
    }
    const src = ctx.expand(s.src, 'src');
    const bad = urlProblem(src);
    if (bad) {
      ctx.problems.add(`gpg.${bad}`, ctx.fieldPos('src'), URL_HINT);
      return undefined;
    }
    if (dst === undefined || !pins) return undefined;
    return {
      kind: 'gpg',
      index: ctx.action.index,
      title: ctx.action.name ?? `gpg ${dst}`,
      ...(ctx.become ? { become: ctx.become } : {}),
      pos: ctx.action.pos,
      src,
      dst,
      mode,
      ...own,
      dearmor: s.dearmor === true,
      ...(pins.fingerprints ? { fingerprints: pins.fingerprints } : {}),
      ...(pins.sha256 ? { sha256: pins.sha256 } : {}),
      timeoutMs,
      tmp: tempPathFor(dst),
    };
  },
  describe(e) {
    const { deliver } = fileCommands(e, '<sha256 of the verified key>');
    return [
      `${e.src} -> ${e.dst} mode ${octal(e.mode)}${ownText(e)}`,
      `downloaded once per run on the orchestrator: https only (TLS 1.2 or newer, certificate verified), at most ${MAX_REDIRECTS} redirects and each to https:// only, timeout ${formatDuration(e.timeoutMs)}, at most ${MAX_KEY_BYTES / 1024 / 1024} MiB; it must be an OpenPGP public key`,
      pinText(e),
      e.dearmor
        ? 'dearmor: ASCII armor converted to a binary keyring on the orchestrator (a binary download is delivered as is)'
        : 'delivered as downloaded (no dearmor)',
      `one command: skip if ${e.dst} already has this sha256 and mode ${octal(e.mode)}${ownText(e)}; same sha256 but other mode/owner: fix them, send nothing; else the host answers "send" and only then are the bytes streamed`,
      `$ ${deliver}  < (the verified key)`,
    ];
  },
  async run(e, rt) {
    const what = `gpg ${e.dst}`;
    let data: Buffer;
    try {
      data = await downloadOnce(rt.files, e.src, e.timeoutMs, rt.signal);
    } catch (err) {
      const msg = err instanceof DownloadError ? err.message : (err as Error).message;
      throw new ActionFailure(`${what}: downloading ${e.src} failed: ${msg} (nothing was written on the host)`);
    }
    const refuse = (why: string): never => {
      throw new ActionFailure(`${what}: the key from ${e.src} is refused: ${why} (nothing was written on the host)`);
    };
    if (e.sha256) {
      const got = sha256Hex(data);
      if (got !== e.sha256) refuse(`its sha256 is ${got}, the pin says ${e.sha256}`);
    }
    let key: KeyInfo;
    try {
      key = inspectKey(data);
    } catch (err) {
      return refuse((err as Error).message);
    }
    const found = key.keys.map((k) => k.fingerprint);
    if (e.fingerprints) {
      const missing = e.fingerprints.filter((f) => !found.includes(f));
      const extra = found.filter((f) => !e.fingerprints!.includes(f));
      if (missing.length || extra.length)
        refuse(
          `its primary key fingerprint${found.length > 1 ? 's are' : ' is'} ${found.join(', ')}; pinned: ${e.fingerprints.join(', ')}${extra.length && found.length > extra.length ? ` (not pinned: ${extra.join(', ')})` : ''}`,
        );
    }
    const out = e.dearmor ? key.binary : data;
    const sha256 = sha256Hex(out);
    const how = await deliverBytes(rt, e, what, sha256, () => out);
    const fpr = `fingerprint ${found.join(', ')}`;
    if (how === 'unchanged') return { status: 'unchanged', detail: `${fpr}, sha256 ${sha256.slice(0, 12)}` };
    return {
      status: 'changed',
      detail:
        how === 'meta'
          ? `mode/owner fixed, no bytes sent, ${fpr}`
          : `${out.length} bytes${e.dearmor && key.armored ? ' (dearmored)' : ''}, ${fpr}, sha256 ${sha256.slice(0, 12)}`,
    };
  },
};
