/**
 * Pure builders for the generated commands (mkdir, file delivery). Every value is quoted.
 * The same strings run on SSH hosts and on the local shell. Tested as exact strings.
 */
import { dirname, basename } from 'node:path/posix';
import { becomeWrap, octal, quote } from './command.js';

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

/**
 * In a sticky world-writable directory (`k` = 514) anyone may have created the name first: a
 * file there counts as already delivered only when root or the command's user owns it (with
 * `owner:` given, ownershipTest decides). Elsewhere only they can create entries.
 */
function ownFileTest(file: string): string {
  return `{ [ "$k" != 514 ] || [ "$(stat -c %u ${file})" = 0 ] || [ "$(stat -c %u ${file})" = "$u" ]; } && `;
}

function chownSpec(o: Ownership): string {
  return o.owner ? (o.group ? `${o.owner}:${o.group}` : o.owner) : `:${o.group}`;
}

/** `chown -h`: never follows a link (the path names what we created or verified). */
function chownCmd(o: Ownership, file: string): string {
  if (!o.owner && !o.group) return '';
  return `chown -h ${quote(chownSpec(o))} ${file} && `;
}

/** `stat -c %a` prints modes without the leading zero (644, 4755). */
function statMode(mode: number): string {
  return mode.toString(8);
}

/**
 * The sha256 (hex) of a file on the host: OpenSSL when the host has it (it uses the CPU's
 * SHA instructions: ~5x faster than coreutils on x86 with SHA-NI and on ARMv8), else
 * coreutils' sha256sum. Both print "<hex> <name>"; an openssl that is missing or fails
 * falls back to sha256sum, so the result never depends on which one ran.
 * `file` is a shell word, already quoted.
 */
export function sha256Of(file: string): string {
  return `{ openssl dgst -sha256 -r ${file} 2>/dev/null || sha256sum ${file}; } | cut -d ' ' -f 1`;
}

/**
 * The trusted-directory walk every writing command starts with (security issue 11). It
 * defines two shell functions and sets `u` (the uid this runs as):
 *  - `hades_ck DIR`: DIR (`stat -L`) must be owned by root or by `u`, not group-writable
 *    unless its group is root, not other-writable unless sticky (like /tmp); otherwise
 *    exit 3 with a message naming DIR, its owner and mode, and a hint. Sets `k=514` when
 *    DIR is sticky and other-writable (entries there can belong to other users);
 *  - `hades_walk PATH [MISSING]`: resolves PATH component by component from `/`, checking
 *    every directory it passes through — also those inside symlink targets (a link is
 *    followed by walking its target, so a link is only as safe as the directories around
 *    it) — and leaves `c` = the physical, trusted directory. A missing component: exit 3
 *    with MISSING; without MISSING (mkdir) it is created (umask 022, owned by `u`).
 * Once `c` is trusted, nobody but root and `u` can rename or plant entries in it (in a
 * sticky one, only among their own entries): every later step works inside `c`.
 * The same rule holds whoever runs it: it protects a non-root deploy user's files too.
 */
export const TRUSTED_WALK =
  'u=$(id -u); ' +
  'hades_ck() { set -- "$1" $(stat -L -c "%u %g %a %U %G" -- "$1"); [ $# = 6 ] || exit 3; k=$(( 0$4 & 01002 )); ' +
  'if { [ "$2" = 0 ] || [ "$2" = "$u" ]; } && { [ $(( 0$4 & 020 )) = 0 ] || [ "$3" = 0 ]; } && { [ $(( 0$4 & 02 )) = 0 ] || [ $k = 514 ]; }; then return 0; fi; ' +
  'printf "refusing to write under %s: it is owned by %s:%s with mode %s, so a user other than %s could redirect the write; ' +
  'deliver as that user (become: %s), or make %s owned by root and not writable by group or others\\n" "$1" "$5" "$6" "$4" "$([ "$u" = 0 ] && echo root || echo "root and $(id -un)")" "$5" "$1" >&2; exit 3; }; ' +
  'hades_walk() { c=/; hades_ck /; w=${1#/}; n=0; while [ -n "$w" ]; do p=${w%%/*}; case $w in */*) w=${w#*/};; *) w=;; esac; ' +
  'case $p in ""|.) continue;; ..) c=${c%/*}; c=${c:-/}; hades_ck "$c"; continue;; esac; x=${c%/}/$p; ' +
  'if [ -L "$x" ]; then n=$((n+1)); [ $n -le 40 ] || { printf "%s: too many levels of symbolic links\\n" "$1" >&2; exit 3; }; ' +
  'l=$(readlink -- "$x") || exit 3; case $l in /*) c=/; hades_ck /;; esac; w=$l${w:+/$w}; ' +
  'elif [ -d "$x" ]; then hades_ck "$x"; c=$x; ' +
  'elif [ -e "$x" ] || [ -n "$2" ]; then printf "%s\\n" "${2:-$x is not a directory}" >&2; exit 3; ' +
  'else mkdir -- "$x" 2>/dev/null || [ -e "$x" ] || [ -L "$x" ] || { printf "cannot create directory %s\\n" "$x" >&2; exit 3; }; w=$p${w:+/$w}; fi; done; }; ';

/**
 * The fast path of the walk, for the usual case: ONE `stat` (no -L: a link is not a
 * directory) over every prefix of `dir`; when each is a directory that passes the rule,
 * `c` = `dir` and `k` comes from its mode. Anything else (a link on the path, a missing or
 * untrusted directory) falls back to `hades_walk`, which decides and explains. A swap after
 * the stat needs write access to a directory the stat just showed trusted.
 */
function walk(dir: string, missing: string): string {
  const prefixes = ['/'];
  for (const part of dir.split('/').filter(Boolean)) prefixes.push(`${prefixes.length > 1 ? prefixes[prefixes.length - 1] : ''}/${part}`);
  return (
    `k=$(stat -c "%u %g %f" -- ${prefixes.map(quote).join(' ')} 2>/dev/null | { n=0; while read -r o g f; do n=$((n+1)); m=$(( 0x$f )); ` +
    `[ $(( m & 0170000 )) = 16384 ] && { [ "$o" = 0 ] || [ "$o" = "$u" ]; } && { [ $(( m & 020 )) = 0 ] || [ "$g" = 0 ]; } && { [ $(( m & 02 )) = 0 ] || [ $(( m & 01002 )) = 514 ]; } || exit 1; done; ` +
    `[ $n = ${prefixes.length} ] && echo $(( m & 01002 )); }) && c=${quote(dir)} || hades_walk ${quote(dir)} ${quote(missing)}; `
  );
}

/** `c` = the trusted physical directory `dir` (exit 3 with the usual message when it is missing). */
function walkTo(dir: string): string {
  return `${TRUSTED_WALK}${walk(dir, `parent directory ${dir} does not exist`)}`;
}

/** A private temp directory in `c` (mktemp: random name, created exclusively, mode 0700), removed on exit. */
function privateTemp(tmp: string): string {
  return `t=; trap '[ -z "$t" ] || rm -rf -- "$t"' EXIT; trap 'exit 1' HUP INT TERM PIPE; t=$(mktemp -d "\${c%/}"/${quote(basename(tmp))}) || exit 1; `;
}

/**
 * mkdir: idempotent; converges mode (and owner/group when given). Missing parents are
 * created one by one inside trusted directories (see TRUSTED_WALK); a path that is a symlink is
 * refused (never chown/chmod through it). Prints "unchanged" when the directory already
 * is as asked; else creates it (in a private temp directory, then `mv -T` into place) or
 * fixes it in place (chmod, then `chown -h`: a directory keeps its setgid bit), "changed".
 */
export function mkdirCommand(path: string, mode: number, own: Ownership, become?: string): string {
  const x = '"$x"';
  const script =
    `umask 022; ${TRUSTED_WALK}${walk(dirname(path), '')}x=\${c%/}/${quote(basename(path))}; ` +
    `if [ -L ${x} ]; then echo ${quote(`${path} is a symbolic link: refusing to change it or what it points to`)} >&2; exit 3; fi; ` +
    `if [ -d ${x} ] && [ "$(stat -c %a ${x})" = ${statMode(mode)} ]${ownershipTest(own, x)}; then echo unchanged; exit; fi; ` +
    `if [ -d ${x} ]; then ` +
    `if [ "$k" = 514 ] && [ "$(stat -c %u ${x})" != 0 ] && [ "$(stat -c %u ${x})" != "$u" ]; then echo ${quote(`${path} belongs to another user in a world-writable directory: refusing to change it`)} >&2; exit 3; fi; ` +
    `chmod ${octal(mode)} ${x} && ${chownCmd(own, x)}echo changed; ` +
    `elif [ -e ${x} ]; then echo ${quote(`${path} exists and is not a directory`)} >&2; exit 3; ` +
    `else ${privateTemp(tempPathFor(path))}mkdir -- "$t/d" && chmod ${octal(mode)} "$t/d" && ${chownCmd(own, '"$t/d"')}mv -T -- "$t/d" ${x} && echo changed; fi`;
  return becomeWrap(script, become);
}

/**
 * How the bytes reach the temp file: by default from stdin (`cat`, streamed by the
 * orchestrator after "send"); pull's `via: host` downloads them from the registry instead
 * (shell/fetch.ts). `prepare` runs before "send" (it may refuse with a message, exit 6);
 * `into(file)` writes the file (`file` is a shell word, already quoted) and fails non-zero
 * with a message. The checks after it (sha256, mode, rename) are the same either way.
 */
export interface Receive {
  prepare?: string;
  into(file: string): string;
}
export const FROM_STDIN: Receive = { into: (file) => `cat > ${file}` };

/**
 * The mktemp template beside the destination (shown in dry-run: the random part is chosen
 * on the host, exclusively, by mktemp).
 */
export function tempPathFor(dst: string): string {
  return `${dirname(dst)}/.${basename(dst)}.hades-tmp-XXXXXXXXXX`;
}

/**
 * File delivery in ONE command (one exec, one round trip of setup), talking to the
 * orchestrator over stdout/stdin:
 *  - exit 3 + message when the parent directory is missing, is not trusted (see TRUSTED_WALK:
 *    a directory on the path that someone else can write), or dst is a directory;
 *  - dst is a regular file (not a symlink) with this sha256 (computed on the host):
 *    mode (and owner) as asked → prints "unchanged"; else fixes them in place (`chown -h`
 *    then chmod, so a requested setuid bit survives) → "meta" — except in a sticky
 *    world-writable directory, where dst is replaced as below instead.
 *    stdin is never read: the orchestrator sends no bytes and closes it;
 *  - otherwise creates a private temp directory beside dst (mktemp -d, mode 0700), prints
 *    "send", receives the bytes on stdin into a file there, fsyncs it, verifies sha256 on
 *    the host (exit 4 on mismatch), applies ownership then mode, renames it over dst with
 *    `mv -fT` (atomic; never into a directory) and prints "changed".
 *    The orchestrator starts streaming only after it has read "send". Any failure or
 *    interruption removes the temp directory; dst is either old or new, never partial.
 * `tmp` is the mktemp template (tempPathFor).
 */
export function fileDeliverCommand(
  dst: string,
  tmp: string,
  sha256: string,
  mode: number,
  own: Ownership,
  become?: string,
  receive: Receive = FROM_STDIN,
): string {
  const f = '"$f"';
  const t = '"$t/f"';
  const script =
    `${walkTo(dirname(dst))}f=\${c%/}/${quote(basename(dst))}; ` +
    `if [ -d ${f} ]; then echo ${quote(`${dst} is a directory`)} >&2; exit 3; fi; ` +
    `if [ -f ${f} ] && [ ! -L ${f} ] && ${own.owner ? '' : ownFileTest(f)}[ "$(${sha256Of(f)})" = ${sha256} ]; then ` +
    `if [ "$(stat -c %a ${f})" = ${statMode(mode)} ]${ownershipTest(own, f)}; then echo unchanged; exit; fi; ` +
    `if [ "$k" != 514 ]; then ${chownCmd(own, f)}chmod ${octal(mode)} ${f} && echo meta; exit; fi; fi; ` +
    `${receive.prepare ?? ''}umask 077; ${privateTemp(tmp)}echo send; ` +
    `${receive.into(t)} && sync ${t} && s=$(${sha256Of(t)}) && ` +
    `if [ "$s" != ${sha256} ]; then echo "checksum mismatch on host: expected ${sha256}, got $s" >&2; exit 4; fi && ` +
    `${chownCmd(own, t)}chmod ${octal(mode)} ${t} && mv -fT -- ${t} ${f} && echo changed`;
  return becomeWrap(script, become);
}

/**
 * Directory delivery check: the marker file `.hades-artifact` inside `to` names the
 * artifact digest that was extracted there. Read-only, but behind the same trusted walk as
 * the write (its read-only form: a missing parent is exit 3 with a message, never created):
 * a user who controls the parent could otherwise plant `to` with their own files and a
 * marker naming the (public) digest, and the pull would report "unchanged" where the write
 * refuses. Exit 3 when the parent directory is missing or not trusted.
 */
export function dirCheckCommand(to: string, digest: string, become?: string, owner?: string): string {
  return becomeWrap(
    `${dirTarget(to)}if [ -d "$d" ] && ${ownDirTest(owner)}[ "$(cat "$d/.hades-artifact" 2>/dev/null)" = ${quote(digest)} ]; then echo unchanged; else echo changed; fi`,
    become,
  );
}

/** ownFileTest for the extracted directory "$d" (with `owner:`, that user's directory counts too: the tree is chowned to it). */
function ownDirTest(owner?: string): string {
  const st = '"$(stat -c %u "$d")"';
  return `{ [ "$k" != 514 ] || [ ${st} = 0 ] || [ ${st} = "$u" ]${owner ? ` || [ "$(stat -c %U "$d")" = ${quote(owner)} ]` : ''}; } && `;
}

export interface ArchiveOptions {
  gzip: boolean;
  stripComponents: number;
  owner?: string;
  group?: string;
}

/**
 * Host-side check of the extracted tree "$t/n" (defence in depth behind the orchestrator's
 * archive check): every symlink resolves inside the tree; no devices, fifos or sockets; no
 * setuid/setgid file. Exit 5 naming the first offending entry.
 */
const TREE_CHECK =
  `b=$(find "$t/n" \\( -type b -o -type c -o -type p -o -type s -o \\( ! -type d \\( -perm -4000 -o -perm -2000 \\) \\) \\) -print -quit) && ` +
  `if [ -n "$b" ]; then printf 'refusing the extracted tree: %s is a device, fifo, socket or setuid/setgid file\\n' "\${b#"$t/n"/}" >&2; exit 5; fi && ` +
  `b=$(find "$t/n" -type l -exec sh -c 'for l; do r=$(realpath -m -- "$l"); case $r in "$0"|"$0"/*) ;; *) printf "%s\\n" "$l"; exit;; esac; done' "$t/n" {} +) && ` +
  `if [ -n "$b" ]; then printf 'refusing the extracted tree: the link %s points outside it\\n' "\${b#"$t/n"/}" >&2; exit 5; fi && `;

function dirWriteBody(tmp: string, sha256: string, digest: string, opts: ArchiveOptions, send = '', receive: Receive = FROM_STDIN): string {
  const own = { owner: opts.owner, group: opts.group };
  const chown = own.owner || own.group ? `chown -hR ${quote(chownSpec(own))} "$t/n" && ` : '';
  return (
    `${send ? (receive.prepare ?? '') : ''}umask 022; ${privateTemp(tmp)}${send}` +
    `${receive.into('"$t/a"')} && s=$(${sha256Of('"$t/a"')}) && ` +
    `if [ "$s" != ${sha256} ]; then echo "checksum mismatch on host: expected ${sha256}, got $s" >&2; exit 4; fi && ` +
    `mkdir -- "$t/n" && tar -x${opts.gzip ? 'z' : ''}f "$t/a" -C "$t/n" --no-same-owner --no-same-permissions${opts.stripComponents ? ` --strip-components=${opts.stripComponents}` : ''} && rm -f -- "$t/a" && ` +
    TREE_CHECK +
    `rm -rf -- "$t/n/.hades-artifact" && printf '%s\\n' ${quote(digest)} > "$t/n/.hades-artifact" && ${chown}` +
    `if [ -e "$d" ] || [ -L "$d" ]; then mv -T -- "$d" "$t/o" && { mv -T -- "$t/n" "$d" || { mv -T -- "$t/o" "$d"; exit 1; }; }; else mv -T -- "$t/n" "$d"; fi`
  );
}

/** `d` = `to` inside its trusted parent `c`. */
function dirTarget(to: string): string {
  return `${walkTo(dirname(to))}d=\${c%/}/${quote(basename(to))}; `;
}

/**
 * Receives a tar (gzip'd when `gzip`) on stdin into a private temp directory beside `to`
 * (mktemp -d in the trusted parent), verifies its sha256 on the host, extracts it there
 * (`--no-same-owner --no-same-permissions`: no setuid bits, no archive owners;
 * `--strip-components` drops the archive's top directory), checks the tree (TREE_CHECK),
 * writes the marker fresh (whatever the archive had at that name is removed first),
 * applies ownership (`chown -hR`), then swaps it into place with `mv -T`: the old directory
 * is moved into the temp directory and removed only after the new one is in (restored if
 * the second rename fails). Entries were checked on the orchestrator before any byte was
 * sent (no absolute paths, no `..`, no links leaving the root).
 */
export function dirWriteCommand(to: string, tmp: string, sha256: string, digest: string, opts: ArchiveOptions, become?: string): string {
  return becomeWrap(`${dirTarget(to)}${dirWriteBody(tmp, sha256, digest, opts)}`, become);
}

/**
 * Directory delivery in ONE command, with the same stdout/stdin protocol as
 * fileDeliverCommand: exit 3 without a (trusted) parent directory; "unchanged" when the
 * marker names this digest (stdin never read); else "send", then exactly dirWriteCommand's
 * steps on the bytes that follow, and "changed" once the new directory is in place.
 */
export function dirDeliverCommand(
  to: string,
  tmp: string,
  sha256: string,
  digest: string,
  opts: ArchiveOptions,
  become?: string,
  receive: Receive = FROM_STDIN,
): string {
  return becomeWrap(
    `${dirTarget(to)}if [ -d "$d" ] && ${ownDirTest(opts.owner)}[ "$(cat "$d/.hades-artifact" 2>/dev/null)" = ${quote(digest)} ]; then echo unchanged; exit; fi; ` +
      `${dirWriteBody(tmp, sha256, digest, opts, 'echo send; ', receive)} && echo changed`,
    become,
  );
}
