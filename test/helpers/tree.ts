/** What a directory tree holds, to compare before / after a run or against the source it came from. */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The sha256 of some bytes, as hex. */
export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/**
 * Every entry below `dir` but directories, by path relative to it: a regular file as the sha256
 * of its bytes, a symbolic link as `link <target>`, anything else as `other`. A missing `dir`
 * throws, unless `missingIsEmpty` (then it holds nothing: `{}`).
 */
export function treeHashes(dir: string, opts: { missingIsEmpty?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[relative(dir, p)] = sha256(readFileSync(p));
      else out[relative(dir, p)] = e.isSymbolicLink() ? `link ${readlinkSync(p)}` : 'other';
    }
  };
  if (!opts.missingIsEmpty || existsSync(dir)) walk(dir);
  return out;
}
