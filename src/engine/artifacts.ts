/**
 * Registries during one run: each tag resolved once (every host of the run gets the same
 * digest), each payload read from its registry and verified once into a local
 * content-addressed cache, then streamed from there to every host. Archives are checked
 * entry by entry once per digest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ArtifactAccess } from '../actions/types.js';
import type { RegistrySpec } from '../config/model.js';
import type { Problem } from '../errors.js';
import { checkTarEntries } from '../registry/archive.js';
import type { ArtifactDescriptor, Registry } from '../registry/types.js';
import { READ_CHUNK } from './files.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hades');
}

export type RegistryOpener = (spec: RegistrySpec) => Registry;

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: READ_CHUNK })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

async function isGzip(path: string): Promise<boolean> {
  for await (const c of createReadStream(path, { start: 0, end: 1 })) return (c as Buffer)[0] === 0x1f && (c as Buffer)[1] === 0x8b;
  return false;
}

export class RunArtifacts implements ArtifactAccess {
  private readonly open = new Map<string, Registry>();
  private readonly resolved = new Map<string, Promise<ArtifactDescriptor>>();
  private readonly local = new Map<string, Promise<string>>();
  private readonly archives = new Map<string, Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }>>();

  constructor(
    private readonly specs: Map<string, RegistrySpec>,
    private readonly opener: RegistryOpener,
    readonly cacheDir: string = defaultCacheDir(),
  ) {}

  registry(name: string): Registry {
    let r = this.open.get(name);
    if (!r) {
      const spec = this.specs.get(name);
      if (!spec) throw new Error(`unknown registry "${name}"`);
      r = this.opener(spec);
      this.open.set(name, r);
    }
    return r;
  }

  resolve(registry: string, name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactDescriptor> {
    const key = `${registry}\0${name}\0${ref.tag ?? ''}\0${ref.digest ?? ''}`;
    let p = this.resolved.get(key);
    if (!p) {
      p = this.registry(registry).resolve(name, ref);
      this.resolved.set(key, p);
      p.catch(() => this.resolved.delete(key));
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
    const existing = await stat(path).catch(() => undefined);
    if (existing) {
      // The cache is only a cache: re-verify once per run; a bad entry is replaced.
      if (existing.size === desc.layer.size && (await sha256OfFile(path)) === desc.layer.digest) return path;
      await rm(path, { force: true });
    }
    const tmp = join(dir, `.tmp-${hex.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    try {
      const src = await this.registry(desc.registry).open(desc); // verifies the digest while streaming
      await pipeline(src, createWriteStream(tmp, { mode: 0o600 }));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return path;
  }

  inspectArchive(desc: ArtifactDescriptor, localPath: string): Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }> {
    let p = this.archives.get(desc.layer.digest);
    if (!p) {
      p = (async () => {
        const root = desc.layer.directory ? desc.layer.title : undefined;
        const problems = await checkTarEntries(localPath, root ? { root } : {});
        return { gzip: await isGzip(localPath), stripComponents: root ? 1 : 0, problems };
      })();
      this.archives.set(desc.layer.digest, p);
    }
    return p;
  }
}
