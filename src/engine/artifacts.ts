/**
 * Registries during one run: each tag resolved once (every host of the run gets the same
 * digest), each payload read from its registry and verified once into a local
 * content-addressed cache, then streamed from there to every host. Archives are checked
 * entry by entry once per digest.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ArtifactAccess, ArtifactRecord } from '../actions/types.js';
import type { RegistrySpec } from '../config/model.js';
import type { Problem } from '../errors.js';
import { checkTarEntries, stripComponentsFor, type CheckTarOptions } from '../registry/archive.js';
import { cachedSignatures, descriptorOf, keepSignatures, noteUse, readIndexRecord, readRecord } from './cache.js';
import { choosePlatform } from '../registry/platform.js';
import { digestFile } from '../registry/digest.js';
import { fetchArtifact } from '../registry/fetch.js';
import { refusal, verifyArtifact, verifySignatures } from '../registry/trust.js';
import { PlatformNeeded, type ArtifactDescriptor, type Registry } from '../registry/types.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hades');
}

export type RegistryOpener = (spec: RegistrySpec) => Registry;

async function isGzip(path: string): Promise<boolean> {
  for await (const c of createReadStream(path, { start: 0, end: 1 })) return (c as Buffer)[0] === 0x1f && (c as Buffer)[1] === 0x8b;
  return false;
}

export class RunArtifacts implements ArtifactAccess {
  private readonly open = new Map<string, Registry>();
  private readonly resolved = new Map<string, Promise<ArtifactDescriptor>>();
  private readonly local = new Map<string, Promise<string>>();
  private readonly verified = new Map<string, Promise<{ principal: string; key: string }>>();
  private readonly archives = new Map<string, Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }>>();

  constructor(
    private readonly specs: Map<string, RegistrySpec>,
    private readonly opener: RegistryOpener,
    readonly cacheDir: string = defaultCacheDir(),
    private readonly onRecord?: (rec: ArtifactRecord) => void,
    /** `--offline`: no registry is contacted; digests resolve from the cache's records (cache.ts). */
    readonly options: { offline?: boolean } = {},
  ) {}

  private readonly recorded = new Set<string>();
  /** Each (registry, name, tag, digest) once per run, to `onRecord` (the audit log). */
  record(rec: ArtifactRecord): void {
    const key = `${rec.registry}\0${rec.name}\0${rec.tag ?? ''}\0${rec.digest}`;
    if (this.recorded.has(key)) return;
    this.recorded.add(key);
    this.onRecord?.(rec);
  }

  registry(name: string): Registry {
    if (this.options.offline) throw new Error(`--offline: registry "${name}" is not contacted`);
    let r = this.open.get(name);
    if (!r) {
      const spec = this.specs.get(name);
      if (!spec) throw new Error(`unknown registry "${name}"`);
      r = this.opener(spec);
      this.open.set(name, r);
    }
    return r;
  }

  /**
   * name:tag resolves once per run (every host gets the same digest); an image index is then
   * resolved by ITS digest for each platform asked for, so every host of a platform gets the
   * same manifest, and all of them entries of the same index.
   */
  resolve(registry: string, name: string, ref: { tag?: string; digest?: string }, platform?: string): Promise<ArtifactDescriptor> {
    const base = `${registry}\0${name}\0${ref.tag ?? ''}\0${ref.digest ?? ''}`;
    const once = (key: string, make: () => Promise<ArtifactDescriptor>, keepIf?: (e: unknown) => boolean) => {
      let p = this.resolved.get(key);
      if (!p) {
        p = make();
        this.resolved.set(key, p);
        p.catch((e) => {
          if (!keepIf?.(e)) this.resolved.delete(key);
        });
      }
      return p;
    };
    // "This is an index" is an answer too: kept, so the tag is looked up once.
    const direct = once(
      base,
      () => (this.options.offline ? this.fromCache(registry, name, ref) : this.registry(registry).resolve(name, ref)),
      (e) => e instanceof PlatformNeeded,
    );
    if (platform === undefined) return direct;
    return once(`${base}\0${platform}`, async () => {
      try {
        return await direct;
      } catch (e) {
        if (!(e instanceof PlatformNeeded)) throw e;
        if (this.options.offline) return this.fromCacheIndex(registry, name, e.indexDigest, platform, ref.tag);
        // The tag must still name the index the run saw (checked by the registry).
        return this.registry(registry).resolve(name, { ...ref, digest: e.indexDigest }, { platform });
      }
    });
  }

  private readonly platforms = new Map<string, Promise<string>>();
  hostPlatform(host: string, detect: () => Promise<string>): Promise<string> {
    let p = this.platforms.get(host);
    if (!p) {
      p = detect();
      this.platforms.set(host, p);
      p.catch(() => this.platforms.delete(host));
    }
    return p;
  }

  private async fromCache(registry: string, name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactDescriptor> {
    if (!ref.digest) throw new Error(`--offline: ${name}:${ref.tag} would need its tag resolved by registry "${registry}"`);
    const rec = await readRecord(this.cacheDir, ref.digest);
    if (rec) return descriptorOf(rec, registry, name);
    // A multi-platform artifact: the index's record (written by the online run) picks the platform's manifest.
    const index = await readIndexRecord(this.cacheDir, ref.digest);
    if (!index) throw new Error(`--offline: ${name}@${ref.digest} is not in the cache ${this.cacheDir}`);
    throw new PlatformNeeded(
      `--offline: ${name}@${ref.digest} is multi-platform (${index.platforms.join(', ')}): choose a platform`,
      ref.digest,
      index.platforms,
    );
  }

  /** --offline, name@indexDigest for `platform`: the manifest an online run resolved for that platform, from the cache. */
  private async fromCacheIndex(
    registry: string,
    name: string,
    indexDigest: string,
    platform: string,
    tag: string | undefined,
  ): Promise<ArtifactDescriptor> {
    const index = await readIndexRecord(this.cacheDir, indexDigest);
    if (!index) throw new Error(`--offline: ${name}@${indexDigest} is not in the cache ${this.cacheDir}`);
    const entries = index.platforms.map((p) => ({ platform: p, descriptor: { mediaType: '', digest: index.manifests[p] ?? '', size: 0 } }));
    const chosen = choosePlatform(entries, platform);
    if (!chosen)
      throw new Error(`--offline: ${name}@${indexDigest} has no platform ${platform}; platforms available: ${index.platforms.join(', ')}`);
    const digest = index.manifests[chosen.platform];
    const rec = digest ? await readRecord(this.cacheDir, digest) : undefined;
    if (!rec)
      throw new Error(
        `--offline: the ${chosen.platform} manifest of ${name}@${indexDigest} is not in the cache ${this.cacheDir} (cached platforms: ${Object.keys(index.manifests).join(', ') || 'none'})`,
      );
    return {
      ...descriptorOf(rec, registry, name),
      ...(tag !== undefined ? { tag } : {}),
      index: { digest: indexDigest, platforms: index.platforms, annotations: index.annotations },
      platform: chosen.platform,
    };
  }

  /**
   * Signature verification, once per run per (allowed_signers, registry, name, digest), before
   * any byte of the artifact is read: every host of the run waits for the same answer, and a
   * refusal is kept for the whole run (fail closed, no retry).
   */
  verifySignature(desc: ArtifactDescriptor, ref: string, allowedSigners: string): Promise<{ principal: string; key: string }> {
    const key = `${allowedSigners}\0${desc.registry}\0${desc.name}\0${desc.manifestDigest}`;
    let p = this.verified.get(key);
    if (!p) {
      p = (async () => {
        // Online: the registry's signatures (kept in the cache for later --offline runs); offline:
        // the ones kept, checked against today's allowed_signers all the same.
        const outcome = this.options.offline
          ? await verifySignatures(
              await cachedSignatures(this.cacheDir, desc.manifestDigest),
              desc.name,
              desc.manifestDigest,
              allowedSigners,
              'no signature in the cache (--offline verifies only signatures an online run of this machine has read)',
            )
          : await verifyArtifact(this.registry(desc.registry), desc.name, desc.manifestDigest, allowedSigners, (sigs) =>
              keepSignatures(this.cacheDir, desc.manifestDigest, sigs),
            );
        if (!outcome.ok) throw refusal(desc.registry, ref, desc.manifestDigest, allowedSigners, outcome);
        return { principal: outcome.principal, key: outcome.key };
      })();
      p.catch(() => undefined); // observed by every caller
      this.verified.set(key, p);
    }
    return p;
  }

  materialize(desc: ArtifactDescriptor): Promise<string> {
    const digest = desc.layer.digest;
    let p = this.local.get(digest);
    if (!p) {
      p = this.fetch(desc);
      this.local.set(digest, p);
      p.catch(() => this.local.delete(digest));
    }
    return p;
  }

  private async fetch(desc: ArtifactDescriptor): Promise<string> {
    const hex = desc.layer.digest.replace(/^sha256:/, '');
    const dir = join(this.cacheDir, 'blobs', 'sha256');
    const path = join(dir, hex);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Recorded (last used now) before the blob is read: a concurrent `hades cache prune` keeps it.
    await noteUse(this.cacheDir, desc);
    const existing = await stat(path).catch(() => undefined);
    if (existing) {
      // The cache is only a cache: re-verify once per run; a bad entry is replaced.
      if (existing.size === desc.layer.size && (await digestFile(path)).digest === desc.layer.digest) return path;
      await rm(path, { force: true });
    }
    if (this.options.offline)
      throw new Error(`--offline: the payload ${desc.layer.digest} is not in the cache ${this.cacheDir} (or was damaged)`);
    // Verified, into a temp file beside `path`, renamed when complete (fetchTo: oras writes the
    // file and Hades hashes it as it grows; otherwise the registry's verified stream).
    await fetchArtifact(this.registry(desc.registry), desc, path);
    return path;
  }

  inspectArchive(desc: ArtifactDescriptor, localPath: string): Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }> {
    let p = this.archives.get(desc.layer.digest);
    if (!p) {
      p = (async () => {
        // One description of the layout decides both the check and the host's
        // --strip-components: the entries are checked as they will be after stripping.
        const layout: CheckTarOptions = desc.layer.directory ? { root: desc.layer.title } : {};
        const problems = await checkTarEntries(localPath, layout);
        return { gzip: await isGzip(localPath), stripComponents: stripComponentsFor(layout), problems };
      })();
      this.archives.set(desc.layer.digest, p);
    }
    return p;
  }
}
