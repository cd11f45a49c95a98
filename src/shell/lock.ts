/**
 * Pure builders for the host deploy lock (issue 14): a lock is a directory
 * `<lock dir>/<host>.lock` made with `mkdir` (atomic: exactly one run can create it)
 * holding a small `info` record. Every value is quoted; tested as exact strings
 * (test/unit/shell-lock.test.ts). The lock directory must pass the trusted-directory walk
 * (TRUSTED_WALK) and must not be sticky world-writable (like /tmp): nobody but root and
 * the login user can create, replace or link the lock there.
 */
import { quote } from './command.js';
import { TRUSTED_WALK } from './delivery.js';

/** The default lock directory on SSH hosts: under the login user's home (expanded on the host). */
export const DEFAULT_LOCK_DIR = '~/.hades/locks';

/** `~/x` → `"$HOME"/x` (expanded by the host's shell); an absolute path → quoted. */
export function lockDirWord(dir: string): string {
  if (dir === '~') return '"$HOME"';
  if (dir.startsWith('~/')) return `"$HOME"/${quote(dir.slice(2))}`;
  return quote(dir);
}

/** The lock's file name for a host: its inventory name, with anything but [A-Za-z0-9._-] as `_`. */
export function lockName(host: string): string {
  const safe = host.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe.startsWith('.') ? '_' : ''}${safe}.lock`;
}

/** Sets `l` = the lock inside the trusted lock directory `c` (created 0700 when `create`). */
function lockPath(dir: string, host: string, create: boolean): string {
  const home =
    dir === '~' || dir.startsWith('~/')
      ? `[ -n "$HOME" ] || { echo 'HOME is not set on this host: set lock_dir to an absolute path' >&2; exit 3; }; `
      : '';
  const missing = create ? '' : ` ${quote(`lock directory ${dir} does not exist`)}`;
  return (
    `${home}${TRUSTED_WALK}hades_walk ${lockDirWord(dir)}${missing}; ` +
    `if [ "$k" = 514 ]; then printf 'refusing lock directory %s: it is writable by every user (sticky, like /tmp), so another user could create the lock first\\n' "$c" >&2; exit 3; fi; ` +
    `l=\${c%/}/${quote(lockName(host))}; `
  );
}

/**
 * Take the lock, in one command and one round trip (no stdin): creates the lock directory
 * when missing (mode 0700, as the login user), then `mkdir` of the lock itself. Prints
 * `locked` and stores the record (`$HADES_LOCK_RECORD`, set by lockRecordPrefix in front of
 * this command) as `info`; or, when another run holds it, prints `held` and that run's record
 * (nothing is changed). Exit 3 for an untrusted lock directory.
 */
export function lockAcquireCommand(dir: string, host: string): string {
  return (
    `umask 077; ${lockPath(dir, host, true)}` +
    // A lock given back between the failed mkdir and the test (another run's parallel phase
    // releasing) is simply free again: mkdir once more (at most 3 times), never "not a lock".
    `n=0; while :; do ` +
    `if mkdir -- "$l" 2>/dev/null; then printf '%s' "$HADES_LOCK_RECORD" > "$l/info" || { rm -rf -- "$l"; exit 1; }; echo locked; exit 0; ` +
    `elif [ -d "$l" ] && [ ! -L "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; exit 0; ` +
    `elif [ ! -e "$l" ] && [ ! -L "$l" ] && [ "$n" -lt 3 ]; then n=$((n+1)); ` +
    `else printf '%s exists and is not a lock directory\\n' "$l" >&2; exit 3; fi; done`
  );
}

/** What runs in front of lockAcquireCommand: the run's lock record (run id, plan, user@machine, pid, start; no secrets), quoted. */
export function lockRecordPrefix(record: string): string {
  return `HADES_LOCK_RECORD=${quote(record)}; `;
}

/**
 * Make a lock taken in the parallel phase final (src/engine/lock.ts): replaces its record
 * (`state: trying`) with `$HADES_LOCK_RECORD` (`state: held`, set by lockRecordPrefix in
 * front), only when the lock still names this run. The new record is written to a temp
 * file created exclusively inside the lock (a 0700 directory of the login user), then
 * renamed over `info`. Prints `confirmed`, or `not held`.
 */
export function lockConfirmCommand(dir: string, host: string, runId: string): string {
  return (
    `umask 077; ${lockPath(dir, host, false)}` +
    `if [ -d "$l" ] && [ ! -L "$l" ] && grep -qxF ${quote(`run: ${runId}`)} "$l/info" 2>/dev/null; then ` +
    `t="$l/.info.$$"; rm -f -- "$t"; if (set -C; printf '%s' "$HADES_LOCK_RECORD" > "$t") && mv -fT -- "$t" "$l/info"; then echo confirmed; else rm -f -- "$t"; exit 1; fi; ` +
    `else echo 'not held'; fi`
  );
}

/**
 * Give the lock back: removes it only when its record names this run (`run: RUNID`), so a
 * run never removes a lock someone else took. Prints `released`, or `not held` when the
 * lock is absent or another run's.
 */
export function lockReleaseCommand(dir: string, host: string, runId: string): string {
  return (
    `${lockPath(dir, host, false)}` +
    `if [ -d "$l" ] && [ ! -L "$l" ] && grep -qxF ${quote(`run: ${runId}`)} "$l/info" 2>/dev/null; then rm -rf -- "$l" && echo released; else echo 'not held'; fi`
  );
}

/** Read-only: prints `free`, or `held` and the holder's record. Changes nothing (no walk needed). */
export function lockStatusCommand(dir: string, host: string): string {
  return `l=${lockDirWord(dir)}/${quote(lockName(host))}; if [ -d "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; else echo free; fi; exit 0`;
}

/**
 * `hades lock release --force`: removes the lock whoever holds it. Prints `held` and the
 * record it removed, or `free` when there was none (a missing lock directory is free too).
 */
export function lockForceReleaseCommand(dir: string, host: string): string {
  return (
    `l=${lockDirWord(dir)}/${quote(lockName(host))}; if [ ! -d "$l" ] && [ ! -L "$l" ]; then echo free; exit 0; fi; ` +
    `${lockPath(dir, host, false)}` +
    `if [ -d "$l" ] && [ ! -L "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; rm -rf -- "$l"; ` +
    `else printf '%s is not a lock directory: remove it by hand\\n' "$l" >&2; exit 3; fi`
  );
}
