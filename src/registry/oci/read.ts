/**
 * Reading an `oci` registry, verified: manifests are fetched with their raw bytes and checked
 * against the digest the registry reports (and the one asked for); blobs stream from `oras blob
 * fetch` through verifyStream, or — for big payloads going to a file — oras writes the file
 * itself and Hades hashes it as it grows (see registry.ts).
 *
 * With mirrors (mirrors.ts), manifests by digest and blobs are read through the chain
 * mirrors → origin (`viaMirrors`); a tag is always resolved at the origin first. A blob to
 * stream (`openBlob`) is then fetched, verified, into a private temp file first, so that a
 * mirror failing halfway can be replaced by the next endpoint before any byte is handed on.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RunError, UserError } from '../../errors.js';
import { digestGrowingFile, integrityMismatch, IntegrityError, verifyBytes, verifyStream } from '../digest.js';
import { tempBeside } from '../fetch.js';
import { MEDIA_TYPE, type Descriptor, type ImageManifest } from '../layout.js';
import { check, describeManifest } from '../push-rules.js';
import { validateDigest, validateName, validateTag } from '../reference.js';
import { ArtifactNotFound, type ArtifactBundle, type ArtifactDescriptor } from '../types.js';
import { type OciEndpoint, viaMirrors } from './mirrors.js';
import { isOrasOwnFailure } from './oras.js';
import type { OciSettings } from './settings.js';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Regroups a byte stream into chunks of about `size` bytes (fewer, larger writes and hash updates). */
async function* batches(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of src) {
    parts.push(chunk);
    n += chunk.length;
    if (n >= size) {
      yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  descriptor: ArtifactDescriptor;
}

/**
 * Fetches a manifest's raw bytes (`oras manifest fetch --format json --output FILE`: the JSON
 * on stdout is the registry's descriptor, FILE the exact bytes) and verifies them against the
 * registry's digest and the requested one.
 */
export async function fetchManifest(reg: OciSettings, name: string, ref: { tag?: string; digest?: string }): Promise<FetchedManifest> {
  const raw = await fetchRaw(reg, name, ref);
  const descriptor = describeManifest(reg.name, name, ref.tag, raw.digest, raw.manifest);
  return { ...raw, descriptor };
}

/** fetchManifest without describing it: a manifest or an image index, verified, parsed. */
export async function fetchRaw(
  reg: OciSettings,
  name: string,
  ref: { tag?: string; digest?: string },
  opts: { originOnly?: boolean } = {},
): Promise<RawManifest> {
  reg.checkName(name);
  if (ref.tag === undefined && ref.digest === undefined) throw new UserError(`artifact ${name}: a tag or a digest is required`);
  if (ref.tag !== undefined) check(validateTag(ref.tag));
  if (ref.digest !== undefined) check(validateDigest(ref.digest));
  if (reg.mirrors.length === 0 || opts.originOnly) return fetchManifestAt(reg, reg.origin, name, ref);
  if (ref.tag === undefined) return viaMirrors(reg, `manifest ${name}@${ref.digest}`, (ep) => fetchManifestAt(reg, ep, name, ref));
  // The tag is resolved at the origin, always: a stale mirror must never pick the version.
  const digest = await tagDigest(reg, name, ref.tag);
  if (digest === undefined) throw new ArtifactNotFound(reg.name, `${name}:${ref.tag}`);
  if (ref.digest !== undefined && digest !== ref.digest)
    throw new UserError({ message: `tag ${ref.tag} of ${name} in registry "${reg.name}" is ${digest}, not the expected ${ref.digest}` });
  return viaMirrors(reg, `manifest ${name}@${digest}`, (ep) => fetchManifestAt(reg, ep, name, { digest }));
}

/** A manifest or an image index as fetched: verified bytes, parsed, not yet described. */
export type RawManifest = Omit<FetchedManifest, 'descriptor'> & { refText: string };

/**
 * fetchManifest at the origin only, never a mirror: for what decides or lists tags (the
 * immutability check of a push, `tags()`), where a mirror would only add requests and noise.
 */
export async function fetchManifestAtOrigin(
  reg: OciSettings,
  name: string,
  ref: { tag?: string; digest?: string },
): Promise<FetchedManifest> {
  const raw = await fetchRaw(reg, name, ref, { originOnly: true });
  return { ...raw, descriptor: describeManifest(reg.name, name, ref.tag, raw.digest, raw.manifest) };
}

/** fetchManifest at one endpoint (the origin, or a mirror: then by digest only). */
async function fetchManifestAt(
  reg: OciSettings,
  ep: OciEndpoint,
  name: string,
  ref: { tag?: string; digest?: string },
): Promise<RawManifest> {
  const refText = `${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
  const target = ref.tag !== undefined ? `${ep.repo(name)}:${ref.tag}` : `${ep.repo(name)}@${ref.digest}`;
  const what = `registry "${reg.name}": artifact ${name}${refText} (manifest${ep.mirror ? ` from ${ep.label}` : ''})`;
  return reg.withTemp(async (dir) => {
    const file = join(dir, 'manifest.json');
    const out = await ep.oras.run(
      ep.call(['manifest', 'fetch'], ['--format', 'json', '--output', file, target], {
        notFound: `${name}${refText}`,
        what: `fetch manifest ${name}${refText}`,
      }),
    );
    let reported: { digest?: unknown; size?: unknown; mediaType?: unknown };
    try {
      reported = JSON.parse(out) as typeof reported;
    } catch {
      throw new RunError(`${what}: oras printed no JSON descriptor (${out.slice(0, 200)})`);
    }
    if (typeof reported.digest !== 'string' || validateDigest(reported.digest))
      throw new RunError(`${what}: the registry reported no valid digest (${JSON.stringify(reported.digest)})`);
    const st = await fsp.stat(file);
    if (st.size > MAX_MANIFEST_BYTES) throw new RunError(`${what}: ${st.size} bytes, too large for a manifest`);
    const bytes = await fsp.readFile(file);
    verifyBytes(
      bytes,
      { digest: reported.digest, ...(typeof reported.size === 'number' ? { size: reported.size } : {}) },
      what,
      ep.repo(name),
    );
    if (ref.digest !== undefined && reported.digest !== ref.digest) {
      if (ref.tag !== undefined)
        throw new UserError({
          message: `tag ${ref.tag} of ${name} in registry "${reg.name}" is ${reported.digest}, not the expected ${ref.digest}`,
        });
      throw new IntegrityError(
        `${what}: digest mismatch: expected ${ref.digest}, actual ${reported.digest}`,
        { digest: ref.digest },
        { digest: reported.digest, size: bytes.length },
      );
    }
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    } catch {
      throw new RunError(`${what} is not valid JSON`);
    }
    const mediaType = manifest.mediaType ?? (typeof reported.mediaType === 'string' ? reported.mediaType : MEDIA_TYPE.manifest);
    return { bytes, digest: reported.digest, mediaType, manifest, refText };
  });
}

/** The manifest digest a tag points to (`oras manifest fetch --descriptor`, no body), or undefined when absent. */
export async function tagDigest(reg: OciSettings, name: string, tag: string): Promise<string | undefined> {
  try {
    const out = await reg.oras.run(
      reg.call(['manifest', 'fetch'], ['--descriptor', `${reg.repo(name)}:${tag}`], {
        notFound: `${name}:${tag}`,
        what: `resolve ${name}:${tag}`,
      }),
    );
    const d = (JSON.parse(out) as { digest?: unknown }).digest;
    if (typeof d !== 'string' || validateDigest(d))
      throw new RunError(`registry "${reg.name}": ${name}:${tag} resolved to no valid digest`);
    return d;
  } catch (e) {
    if (e instanceof ArtifactNotFound) return undefined;
    throw e;
  }
}

/** The tags of a repository, or null when the repository does not exist. */
export async function listTags(reg: OciSettings, name: string): Promise<string[] | null> {
  reg.checkName(name);
  try {
    const out = await reg.oras.run(reg.call(['repo', 'tags'], [reg.repo(name)], { notFound: name, what: `list the tags of ${name}` }));
    return lines(out);
  } catch (e) {
    if (e instanceof ArtifactNotFound) return null;
    throw e;
  }
}

/**
 * A verified stream of one blob (`oras blob fetch --output -` through verifyStream). A digest
 * or size mismatch errors the stream with an IntegrityError naming both digests; oras's own
 * failures (network, auth, timeout) error it with their classified error.
 */
export async function openBlob(reg: OciSettings, name: string, blob: { digest: string; size: number }, what: string): Promise<Readable> {
  reg.checkName(name);
  check(validateDigest(blob.digest));
  if (reg.mirrors.length === 0) return openBlobAt(reg, reg.origin, name, blob, what);
  // Through the mirrors: verified into a private file first (a failing mirror is replaced
  // before any byte is handed on), then streamed from there; the file goes when the stream ends.
  await fsp.mkdir(reg.tmpRoot, { recursive: true });
  const dir = await fsp.mkdtemp(join(reg.tmpRoot, 'hades-oci-'));
  const file = join(dir, 'blob');
  try {
    await viaMirrors(reg, `blob ${name}@${blob.digest}`, (ep) => fetchBlobAt(reg, ep, name, blob, what, file));
  } catch (e) {
    await fsp.rm(dir, { recursive: true, force: true });
    throw e;
  }
  async function* body(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  return Readable.from(body(), { objectMode: false });
}

async function openBlobAt(
  reg: OciSettings,
  ep: OciEndpoint,
  name: string,
  blob: { digest: string; size: number },
  what: string,
): Promise<Readable> {
  const ref = `${ep.repo(name)}@${blob.digest}`;
  const s = await ep.oras.stream(
    ep.call(['blob', 'fetch'], ['--output', '-', ref], {
      timeoutMs: reg.transferTimeout(blob.size),
      notFound: `${name}@${blob.digest}`,
      what: `fetch ${name}@${blob.digest}`,
    }),
  );
  const verify = verifyStream({ digest: blob.digest, size: blob.size }, what, ref);
  verify.on('error', () => undefined); // reported through the iterator below, never as an uncaught event
  // Pipe reads come in 64 KiB pieces; hashing and writing 1 MiB at a time is markedly faster.
  const batched = Readable.from(batches(s.stdout, 1024 * 1024));
  batched.on('error', (e) => verify.destroy(e));
  batched.pipe(verify);
  async function* body(): AsyncGenerator<Buffer> {
    let ok = false;
    try {
      try {
        for await (const chunk of verify) yield chunk as Buffer;
      } catch (e) {
        // Ours failed (digest/size). If oras failed for a reason of its own (network, auth,
        // timeout), that is the cause; a corrupt blob is reported with both digests.
        s.kill();
        const orasErr = await s.done.then(
          () => null,
          (x: unknown) => x,
        );
        if (isOrasOwnFailure(orasErr)) throw orasErr;
        throw e;
      }
      await s.done;
      ok = true;
    } finally {
      if (!ok) s.kill();
    }
  }
  return Readable.from(body(), { objectMode: false });
}

export async function openLayer(reg: OciSettings, desc: ArtifactDescriptor): Promise<Readable> {
  const ref = desc.tag !== undefined ? `:${desc.tag}` : `@${desc.manifestDigest}`;
  return openBlob(
    reg,
    desc.name,
    { digest: desc.layer.digest, size: desc.layer.size },
    `registry "${reg.name}": artifact ${desc.name}${ref} (layer ${JSON.stringify(desc.layer.title)}, blob ${desc.layer.digest})`,
  );
}

/**
 * The payload into a file, for big payloads: `oras blob fetch --output` writes it (no bytes
 * through a pipe and this process), and Hades hashes it while oras writes it
 * (digestGrowingFile), so the verification costs little time after oras exits. oras writes
 * into a private temp directory beside `path` (0700, so the file is never readable by others
 * and no one else can put anything there); only a complete file whose sha256 and size Hades
 * checked is made 0600 and renamed to `path`. oras verifies the digest too, but a corrupt blob
 * is reported by our own check (with both digests) — oras's error is preferred only when it
 * failed for a reason of its own (network, auth, timeout, not found).
 */
export async function fetchTo(reg: OciSettings, desc: ArtifactDescriptor, path: string): Promise<void> {
  reg.checkName(desc.name);
  check(validateDigest(desc.layer.digest));
  const refText = desc.tag !== undefined ? `:${desc.tag}` : `@${desc.manifestDigest}`;
  const what = `registry "${reg.name}": artifact ${desc.name}${refText} (layer ${JSON.stringify(desc.layer.title)}, blob ${desc.layer.digest})`;
  const blob = { digest: desc.layer.digest, size: desc.layer.size };
  if (reg.mirrors.length === 0) return fetchBlobAt(reg, reg.origin, desc.name, blob, what, path);
  return viaMirrors(reg, `blob ${desc.name}@${blob.digest}`, (ep) => fetchBlobAt(reg, ep, desc.name, blob, what, path));
}

/** fetchTo of one blob at one endpoint. */
async function fetchBlobAt(
  reg: OciSettings,
  ep: OciEndpoint,
  name: string,
  expected: { digest: string; size: number },
  what: string,
  path: string,
): Promise<void> {
  const ref = `${ep.repo(name)}@${expected.digest}`;
  const tmpDir = tempBeside(path);
  await fsp.mkdir(tmpDir, { mode: 0o700 });
  try {
    const file = join(tmpDir, 'payload');
    const s = await ep.oras.start(
      ep.call(['blob', 'fetch'], ['--output', file, ref], {
        timeoutMs: reg.transferTimeout(expected.size),
        notFound: `${name}@${expected.digest}`,
        what: `fetch ${name}@${expected.digest}`,
      }),
    );
    let got: { digest: string | undefined; size: number } | null;
    try {
      got = await digestGrowingFile(file, s.done, { maxSize: expected.size });
    } finally {
      s.kill(); // a no-op once oras has exited; stops it when we stopped early
    }
    const orasErr = await s.done.then(
      () => null,
      (e: unknown) => e,
    );
    const actual = got ?? { digest: undefined, size: 0 };
    if (actual.digest !== expected.digest || actual.size !== expected.size) {
      if (isOrasOwnFailure(orasErr)) throw orasErr;
      if (got === null) throw orasErr ?? new RunError(`${what}: oras wrote no file`);
      throw integrityMismatch(expected, actual, what, ref);
    }
    if (orasErr) throw orasErr;
    await fsp.chmod(file, 0o600);
    await fsp.rename(file, path);
  } finally {
    await fsp.rm(tmpDir, { recursive: true, force: true });
  }
}

export async function names(reg: OciSettings): Promise<string[]> {
  const out = await reg.oras.run(reg.call(['repo', 'ls'], [reg.url], { what: 'list repositories' }));
  return [...new Set(lines(out).filter((n) => validateName(n) === null))].sort();
}

export async function exportArtifact(reg: OciSettings, name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactBundle> {
  const f = await fetchManifest(reg, name, ref);
  const refText = ref.tag !== undefined ? `:${ref.tag}` : `@${f.digest}`;
  const blobs = [f.manifest.config, ...f.manifest.layers].map((d: Descriptor) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    open: async (): Promise<Readable> => {
      const what = `registry "${reg.name}": artifact ${name}${refText} (blob ${d.digest})`;
      check(validateDigest(d.digest));
      // A config given inline (`data`, e.g. the empty config) needs no blob in the registry.
      if (typeof d.data === 'string') {
        const data = Buffer.from(d.data, 'base64');
        verifyBytes(data, d, `${what} (inline data)`);
        return Readable.from([data]);
      }
      return openBlob(reg, name, d, what);
    },
  }));
  return { descriptor: f.descriptor, manifest: f.bytes, manifestMediaType: f.mediaType, blobs };
}
