/**
 * In-flight registrations: how a push (or copy) into a filesystem registry tells `hades
 * registry gc` which blobs it is writing or about to reference before its tags are committed.
 *
 * Blobs are written WITHOUT the layout's lock (only the index commit takes it), so between a
 * push storing a blob and committing the tag that references it, the blob is unreferenced —
 * exactly what gc removes. The protocol that closes this window:
 *
 *  - A writer creates `<layout>/.inflight/<token>` (exclusively) before it stores anything:
 *    the first line names the holder (pid, host, boot id, PID namespace, start time — as the
 *    lock's owner file, fs/lock.ts), each further line is one digest. Every digest is appended
 *    BEFORE the writer looks whether that blob exists or renames its bytes into place
 *    (`register`). The file is removed once the index commit is done (or failed).
 *  - gc, holding the layout lock, first moves every candidate blob aside (rename to
 *    `blobs/sha256/.gc-<hex>-<token>`), THEN reads every registration, THEN reads the index
 *    again, and only then deletes what no registration and no tag names; everything else is
 *    renamed back.
 *
 * Why that is enough: a digest registered before gc read the registrations is seen and put
 * back; a digest registered after that is looked up after every candidate was moved aside, so
 * the writer finds it missing and renames its own complete copy into place (storeBlob), which
 * gc never touches. A writer that commits and unregisters before gc reads the registrations is
 * seen in the index gc reads after them.
 *
 * A registration whose holder is provably gone (same boot and PID namespace, pid gone or
 * reused: a killed push) is removed by gc; one from another machine or namespace counts until
 * it is STALE_FLIGHT_MS old (then its holder is taken to be gone).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isCode } from '../errno.js';
import { processIdentity, provablyDead, type LockOwner } from './lock.js';

export const FLIGHT_DIR = '.inflight';
/** A registration from another machine or PID namespace older than this no longer protects its blobs. */
export const STALE_FLIGHT_MS = 24 * 60 * 60 * 1000;

export interface Flight {
  readonly path: string;
  /** Records that this writer is about to look up or place `digest` (call before doing so). */
  register(digest: string): Promise<void>;
  /** The writer is done (committed or failed): its blobs are protected by the index now, or garbage. */
  end(): Promise<void>;
}

/** Starts a registration in `layout` (which must exist). */
export async function startFlight(layout: string, purpose: string): Promise<Flight> {
  const dir = join(layout, FLIGHT_DIR);
  const token = randomBytes(12).toString('hex');
  const { bootId, pidNs, timeNs, startTime } = processIdentity();
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    created: new Date().toISOString(),
    token,
    purpose,
    ...(bootId ? { bootId } : {}),
    ...(pidNs ? { pidNs } : {}),
    ...(timeNs ? { timeNs } : {}),
    ...(startTime ? { startTime } : {}),
  };
  const path = join(dir, token);
  // The directory goes when its last registration ends (an idle layout is exactly what oras
  // writes); another writer may remove it between our mkdir and open: make it again.
  let fh: fsp.FileHandle | undefined;
  for (let attempt = 0; !fh; attempt++) {
    try {
      // (a recursive mkdir racing another writer's rmdir of the same directory can say ENOENT too)
      await fsp.mkdir(dir, { recursive: true });
      fh = await fsp.open(path, 'wx', 0o644);
    } catch (e) {
      if (!isCode(e, 'ENOENT') || attempt >= 100) throw e;
    }
  }
  const handle = fh;
  await handle.write(`${JSON.stringify(owner)}\n`);
  const seen = new Set<string>();
  let ended = false;
  return {
    path,
    async register(digest: string) {
      if (seen.has(digest)) return;
      // One write() of one short line to an O_APPEND-free handle we alone write: the line is
      // complete before this returns, and the caller looks at the blob only after that.
      await handle.write(`${digest}\n`);
      seen.add(digest);
    },
    async end() {
      if (ended) return;
      ended = true;
      await handle.close().catch(() => undefined);
      await fsp.rm(path, { force: true });
      await fsp.rmdir(dir).catch(() => undefined); // not empty: other writers are in flight
    },
  };
}

/**
 * The digests the live registrations of `layout` name. Registrations of provably dead holders
 * (and ones older than STALE_FLIGHT_MS) are removed unless `readOnly`; `stale` counts them.
 */
export async function inFlightDigests(layout: string, readOnly: boolean): Promise<{ digests: Set<string>; live: number; stale: number }> {
  const dir = join(layout, FLIGHT_DIR);
  const digests = new Set<string>();
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) return { digests, live: 0, stale: 0 };
    throw e;
  }
  let live = 0;
  let stale = 0;
  for (const n of names) {
    if (!/^[a-f0-9]{24}$/.test(n)) continue;
    const p = join(dir, n);
    let text: string;
    let mtimeMs: number;
    try {
      text = await fsp.readFile(p, 'utf8');
      mtimeMs = (await fsp.stat(p)).mtimeMs;
    } catch (e) {
      if (isCode(e, 'ENOENT')) continue; // that writer just finished
      throw e;
    }
    const [first, ...rest] = text.split('\n');
    let owner: Partial<LockOwner> | null = null;
    try {
      owner = JSON.parse(first ?? '') as Partial<LockOwner>;
    } catch {
      owner = null; // being written right now: counts as live (it names no digest yet)
    }
    const dead =
      (owner !== null && typeof owner.pid === 'number' && typeof owner.token === 'string' && provablyDead(owner as LockOwner)) ||
      Date.now() - mtimeMs > STALE_FLIGHT_MS;
    if (dead) {
      stale++;
      if (!readOnly) await fsp.rm(p, { force: true });
      continue;
    }
    live++;
    for (const line of rest) if (/^sha256:[a-f0-9]{64}$/.test(line)) digests.add(line);
  }
  return { digests, live, stale };
}
