/**
 * What `hades registry ls|inspect|push|pull|promote` do (registry-command.ts declares them;
 * this module loads only when one runs).
 */
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Hadesfile } from '../config/model.js';
import { formatDuration } from '../config/duration.js';
import { loadRegistryFiles as loadFiles, openForCli, printResult, refuseSecretMetadata } from './registry-output.js';
import { EXIT, RunError, UserError } from '../errors.js';
import { checkTarEntries } from '../registry/archive.js';
import { fetchArtifact, tempBeside, writeAtomically } from '../registry/fetch.js';
import { verifyStream } from '../registry/digest.js';
import { parseReference, type Reference } from '../registry/reference.js';
import { PlatformNeeded, type ArtifactDescriptor, type Registry } from '../registry/types.js';
import { platformArg, pullTargets, pushMetadata, pushPlatforms } from './registry-platforms.js';
import type { CommonOptions } from './options.js';

export interface RegOptions extends CommonOptions {
  output: 'plain' | 'json';
}

export function registryOf(hf: Hadesfile, name: string): Registry {
  const spec = hf.registries.get(name);
  if (!spec) {
    const names = [...hf.registries.keys()];
    throw new UserError({
      message: `unknown registry "${name}"`,
      hint: names.length ? `registries: ${names.join(', ')}` : `no registries are declared in ${hf.files.join(', ')}`,
    });
  }
  return openForCli(spec);
}

export function ref(text: string, needTag: boolean): Reference {
  const r = parseReference(text);
  if (typeof r === 'string') throw new UserError({ message: `${JSON.stringify(text)}: ${r}`, hint: 'write NAME:TAG (or NAME@sha256:…)' });
  if (needTag && r.tag === undefined) throw new UserError({ message: `${JSON.stringify(text)} has no tag`, hint: 'write NAME:TAG' });
  if (r.tag === undefined && r.digest === undefined)
    throw new UserError({ message: `${JSON.stringify(text)} has no tag or digest`, hint: 'write NAME:TAG or NAME@sha256:…' });
  return r;
}

/** A result on stdout, secrets scrubbed (registry-output.ts). */
export function print(opts: RegOptions, json: unknown, text: string): void {
  printResult(opts.output, json, text);
}

/** A handler returns its exit code; a failure that is not a user mistake becomes a RunError (exit 1). */
export function wrap<A extends unknown[]>(fn: (...a: A) => Promise<void>) {
  return async (...a: A): Promise<number> => {
    try {
      await fn(...a);
      return EXIT.ok;
    } catch (e) {
      if (e instanceof UserError || e instanceof RunError) throw e;
      throw new RunError((e as Error).message, { cause: e });
    }
  };
}

function describe(d: ArtifactDescriptor): string {
  return [
    `${d.name}${d.tag ? `:${d.tag}` : ''} in registry "${d.registry}"`,
    ...(d.index ? [`  index:         ${d.index.digest} (${d.index.platforms.join(', ')})`, `  platform:      ${d.platform}`] : []),
    `  digest:        ${d.manifestDigest}`,
    `  artifact type: ${d.artifactType}`,
    `  created:       ${d.created ?? '-'}`,
    `  payload:       ${d.layer.title} (${d.layer.directory ? 'directory, tar+gzip' : d.layer.mediaType}), ${d.layer.size} bytes, ${d.layer.digest}`,
    ...(d.config ? [`  config:        ${d.config.mediaType}, ${d.config.size} bytes, ${d.config.digest}`] : []),
    ...Object.entries(d.annotations).map(([k, v]) => `  ${k}: ${v}`),
  ].join('\n');
}

/** `registry pull --offline`: the artifact from the cache only (a digest is required; the payload is verified as it is copied). */
async function fromCache(
  regName: string,
  r: Reference,
  cacheDir: string | undefined,
  verify: { allowedSigners: string } | undefined,
): Promise<{ d: ArtifactDescriptor; fetch: (path: string) => Promise<void> }> {
  if (r.digest === undefined)
    throw new UserError({
      message: `--offline: ${r.name}:${r.tag} needs its tag resolved by registry "${regName}"`,
      hint: 'give the digest: NAME@sha256:… (hades cache ls lists the cached ones)',
    });
  const [{ checkCached, descriptorOf, blobPathIn, cachedSignatures }, { defaultCacheDir }] = await Promise.all([
    import('../engine/cache.js'),
    import('../engine/artifacts.js'),
  ]);
  const dir = cacheDir ? resolve(process.cwd(), cacheDir) : defaultCacheDir();
  const got = await checkCached(dir, r.digest);
  if ('missing' in got)
    throw new UserError({
      message: `--offline: ${r.name}@${r.digest}: ${got.missing} (${dir})`,
      hint: 'pull it once without --offline in a plan run (that fills the cache), or give --cache-dir',
    });
  const d = descriptorOf(got.record, regName, r.name);
  // The cache is keyed by digest, not by registry: bytes cached from an open registry must
  // not pass for this one's. Its verify: checks the signatures an online run kept, as a plan's
  // --offline pull does (engine/artifacts.ts verifySignature).
  if (verify) {
    const { verifySignatures, refusal } = await import('../registry/trust.js');
    const outcome = await verifySignatures(
      await cachedSignatures(dir, r.digest),
      r.name,
      r.digest,
      verify.allowedSigners,
      'no signature in the cache (--offline verifies only signatures an online run of this machine has read)',
    );
    if (!outcome.ok) throw refusal(regName, `${r.name}@${r.digest}`, r.digest, verify.allowedSigners, outcome);
  }
  const blob = blobPathIn(dir, d.layer.digest);
  return {
    d,
    fetch: async (path) =>
      writeAtomically(path, createReadStream(blob).pipe(verifyStream(d.layer, `cached payload of ${r.name}@${r.digest}`, blob))),
  };
}

export const handlers = {
  ls: wrap(async (regName: string, name: string | undefined, opts: RegOptions) => {
    const hf = loadFiles(opts);
    const reg = registryOf(hf, regName);
    if (!name) {
      const names = await reg.names();
      print(opts, { registry: regName, names }, names.join('\n'));
      return;
    }
    const tags = await reg.tags(name);
    const { signedBy } = await import('./registry-trust.js');
    const signed = new Map<string, string[]>();
    for (const t of tags)
      if (!signed.has(t.manifestDigest)) signed.set(t.manifestDigest, await signedBy(hf.registries.get(regName)!, name, t.manifestDigest));
    print(
      opts,
      { registry: regName, name, tags: tags.map((t) => ({ ...t, signatures: signed.get(t.manifestDigest) ?? [] })) },
      tags
        .map(
          (t) =>
            `${t.tag}\t${t.manifestDigest}\t${t.size}\t${t.created ?? '-'}${t.mutable ? '\t(mutable alias)' : ''}${t.platforms ? `\t(${t.platforms.join(', ')})` : ''}${signed.get(t.manifestDigest)?.length ? `\tsigned by ${signed.get(t.manifestDigest)!.join(', ')}` : ''}`,
        )
        .join('\n'),
    );
  }),
  inspect: wrap(async (regName: string, text: string, opts: RegOptions & { platform?: string }) => {
    const r = ref(text, false);
    const hf = loadFiles(opts);
    const reg = registryOf(hf, regName);
    try {
      const d = await reg.resolve(r.name, r, opts.platform !== undefined ? { platform: platformArg(opts.platform) } : {});
      const signed = await (await import('./registry-trust.js')).signedBy(hf.registries.get(regName)!, r.name, d.manifestDigest);
      print(
        opts,
        { ...d, signatures: signed },
        `${describe(d)}\n  signed by:     ${signed.length ? signed.join('\n                 ') : '(no signature)'}`,
      );
    } catch (e) {
      if (!(e instanceof PlatformNeeded)) throw e;
      // A multi-platform artifact: the index and every platform's entry.
      const entries = [];
      for (const p of e.platforms) entries.push({ ...(await reg.resolve(r.name, { digest: e.indexDigest }, { platform: p })), ...r });
      const index = entries[0]?.index;
      print(
        opts,
        {
          registry: regName,
          name: r.name,
          ...(r.tag ? { tag: r.tag } : {}),
          indexDigest: e.indexDigest,
          annotations: index?.annotations ?? {},
          platforms: entries,
        },
        [
          `${r.name}${r.tag ? `:${r.tag}` : ''} in registry "${regName}": multi-platform (OCI image index)`,
          `  index:         ${e.indexDigest}`,
          ...Object.entries(index?.annotations ?? {}).map(([k, v]) => `  ${k}: ${v}`),
          ...entries.map((d) => `\n${describe(d)}`),
        ].join('\n'),
      );
    }
  }),
  push: wrap(
    async (
      regName: string,
      path: string,
      refText: string | undefined,
      opts: RegOptions & {
        tag: string[];
        semverAliases: boolean;
        artifactType?: string;
        platform: string[];
        annotation: string[];
        config?: string;
        configMediaType?: string;
      },
    ) => {
      if (opts.platform.length && refText !== undefined)
        throw new UserError({
          message: `registry push takes a path or --platform, not both (${JSON.stringify(path)} and ${opts.platform.length} --platform)`,
          hint: 'with --platform, leave the path out: hades registry push REGISTRY --platform os/arch=PATH … NAME:TAG',
        });
      if (!opts.platform.length && refText === undefined)
        throw new UserError({
          message: "missing required argument 'ref' (run with --help for usage)",
          hint: 'hades registry push REGISTRY PATH NAME:TAG, or REGISTRY --platform os/arch=PATH … NAME:TAG',
        });
      const text = refText ?? path;
      const r = ref(text, true);
      const t0 = Date.now();
      const hf = loadFiles(opts);
      const reg = registryOf(hf, regName);
      const trust = await import('./registry-trust.js');
      const common = { ...(opts.artifactType ? { artifactType: opts.artifactType } : {}), ...pushMetadata(opts) };
      refuseSecretMetadata(common.annotations, common.config?.data, opts.config);
      const pushOpts = { extraTags: opts.tag, semverAliases: opts.semverAliases };
      if (opts.platform.length) {
        const res = await reg.pushIndex(r.name, r.tag!, { ...common, platforms: pushPlatforms(opts.platform) }, pushOpts);
        // Each platform's manifest is signed (what a pull of one platform verifies).
        for (const p of res.platforms) await trust.signByDefault(hf.registries.get(regName)!, reg, r.name, p.descriptor.manifestDigest);
        print(
          opts,
          { ...res, durationMs: Date.now() - t0 },
          `${res.unchanged ? 'unchanged' : 'pushed'} ${r.name}:${r.tag} = ${res.indexDigest} (${res.platforms.map((p) => p.platform).join(', ')}; ${formatDuration(Date.now() - t0)})`,
        );
        return;
      }
      const res = await reg.push(r.name, r.tag!, { path: resolve(process.cwd(), path), ...common }, pushOpts);
      const signed = await trust.signByDefault(hf.registries.get(regName)!, reg, r.name, res.descriptor.manifestDigest);
      print(
        opts,
        { ...res, durationMs: Date.now() - t0 },
        `${res.unchanged ? 'unchanged' : 'pushed'} ${r.name}:${r.tag} = ${res.descriptor.manifestDigest}${signed} (${formatDuration(Date.now() - t0)})`,
      );
    },
  ),
  pull: wrap(
    async (
      regName: string,
      text: string,
      opts: RegOptions & {
        out?: string;
        to?: string;
        platform: string[];
        allPlatforms: boolean;
        configOnly: boolean;
        offline?: boolean;
        cacheDir?: string;
      },
    ) => {
      const dest = opts.out ?? opts.to;
      if (!dest) throw new UserError({ message: 'registry pull needs a destination', hint: 'add -o PATH' });
      const r = ref(text, false);
      const hf = loadFiles(opts);
      if (opts.offline) {
        if (opts.platform.length || opts.allPlatforms || opts.configOnly)
          throw new UserError({
            message: '--offline reads one cached artifact by digest: --platform, --all-platforms and --config-only need the registry',
            hint: 'pull NAME@sha256:… of the platform you want (hades cache ls lists them)',
          });
        if (!hf.registries.has(regName)) registryOf(hf, regName); // the unknown-registry message
        const { d, fetch } = await fromCache(regName, r, opts.cacheDir, hf.registries.get(regName)!.verify);
        const to = resolve(process.cwd(), dest);
        await pullOne(fetch, text, d, to);
        print(opts, { ...d, path: to }, `pulled ${text} (${d.manifestDigest}) to ${to}`);
        return;
      }
      const reg = registryOf(hf, regName);
      const trust = await import('./registry-trust.js');
      if (opts.configOnly && (opts.allPlatforms || opts.platform.length > 1))
        throw new UserError({ message: '--config-only writes one config: give at most one --platform' });
      const targets = await pullTargets(reg, r, resolve(process.cwd(), dest), opts);
      // A registry with verify: refuses (writing nothing) what no allowed principal signed.
      for (const t of targets) await trust.verifyByDefault(hf.registries.get(regName)!, reg, text, r.name, t.desc.manifestDigest);
      if (opts.configOnly) {
        const d = targets[0]!.desc;
        const to = targets[0]!.to;
        await mkdir(dirname(to), { recursive: true });
        const tmp = tempBeside(to);
        try {
          await writeFile(tmp, await reg.readConfig(d), { flag: 'wx', mode: 0o644 });
          await rename(tmp, to);
        } finally {
          await rm(tmp, { force: true });
        }
        print(opts, { ...d, path: to }, `wrote the config of ${text} (${d.config?.digest ?? 'the empty config'}) to ${to}`);
        return;
      }
      for (const t of targets) await pullOne((path) => fetchArtifact(reg, t.desc, path), text, t.desc, t.to);
      const line = (t: (typeof targets)[number]) =>
        `pulled ${text}${t.desc.platform ? ` ${t.desc.platform}` : ''} (${t.desc.manifestDigest}) to ${t.to}`;
      if (targets.length === 1) print(opts, { ...targets[0]!.desc, path: targets[0]!.to }, line(targets[0]!));
      else
        print(
          opts,
          { registry: regName, name: r.name, platforms: targets.map((t) => ({ ...t.desc, path: t.to })) },
          targets.map(line).join('\n'),
        );
    },
  ),
  promote: wrap(async (from: string, toName: string, text: string, opts: RegOptions & { as?: string }) => {
    const r = ref(text, true);
    const hf = loadFiles(opts);
    const [src, dst] = [registryOf(hf, from), registryOf(hf, toName)];
    // A multi-platform artifact is copied as its image index (same digest), every platform's manifest with it.
    const res = await (await import('../registry/index-copy.js')).promoteArtifact(src, dst, r.name, r.tag!, opts.as);
    // Signatures (OCI referrers) travel with each manifest; the destination's sign_with adds its own.
    const { copySignatures } = await import('../registry/trust.js');
    const { signByDefault } = await import('./registry-trust.js');
    let copied = 0;
    let signed = '';
    for (const m of res.manifests) {
      copied += await copySignatures(src, dst, r.name, m);
      signed = (await signByDefault(hf.registries.get(toName)!, dst, r.name, m)) || signed;
    }
    const platforms = res.index ? ` (${res.index.platforms.map((p) => p.platform).join(', ')})` : '';
    print(
      opts,
      { ...(res.single ?? { indexDigest: res.digest, ...res.index }), signaturesCopied: copied },
      `${res.unchanged && !copied ? 'unchanged' : 'promoted'} ${r.name}:${opts.as ?? r.tag} in "${toName}" = ${res.digest}${platforms}${copied ? ` (+ ${copied} signature(s))` : ''}${signed}`,
    );
  }),
};

/** One payload to `to`: a file straight there (verified, temp + rename), a directory extracted after its entries are checked. */
/** Writes one artifact to `to` (`fetch` writes the verified payload to a path: from the registry, or the cache). */
async function pullOne(fetch: (path: string) => Promise<void>, text: string, d: ArtifactDescriptor, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  if (!d.layer.directory) {
    // Straight to the destination: verified, through a temp file beside it, renamed when complete.
    await fetch(to);
  } else {
    const tmp = tempBeside(to);
    try {
      await fetch(tmp);
      const problems = await checkTarEntries(tmp, { root: d.layer.title });
      if (problems.length) throw new RunError(`refusing to extract ${text}: ${problems.map((p) => p.message).join('; ')}`);
      const dir = `${tmp}.d`;
      await mkdir(dir);
      execFileSync('tar', ['-xzf', tmp, '-C', dir, '--no-same-owner', '--strip-components=1']);
      if (await stat(to).catch(() => undefined)) await rm(to, { recursive: true });
      await rename(dir, to);
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}.d`, { recursive: true, force: true });
    }
  }
}
