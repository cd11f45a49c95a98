/**
 * Pure builders for the generated commands (mkdir, file delivery). Every value is quoted.
 * The same strings run on SSH hosts and on the local shell. Tested as exact strings.
 */
import { dirname, basename } from 'node:path/posix';
import { becomeWrap, octal, quote } from '../transport/shell.js';

export interface Ownership {
  owner?: string;
  group?: string;
}

/** `stat` format and expected value for the ownership that was asked for, if any. */
function ownershipTest(o: Ownership, file: string): string {
  if (!o.owner && !o.group) return '';
  const fmt = o.owner && o.group ? '%U:%G' : o.owner ? '%U' : '%G';
  const want = o.owner && o.group ? `${o.owner}:${o.group}` : (o.owner ?? o.group)!;
  return ` && [ "$(stat -c ${fmt} ${file})" = ${quote(want)} ]`;
}

function chownCmd(o: Ownership, file: string): string {
  if (!o.owner && !o.group) return '';
  const spec = o.owner ? (o.group ? `${o.owner}:${o.group}` : o.owner) : `:${o.group}`;
  return `chown ${quote(spec)} ${file} && `;
}

/** `stat -c %a` prints modes without the leading zero (644, 4755). */
function statMode(mode: number): string {
  return mode.toString(8);
}

const SHA = `sha256sum`;

/**
 * mkdir: idempotent; converges mode (and owner/group when given).
 * Prints "unchanged" when the directory already is as asked, else creates/fixes it and prints "changed".
 */
export function mkdirCommand(path: string, mode: number, own: Ownership, become?: string): string {
  const p = quote(path);
  const script =
    `if [ -d ${p} ] && [ "$(stat -c %a ${p})" = ${statMode(mode)} ]${ownershipTest(own, p)}; then echo unchanged; ` +
    `else mkdir -p ${p} && chmod ${octal(mode)} ${p} && ${chownCmd(own, p)}echo changed; fi`;
  return becomeWrap(script, become);
}

/** Temp file name beside the destination, unique per run and action; shown in dry-run. */
export function tempPathFor(dst: string, runId: string, actionIndex: number): string {
  return `${dirname(dst)}/.${basename(dst)}.hades-tmp-${runId}-${actionIndex}`;
}

/**
 * The check before sending bytes. Exit 3 + message when the parent directory is missing.
 * Prints "unchanged" when dst is a regular file with this sha256, mode (and owner);
 * "meta" when only mode/owner differ (fixed without sending bytes); else "changed".
 */
export function fileCheckCommand(dst: string, sha256: string, mode: number, own: Ownership, become?: string): string {
  const f = quote(dst);
  const d = quote(dirname(dst));
  const script =
    `if [ ! -d ${d} ]; then echo ${quote(`parent directory ${dirname(dst)} does not exist`)} >&2; exit 3; fi; ` +
    `if [ -f ${f} ] && [ ! -L ${f} ] && [ "$(${SHA} ${f} | cut -d ' ' -f 1)" = ${sha256} ]; then ` +
    `if [ "$(stat -c %a ${f})" = ${statMode(mode)} ]${ownershipTest(own, f)}; then echo unchanged; else echo meta; fi; ` +
    `else echo changed; fi`;
  return becomeWrap(script, become);
}

/** Brings an existing file with the right content to the right mode and ownership. */
export function fileMetaCommand(dst: string, mode: number, own: Ownership, become?: string): string {
  const f = quote(dst);
  return becomeWrap(`chmod ${octal(mode)} ${f}${own.owner || own.group ? ` && ${chownCmd(own, f).replace(/ && $/, '')}` : ''}`, become);
}

/**
 * Receives the bytes on stdin into `tmp` (beside dst, private until renamed), fsyncs it,
 * verifies sha256 on the host, applies mode and ownership, then renames over dst (atomic).
 * Any failure or interruption removes the temp file; dst is either old or new, never partial.
 */
export function fileWriteCommand(dst: string, tmp: string, sha256: string, mode: number, own: Ownership, become?: string): string {
  const f = quote(dst);
  const t = quote(tmp);
  const script =
    `trap 'rm -f ${t}' EXIT; trap 'exit 1' HUP INT TERM PIPE; umask 077; ` +
    `cat > ${t} && sync ${t} && s=$(${SHA} ${t} | cut -d ' ' -f 1) && ` +
    `if [ "$s" != ${sha256} ]; then echo "checksum mismatch on host: expected ${sha256}, got $s" >&2; exit 4; fi && ` +
    `chmod ${octal(mode)} ${t} && ${chownCmd(own, t)}mv -f ${t} ${f} && trap - EXIT`;
  return becomeWrap(script, become);
}

/**
 * Directory delivery check: the marker file `.hades-artifact` inside `to` names the
 * artifact digest that was extracted there. Exit 3 when the parent directory is missing.
 */
export function dirCheckCommand(to: string, digest: string, become?: string): string {
  const d = quote(to);
  const parent = quote(dirname(to));
  const script =
    `if [ ! -d ${parent} ]; then echo ${quote(`parent directory ${dirname(to)} does not exist`)} >&2; exit 3; fi; ` +
    `if [ -d ${d} ] && [ "$(cat ${quote(`${to}/.hades-artifact`)} 2>/dev/null)" = ${quote(digest)} ]; then echo unchanged; else echo changed; fi`;
  return becomeWrap(script, become);
}

/**
 * Receives a tar (gzip'd when `gzip`) on stdin beside `to`, verifies its sha256 on the host,
 * extracts it into a fresh temp directory (`--strip-components` drops the archive's top
 * directory), writes the marker, then swaps it into place: the old directory is moved
 * aside and removed only after the new one is in. Entries were checked on the orchestrator
 * before any byte was sent (no absolute paths, no `..`, no links leaving the root).
 */
export function dirWriteCommand(
  to: string,
  tmp: string,
  sha256: string,
  digest: string,
  opts: { gzip: boolean; stripComponents: number; owner?: string; group?: string },
  become?: string,
): string {
  const d = quote(to);
  const t = quote(tmp);
  const a = quote(`${tmp}.tar`);
  const old = quote(`${tmp}.old`);
  const own = { owner: opts.owner, group: opts.group };
  const chown = own.owner || own.group ? `chown -R ${quote(own.owner ? (own.group ? `${own.owner}:${own.group}` : own.owner) : `:${own.group}`)} ${t} && ` : '';
  const script =
    `trap 'rm -rf ${t} ${a}' EXIT; trap 'exit 1' HUP INT TERM PIPE; umask 022; ` +
    `cat > ${a} && s=$(${SHA} ${a} | cut -d ' ' -f 1) && ` +
    `if [ "$s" != ${sha256} ]; then echo "checksum mismatch on host: expected ${sha256}, got $s" >&2; exit 4; fi && ` +
    `mkdir ${t} && tar -x${opts.gzip ? 'z' : ''}f ${a} -C ${t} --no-same-owner${opts.stripComponents ? ` --strip-components=${opts.stripComponents}` : ''} && rm -f ${a} && ` +
    `printf '%s\\n' ${quote(digest)} > ${quote(`${tmp}/.hades-artifact`)} && ${chown}` +
    `if [ -e ${d} ]; then mv ${d} ${old} && mv ${t} ${d} && rm -rf ${old}; else mv ${t} ${d}; fi && trap - EXIT`;
  return becomeWrap(script, become);
}
