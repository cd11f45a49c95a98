/**
 * The tags of a filesystem registry's layout: the index.json entries a push, copy or `registry
 * tag` writes, checked and written inside the layout's lock (lock.ts) through the fenced commit
 * (layout.ts commitIndex). Immutable tags, semver aliases and conflicts follow push-rules.ts.
 */
import { join } from 'node:path';
import {
  ANNOTATION,
  MEDIA_TYPE,
  commitIndex,
  ensureLayout,
  sortedAnnotations,
  type CommitIndexHooks,
  type Descriptor,
  type ImageIndex,
} from '../layout.js';
import { aliasUpdate, refuseConflicts, tagConflict, type TagState } from '../push-rules.js';
import { semverAliases } from '../reference.js';
import type { AliasUpdate, ArtifactDescriptor, PushResult } from '../types.js';
import { acquireLock } from './lock.js';

/** What index.json records for a tagged manifest or image index. */
export interface IndexEntry {
  digest: string;
  size: number;
  mediaType: string;
  artifactType: string;
  created?: string;
}

/** The lock timings and test hooks of the registry that commits. */
export interface TagCommitOptions {
  lockTimeoutMs: number;
  staleLockMs: number;
  indexCommitHooks: Pick<CommitIndexHooks, 'beforeClaim' | 'beforeInstall'>;
  beforeTagLock: (() => Promise<void>) | undefined;
}

interface TagWrite {
  tag: string;
  mutable: boolean;
  /** For aliases: the version tag they point to. */
  version?: string;
}

/** The index.json entry of a single-platform manifest. */
export function entryOf(d: ArtifactDescriptor, size: number): IndexEntry {
  return {
    digest: d.manifestDigest,
    size,
    mediaType: MEDIA_TYPE.manifest,
    artifactType: d.artifactType,
    ...(d.created !== undefined ? { created: d.created } : {}),
  };
}

/**
 * Inside the layout's lock: check every tag against index.json, then write them all (or none).
 * `aliasesOf` is the version tag whose semver aliases move.
 */
export async function commitTags(
  layout: string,
  name: string,
  entry: IndexEntry,
  tags: string[],
  aliasesOf: string | undefined,
  opts: TagCommitOptions,
): Promise<Omit<PushResult, 'descriptor'>> {
  const digest = entry.digest;
  await opts.beforeTagLock?.();
  const lock = await acquireLock(join(layout, '.lock'), {
    timeoutMs: opts.lockTimeoutMs,
    staleMs: opts.staleLockMs,
    purpose: `push ${name}:${tags[0]}`,
  });
  try {
    await ensureLayout(layout);
    let unchanged: boolean | undefined;
    let aliases: AliasUpdate[] = [];
    // Called again on the newer index whenever another writer committed first (fenced commit).
    const build = (current: ImageIndex | null): ImageIndex | null => {
      const index: ImageIndex = current ?? { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
      const { writes, aliases: a, unchanged: u } = planTagWrites(index, name, tags, digest, aliasesOf);
      aliases = a;
      unchanged ??= u; // whether the tags were there before this push began
      if (!writes.length) return null;
      const setTags = new Set(writes.map((w) => w.tag));
      const kept = index.manifests.filter((m) => !setTags.has(m.annotations?.[ANNOTATION.refName] ?? '\0'));
      const added = writes.map((w) =>
        indexEntry(entry, w.tag, w.mutable ? { [ANNOTATION.mutable]: 'true', [ANNOTATION.aliasOf]: w.version! } : {}),
      );
      return { ...index, manifests: [...kept, ...added] };
    };
    const hooks = opts.indexCommitHooks;
    await commitIndex(layout, build, {
      ...hooks,
      // Right before committing, and after another writer came first: still ours? (Else
      // LockLostError: nothing of this push was written.)
      beforeClaim: async () => {
        await lock.assertHeld();
        await hooks.beforeClaim?.();
      },
      onConflict: () => lock.assertHeld(),
    });
    return { unchanged: unchanged ?? true, ...(aliasesOf !== undefined ? { aliases } : {}) };
  } finally {
    await lock.release();
  }
}

/** Refuses (UserError) when any immutable tag exists with other content, or is a moving alias (push-rules.ts). */
export function refuseTagConflicts(index: ImageIndex | null, name: string, tags: string[], digest: string): void {
  refuseConflicts(tags.map((t) => tagConflict(name, t, digest, tagState(index, t, digest))));
}

/** The tag entries a push has to write into `index` (throws UserError on a conflict). */
function planTagWrites(
  index: ImageIndex,
  name: string,
  tags: string[],
  digest: string,
  aliasesOf: string | undefined,
): { writes: TagWrite[]; aliases: AliasUpdate[]; unchanged: boolean } {
  const byTag = (t: string): Descriptor[] => index.manifests.filter((m) => m.annotations?.[ANNOTATION.refName] === t);
  const writes: TagWrite[] = [];
  refuseTagConflicts(index, name, tags, digest);
  let unchanged = true;
  for (const t of tags) {
    if (byTag(t).length === 0) {
      writes.push({ tag: t, mutable: false });
      unchanged = false;
    }
  }

  const aliases: AliasUpdate[] = [];
  if (aliasesOf !== undefined) {
    for (const a of semverAliases(aliasesOf)) {
      const update = aliasUpdate(aliasesOf, a, tagState(index, a));
      aliases.push(update);
      if (!update.moved) continue;
      const cur = byTag(a);
      if (cur.length === 1 && cur[0]!.digest === digest && cur[0]!.annotations?.[ANNOTATION.aliasOf] === aliasesOf) continue;
      writes.push({ tag: a, mutable: true, version: aliasesOf });
    }
  }
  return { writes, aliases, unchanged };
}

/**
 * What `tag` holds in `index`, as the shared tag rules see it: an alias when an entry is marked
 * mutable, else immutable (with several entries, the first whose digest is not `digest`).
 */
function tagState(index: ImageIndex | null, tag: string, digest?: string): TagState | undefined {
  const cur = (index?.manifests ?? []).filter((m) => m.annotations?.[ANNOTATION.refName] === tag);
  if (cur.length === 0) return undefined;
  if (cur.some((m) => m.annotations?.[ANNOTATION.mutable] === 'true'))
    return { kind: 'alias', digest: cur[0]!.digest, version: cur[0]!.annotations?.[ANNOTATION.aliasOf] };
  return { kind: 'immutable', digest: (cur.find((m) => m.digest !== digest) ?? cur[0]!).digest };
}

function indexEntry(d: IndexEntry, tag: string, extra: Record<string, string>): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    annotations: sortedAnnotations({
      ...(d.created !== undefined ? { [ANNOTATION.created]: d.created } : {}),
      [ANNOTATION.refName]: tag,
      ...extra,
    }),
    artifactType: d.artifactType,
  };
}
