/**
 * `hades registry gc` for the filesystem registry: per artifact name (one OCI layout), removes
 * the blobs — manifests included — that nothing in index.json reaches, e.g. the orphans of a
 * push that lost a tag race, was killed, or whose tag `hades registry rm` removed.
 *
 * Reachable: every descriptor in index.json (tagged or not: oras reads them all), and from each
 * manifest its config, layers, blobs and subject; from an image index its manifests
 * (recursively). A manifest gc can't read or verify stops gc for that layout: it removes
 * nothing it can't prove unreachable.
 *
 * Safety beside concurrent pushes (which write blobs without the lock): gc holds the layout's
 * lock (so no index commit happens meanwhile) and follows the in-flight protocol of
 * fs/inflight.ts — move candidates aside, read the registrations, read the index again, then
 * delete only what neither names, and put everything else back. On top of that, a blob younger
 * than the grace period (default 1 hour, `--grace`) is never a candidate: writers that don't
 * register (oras writing into the layout, an older Hades) are safe while their push is shorter
 * than the grace period. A gc killed half-way leaves `.gc-*` files; the next gc puts them back
 * first.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../../errors.js';
import { isCode } from '../errno.js';
import { MEDIA_TYPE, readBlobVerified, readIndex, type Descriptor } from '../layout.js';
import { inFlightDigests } from './inflight.js';
import { acquireLock } from './lock.js';
import type { FilesystemRegistry } from './registry.js';

export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MANIFEST_TYPES = new Set<string>([
  MEDIA_TYPE.manifest,
  MEDIA_TYPE.index,
  'application/vnd.oci.artifact.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const QUARANTINE = /^\.gc-([a-f0-9]{64})-[a-f0-9]{12}$/;

export interface GcOptions {
  dryRun: boolean;
  /** Blobs younger than this are kept (default DEFAULT_GC_GRACE_MS). */
  graceMs: number;
}

export interface GcRemoved {
  name: string;
  digest: string;
  size: number;
  kind: 'manifest' | 'blob';
}

export interface GcResult {
  registry: string;
  dryRun: boolean;
  graceMs: number;
  /** What was removed (with dryRun: what would be). */
  removed: GcRemoved[];
  bytes: number;
  /** Unreferenced blobs kept because they are younger than the grace period. */
  keptYoung: number;
  /** Unreferenced blobs kept because an in-flight push registered them. */
  keptInFlight: number;
  /** Registrations of killed pushes that were removed (or, with dryRun, would be). */
  staleFlights: number;
}

/** The blob digests index.json reaches in `layout` (RunError when a manifest can't be read). */
async function reachable(layout: string, name: string, regName: string): Promise<Set<string>> {
  const index = await readIndex(layout);
  const out = new Set<string>();
  const walk = async (d: Descriptor, depth: number): Promise<void> => {
    if (out.has(d.digest)) return;
    out.add(d.digest);
    if (!MANIFEST_TYPES.has(d.mediaType)) return;
    if (depth > 8) throw new RunError(`registry "${regName}": ${name}: manifests nest deeper than 8 levels; gc stops`);
    if (typeof d.size === 'number' && d.size > MAX_MANIFEST_BYTES)
      throw new RunError(`registry "${regName}": ${name}: manifest ${d.digest} is ${d.size} bytes, too large; gc stops`);
    let m: Record<string, unknown>;
    try {
      m = JSON.parse((await readBlobVerified(layout, d, `registry "${regName}": ${name}: manifest`)).toString('utf8')) as Record<
        string,
        unknown
      >;
    } catch (e) {
      throw new RunError(`${(e as Error).message}; gc removes nothing from ${name} while a manifest it reaches can't be read`, {
        cause: e,
      });
    }
    const children: Descriptor[] = [];
    const add = (v: unknown): void => {
      if (v && typeof v === 'object' && typeof (v as Descriptor).digest === 'string') children.push(v as Descriptor);
    };
    add(m.config);
    add(m.subject);
    for (const k of ['layers', 'blobs', 'manifests']) if (Array.isArray(m[k])) for (const c of m[k] as unknown[]) add(c);
    for (const c of children) await walk(c, depth + 1);
  };
  for (const d of index?.manifests ?? []) await walk(d, 0);
  return out;
}

/** Whether a blob file holds a manifest (for the report): small JSON with schemaVersion 2 and a manifest media type. */
async function kindOf(path: string, size: number): Promise<'manifest' | 'blob'> {
  if (size > MAX_MANIFEST_BYTES) return 'blob';
  try {
    const m = JSON.parse(await fsp.readFile(path, 'utf8')) as {
      schemaVersion?: unknown;
      mediaType?: unknown;
      layers?: unknown;
      manifests?: unknown;
    };
    if (m.schemaVersion === 2 && (Array.isArray(m.layers) || Array.isArray(m.manifests) || MANIFEST_TYPES.has(String(m.mediaType))))
      return 'manifest';
  } catch {
    /* not JSON */
  }
  return 'blob';
}

/** One layout. Appends to `res`. */
async function gcLayout(reg: FilesystemRegistry, name: string, opts: GcOptions, res: GcResult): Promise<void> {
  const layout = reg.layoutOf(name);
  const dir = join(layout, 'blobs', 'sha256');
  const work = async (): Promise<void> => {
    let names = await fsp.readdir(dir).catch((e: unknown) => {
      if (isCode(e, 'ENOENT')) return [] as string[];
      throw e;
    });
    if (!opts.dryRun) {
      // A gc killed between moving blobs aside and deciding: put them back first.
      for (const n of names) {
        const q = QUARANTINE.exec(n);
        if (!q) continue;
        await fsp.rename(join(dir, n), join(dir, q[1]!)).catch(() => fsp.rm(join(dir, n), { force: true }));
      }
      names = await fsp.readdir(dir);
    }
    names.sort(); // digest order: the report is deterministic
    const reach = await reachable(layout, name, reg.name);
    const now = Date.now();
    const candidates: { hex: string; size: number }[] = [];
    for (const n of names) {
      if (!/^[a-f0-9]{64}$/.test(n) || reach.has(`sha256:${n}`)) continue;
      const st = await fsp.stat(join(dir, n)).catch(() => null);
      if (!st?.isFile()) continue;
      if (now - st.mtimeMs < opts.graceMs) {
        res.keptYoung++;
        continue;
      }
      candidates.push({ hex: n, size: st.size });
    }
    if (opts.dryRun) {
      const flights = await inFlightDigests(layout, true);
      res.staleFlights += flights.stale;
      for (const c of candidates) {
        if (flights.digests.has(`sha256:${c.hex}`)) {
          res.keptInFlight++;
          continue;
        }
        res.removed.push({ name, digest: `sha256:${c.hex}`, size: c.size, kind: await kindOf(join(dir, c.hex), c.size) });
        res.bytes += c.size;
      }
      return;
    }
    // Aside first, then the registrations, then the index again (fs/inflight.ts says why this order).
    const token = randomBytes(6).toString('hex');
    const aside: { hex: string; path: string }[] = [];
    for (const c of candidates) {
      const path = join(dir, `.gc-${c.hex}-${token}`);
      try {
        await fsp.rename(join(dir, c.hex), path);
      } catch (e) {
        if (isCode(e, 'ENOENT')) continue;
        throw e;
      }
      aside.push({ hex: c.hex, path });
    }
    let keep: (digest: string) => boolean = () => true;
    try {
      const flights = await inFlightDigests(layout, false);
      res.staleFlights += flights.stale;
      const reachNow = await reachable(layout, name, reg.name);
      keep = (d) => flights.digests.has(d) || reachNow.has(d);
    } finally {
      // On any error above, `keep` keeps everything: put it all back.
      for (const a of aside) {
        const digest = `sha256:${a.hex}`;
        if (keep(digest)) {
          if (!reach.has(digest)) res.keptInFlight++;
          await fsp.rename(a.path, join(dir, a.hex));
          continue;
        }
        const st = await fsp.stat(a.path);
        const kind = await kindOf(a.path, st.size);
        await fsp.rm(a.path);
        res.removed.push({ name, digest, size: st.size, kind });
        res.bytes += st.size;
      }
    }
  };
  if (opts.dryRun) return work();
  const lock = await acquireLock(join(layout, '.lock'), { timeoutMs: reg.lockTimeoutMs, staleMs: reg.staleLockMs, purpose: 'gc' });
  try {
    await work();
  } finally {
    await lock.release();
  }
}

/** Every artifact name of the registry, in name order. */
export async function collectGarbage(reg: FilesystemRegistry, opts: GcOptions): Promise<GcResult> {
  const res: GcResult = {
    registry: reg.name,
    dryRun: opts.dryRun,
    graceMs: opts.graceMs,
    removed: [],
    bytes: 0,
    keptYoung: 0,
    keptInFlight: 0,
    staleFlights: 0,
  };
  for (const name of await reg.names()) await gcLayout(reg, name, opts, res);
  return res;
}
