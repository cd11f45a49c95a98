/**
 * `hades cache ls [--output json]` and `hades cache prune [--older-than 30d] [--keep-last N]`:
 * the local artifact cache (engine/cache.ts keeps its records; loaded only when one runs).
 */
import { terminalSafe } from '../terminal.js';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { parseDuration } from '../config/duration.js';
import { EXIT, UserError } from '../errors.js';

interface CacheOptions {
  cacheDir?: string;
  output: 'plain' | 'json';
  olderThan?: string;
  keepLast?: string;
}

/** What prune does without --older-than / --keep-last. */
export const DEFAULT_OLDER_THAN = '30d';

/** A duration with days: 30d, 1d12h, or any hadesfile duration (12h, 90m). */
export function parseAge(text: string): number | undefined {
  const m = /^(?:(\d+)d)?(.*)$/.exec(text.trim());
  if (!m || (m[1] === undefined && !m[2])) return undefined;
  const days = m[1] !== undefined ? Number(m[1]) * 86_400_000 : 0;
  if (!m[2]) return days;
  const rest = parseDuration(m[2]);
  return rest === undefined ? undefined : days + rest;
}

async function dirOf(opts: CacheOptions): Promise<string> {
  if (opts.cacheDir) return resolve(process.cwd(), opts.cacheDir);
  const { defaultCacheDir } = await import('../engine/artifacts.js');
  return defaultCacheDir();
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

async function ls(opts: CacheOptions): Promise<number> {
  const dir = await dirOf(opts);
  const { listCache } = await import('../engine/cache.js');
  const entries = await listCache(dir);
  if (opts.output === 'json') {
    const list = entries.map((e) => ({ ...e, lastUsed: new Date(e.lastUsed).toISOString() }));
    process.stdout.write(`${JSON.stringify({ cacheDir: dir, entries: list })}\n`);
    return EXIT.ok;
  }
  const lines = entries.map((e) => {
    const what = e.damaged
      ? '- (a damaged record: prune removes it)'
      : e.orphan
        ? '- (a payload no record names)'
        : `${e.name}:${e.tag ?? '-'} (registry "${e.registry}")`;
    return `${e.digest}\t${e.size}\t${what}\t${iso(e.lastUsed)}${e.present || e.damaged ? '' : '\t(payload not in the cache)'}`;
  });
  process.stdout.write(`${terminalSafe(lines.length ? lines.join('\n') : `(the cache ${dir} is empty)`)}\n`);
  return EXIT.ok;
}

async function prune(opts: CacheOptions): Promise<number> {
  const problems: { message: string; hint: string }[] = [];
  const given = opts.olderThan ?? (opts.keepLast === undefined ? DEFAULT_OLDER_THAN : undefined);
  const olderThanMs = given !== undefined ? parseAge(given) : undefined;
  if (given !== undefined && olderThanMs === undefined)
    problems.push({ message: `--older-than ${JSON.stringify(given)} is not a duration`, hint: 'e.g. 30d, 12h, 90m' });
  const keepLast = opts.keepLast !== undefined ? Number(opts.keepLast) : undefined;
  if (keepLast !== undefined && !(Number.isInteger(keepLast) && keepLast >= 0 && /^\d+$/.test(opts.keepLast!)))
    problems.push({ message: `--keep-last ${JSON.stringify(opts.keepLast)} is not a whole number`, hint: 'e.g. --keep-last 3' });
  if (problems.length) throw new UserError(problems);
  const dir = await dirOf(opts);
  const { pruneCache } = await import('../engine/cache.js');
  const res = await pruneCache(dir, {
    ...(olderThanMs !== undefined ? { olderThanMs } : {}),
    ...(keepLast !== undefined ? { keepLast } : {}),
  });
  if (opts.output === 'json') {
    process.stdout.write(
      `${JSON.stringify({
        cacheDir: dir,
        removed: res.removed.map((e) => ({ ...e, lastUsed: new Date(e.lastUsed).toISOString() })),
        blobs: res.blobs,
        bytes: res.bytes,
        ...(res.inUseSince !== undefined ? { inUseSince: new Date(res.inUseSince).toISOString() } : {}),
      })}\n`,
    );
    return EXIT.ok;
  }
  const out = res.removed.map(
    (e) => `removed ${e.digest}\t${e.orphan || e.damaged ? '-' : `${e.name}:${e.tag ?? '-'}`}\tlast used ${iso(e.lastUsed)}`,
  );
  out.push(
    `${res.removed.length} entr${res.removed.length === 1 ? 'y' : 'ies'}, ${res.blobs.length} payload(s), ${res.bytes} bytes removed from ${dir}`,
  );
  if (res.inUseSince !== undefined) out.push(`kept everything used since ${iso(res.inUseSince)}: a run using the cache is still going`);
  process.stdout.write(`${terminalSafe(out.join('\n'))}\n`);
  return EXIT.ok;
}

export function cacheCommand(done: (code: number) => void): Command {
  const dirOpt = (c: Command) =>
    c
      .option('--cache-dir <dir>', 'the local artifact cache (default $XDG_CACHE_HOME/hades, else ~/.cache/hades)')
      .addOption(new Option('--output <mode>', 'plain or json').choices(['plain', 'json']).default('plain'));
  return new Command('cache')
    .description('the local artifact cache: what it holds, and removing what is no longer used')
    .addHelpText(
      'after',
      `
Runs keep every payload they read, verified, in the cache (content-addressed, re-verified on
every use), with one record per manifest digest: name:tag last seen, registry, last used.
\`hades plan --offline\` and \`hades registry pull --offline\` read from it only. prune never
removes anything used since a run that is still using the cache began (each such run has a
marker in <cache>/in-use; a killed run's marker is removed once its process is provably gone).`,
    )
    .addCommand(
      dirOpt(new Command('ls'))
        .description('every cached artifact: digest, size, name:tag last seen (and registry), last used; newest first')
        .action(async (opts: CacheOptions) => done(await ls(opts))),
    )
    .addCommand(
      dirOpt(new Command('prune'))
        .description(
          `remove what was last used longer ago than --older-than (default ${DEFAULT_OLDER_THAN} when neither flag is given), keeping the --keep-last N most recently used digests of each artifact name`,
        )
        .option('--older-than <duration>', 'e.g. 30d, 12h: only what was last used longer ago than this')
        .option('--keep-last <N>', 'keep the N most recently used digests of each artifact name, whatever their age')
        .action(async (opts: CacheOptions) => done(await prune(opts))),
    );
}
