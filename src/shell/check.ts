/**
 * Read-only probes for `hades plan --check`: what a file, directory or extracted artifact
 * looks like on the host now, without changing anything. Each probe walks to the parent
 * directory with the very trusted-directory check the writing commands use (TRUSTED_WALK,
 * in its read-only form: a missing component is reported, never created), so a directory
 * the real run would refuse is reported as such and nothing behind a planted link is read.
 * Read-only by construction: only `stat`, `readlink`, `[ -x ]` tests, sha256, `head -c`
 * (regular files only); no mktemp, no mkdir, no redirection into a file. Exact-string tests
 * in test/unit/check-probe.test.ts.
 */
import { basename, dirname } from 'node:path/posix';
import { becomeWrap, quote } from './command.js';
import { sha256Of, TRUSTED_WALK } from './delivery.js';

/** What the walk prints (stderr, exit 3) for a parent that does not exist (or is not a directory). */
export const PROBE_MISSING = 'hades-check: missing parent directory';

/** The first line a probe prints when it got past the walk. */
export type ProbeHead =
  | { type: 'absent' }
  | { type: 'link' }
  | { type: 'dir'; mode: string; owner: string; group: string; marker?: string; foreign?: true }
  | { type: 'file'; sha256: string; mode: string; owner: string; group: string; size: number; foreign?: true }
  | { type: 'other' };

/** `c` = the trusted physical parent of `path`; exit 3 with PROBE_MISSING when it does not exist, with the refusal when it is not trusted. */
function walkParent(path: string): string {
  return `${TRUSTED_WALK}hades_walk ${quote(dirname(path))} ${quote(PROBE_MISSING)}; `;
}

/**
 * A file destination (copy, template, pull of a file artifact): prints one line
 * `absent` | `link` | `dir` | `other` | `file SHA256 MODE OWNER GROUP SIZE`; after a `file`
 * line whose sha256 is not `sha256` and whose size is at most `cap` bytes, the file's bytes
 * follow (for the diff). `cap` 0: never any bytes.
 * In a sticky world-writable parent (like /tmp: `k` = 514) a file owned by another user than
 * root and the command's own is never read: its owner can swap it for a symlink between the
 * `-L` test and `head` (to a file only root may read, whose bytes would land in the diff); the
 * line ends with ` foreign` instead and no bytes follow.
 */
export function fileProbeCommand(dst: string, sha256: string, cap: number, become?: string): string {
  const f = '"$f"';
  const n = Math.max(0, Math.floor(cap));
  const script =
    `${walkParent(dst)}f=\${c%/}/${quote(basename(dst))}; ` +
    `if [ -L ${f} ]; then echo link; elif [ -d ${f} ]; then echo dir; elif [ -f ${f} ]; then ` +
    `set -- $(stat -c '%a %U %G %s %u' -- ${f}) && s=$(${sha256Of(f)}) && ` +
    `if [ "$k" = 514 ] && [ "$5" != 0 ] && [ "$5" != "$u" ]; then echo "file $s $1 $2 $3 $4 foreign"; else echo "file $s $1 $2 $3 $4" && ` +
    `if [ "$s" != ${quote(sha256 || '-')} ] && [ "$4" -le ${n} ]; then head -c ${n} -- ${f}; fi; fi; ` +
    `elif [ -e ${f} ]; then echo other; else echo absent; fi`;
  return becomeWrap(script, become);
}

/** A directory (mkdir): `absent` | `link` | `other` | `dir MODE OWNER GROUP`. */
export function dirProbeCommand(path: string, become?: string): string {
  const x = '"$x"';
  const script =
    `${walkParent(path)}x=\${c%/}/${quote(basename(path))}; ` +
    `if [ -L ${x} ]; then echo link; elif [ -d ${x} ]; then echo "dir $(stat -c '%a %U %G' -- ${x})"; ` +
    `elif [ -e ${x} ]; then echo other; else echo absent; fi`;
  return becomeWrap(script, become);
}

/**
 * An extracted artifact directory (pull): like dirProbeCommand, and a `dir` line ends with
 * the first line of its `.hades-artifact` marker (the digest the delivery wrote) when that
 * is a regular file — the same marker the real run compares. In a sticky world-writable
 * parent, a directory of another user than root, the command's and `owner` ends with
 * ` foreign`: the real run does not take its marker (delivery.ts ownDirTest).
 */
export function artifactDirProbeCommand(to: string, become?: string, owner?: string): string {
  const d = '"$d"';
  const m = '"$d/.hades-artifact"';
  const st = `"$(stat -c %u -- ${d})"`;
  const script =
    `${walkParent(to)}d=\${c%/}/${quote(basename(to))}; ` +
    `if [ -L ${d} ]; then echo link; elif [ -d ${d} ]; then ` +
    `z=; if [ "$k" = 514 ] && [ ${st} != 0 ] && [ ${st} != "$u" ]${owner ? ` && [ "$(stat -c %U -- ${d})" != ${quote(owner)} ]` : ''}; then z=' foreign'; fi; ` +
    `if [ -f ${m} ] && [ ! -L ${m} ]; then echo "dir $(stat -c '%a %U %G' -- ${d}) $(head -c 200 -- ${m} | head -n 1)$z"; ` +
    `else echo "dir $(stat -c '%a %U %G' -- ${d})$z"; fi; ` +
    `elif [ -e ${d} ]; then echo other; else echo absent; fi`;
  return becomeWrap(script, become);
}

/** Parses a probe's first line (undefined: not a probe answer). */
export function parseProbeHead(line: string): ProbeHead | undefined {
  const w = line.trim().split(' ');
  switch (w[0]) {
    case 'absent':
    case 'link':
    case 'other':
      return w.length === 1 ? { type: w[0] } : undefined;
    case 'dir': {
      if (w.length === 1) return { type: 'dir', mode: '', owner: '', group: '' };
      const foreign = w.length > 4 && w[w.length - 1] === 'foreign';
      if (foreign) w.pop();
      if (w.length !== 4 && w.length !== 5) return undefined;
      return {
        type: 'dir',
        mode: w[1]!,
        owner: w[2]!,
        group: w[3]!,
        ...(w[4] ? { marker: w[4] } : {}),
        ...(foreign ? { foreign: true as const } : {}),
      };
    }
    case 'file':
      if (!(w.length === 6 || (w.length === 7 && w[6] === 'foreign')) || !/^[0-9a-f]{64}$/.test(w[1]!) || !/^\d+$/.test(w[5]!))
        return undefined;
      return {
        type: 'file',
        sha256: w[1]!,
        mode: w[2]!,
        owner: w[3]!,
        group: w[4]!,
        size: Number(w[5]),
        ...(w[6] === 'foreign' ? { foreign: true as const } : {}),
      };
    default:
      return undefined;
  }
}
