/**
 * The multi-platform and metadata halves of `hades registry push|pull|inspect`:
 * `--platform os/arch=PATH` (push, repeatable: an OCI image index), `--annotation K=V`,
 * `--config FILE` / `--config-media-type`; pull `--platform P` (repeatable) / `--all-platforms`
 * / `--config-only`; the platform of this machine (`uname -s` / `uname -m`, as on hosts).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { formatPlatform, parsePlatform, platformFromUname } from '../registry/platform.js';
import { DEFAULT_CONFIG_MEDIA_TYPE, PlatformNeeded, type ArtifactDescriptor, type PushSource, type Registry } from '../registry/types.js';

/** `--platform linux/amd64=./a` (repeatable) → platform + absolute path. */
export function pushPlatforms(list: string[]): { platform: string; path: string }[] {
  return list.map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1)
      throw new UserError({
        message: `--platform ${JSON.stringify(item)} is not PLATFORM=PATH`,
        hint: 'e.g. --platform linux/amd64=./dist/app-amd64',
      });
    return { platform: platformArg(item.slice(0, eq)), path: resolve(process.cwd(), item.slice(eq + 1)) };
  });
}

export function platformArg(text: string): string {
  const p = parsePlatform(text);
  if (typeof p === 'string') throw new UserError({ message: p, hint: 'e.g. --platform linux/arm64' });
  return formatPlatform(p);
}

/** `--annotation K=V` (repeatable), `--config FILE`, `--config-media-type T` → the push source's metadata. */
export function pushMetadata(opts: {
  annotation?: string[];
  config?: string;
  configMediaType?: string;
}): Pick<PushSource, 'annotations' | 'config'> {
  const annotations: Record<string, string> = {};
  for (const a of opts.annotation ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0)
      throw new UserError({ message: `--annotation ${JSON.stringify(a)} is not KEY=VALUE`, hint: 'e.g. --annotation com.acme.build=42' });
    const k = a.slice(0, eq);
    if (k in annotations) throw new UserError({ message: `--annotation ${k} is given twice` });
    annotations[k] = a.slice(eq + 1);
  }
  if (opts.configMediaType !== undefined && opts.config === undefined)
    throw new UserError({ message: '--config-media-type needs --config FILE' });
  let config: PushSource['config'];
  if (opts.config !== undefined) {
    const file = resolve(process.cwd(), opts.config);
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      throw new UserError({ message: `--config ${file} can't be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
    }
    try {
      JSON.parse(data.toString('utf8'));
    } catch (e) {
      throw new UserError({ message: `--config ${file} is not JSON (${(e as Error).message.split('\n')[0]})` });
    }
    config = { data, mediaType: opts.configMediaType ?? DEFAULT_CONFIG_MEDIA_TYPE };
  }
  return { ...(Object.keys(annotations).length ? { annotations } : {}), ...(config ? { config } : {}) };
}

/** This machine's platform, the way a host's is detected (`uname -s`, `uname -m`). */
export function localPlatform(): string {
  const out = `${execFileSync('uname', ['-s'], { encoding: 'utf8' })}${execFileSync('uname', ['-m'], { encoding: 'utf8' })}`;
  const p = platformFromUname(out);
  if (typeof p === 'string') throw new UserError({ message: `this machine: ${p}`, hint: 'name one with --platform' });
  return formatPlatform(p);
}

export interface PullTarget {
  desc: ArtifactDescriptor;
  /** Where this platform's payload goes (the -o path itself for a single one). */
  to: string;
}

/**
 * What a pull writes: one descriptor to `out` (a manifest; an index for `--platform P` or this
 * machine's platform), or with several `--platform`s / `--all-platforms` one per platform at
 * `<out>/<os>/<arch>[/<variant>]/<title>`.
 */
export async function pullTargets(
  reg: Registry,
  ref: { name: string; tag?: string; digest?: string },
  out: string,
  opts: { platform?: string[]; allPlatforms?: boolean },
): Promise<PullTarget[]> {
  const r = { ...(ref.tag !== undefined ? { tag: ref.tag } : {}), ...(ref.digest !== undefined ? { digest: ref.digest } : {}) };
  const wanted = (opts.platform ?? []).map(platformArg);
  if (opts.allPlatforms && wanted.length) throw new UserError({ message: '--all-platforms and --platform exclude each other' });
  if (new Set(wanted).size !== wanted.length) throw new UserError({ message: 'a --platform is given twice' });
  if (wanted.length === 1) return [{ desc: await reg.resolve(ref.name, r, { platform: wanted[0] }), to: out }];
  let list = wanted;
  let indexDigest: string | undefined;
  try {
    const d = await reg.resolve(ref.name, r);
    if (wanted.length || opts.allPlatforms)
      throw new UserError({
        message: `${ref.name} is not multi-platform (a single manifest, ${d.manifestDigest})`,
        hint: 'pull it without --platform',
      });
    return [{ desc: d, to: out }];
  } catch (e) {
    if (!(e instanceof PlatformNeeded)) throw e;
    indexDigest = e.indexDigest;
    if (opts.allPlatforms) list = e.platforms;
    if (list.length === 0) list = [localPlatform()];
    if (!opts.allPlatforms && wanted.length === 0)
      return [{ desc: { ...(await reg.resolve(ref.name, { digest: indexDigest }, { platform: list[0] })), ...r }, to: out }];
  }
  const targets: PullTarget[] = [];
  for (const p of list) {
    const desc = { ...(await reg.resolve(ref.name, { digest: indexDigest }, { platform: p })), ...r };
    targets.push({ desc, to: join(out, ...p.split('/'), desc.layer.title) });
  }
  return targets;
}
