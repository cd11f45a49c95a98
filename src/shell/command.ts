/**
 * Pure shell-command builders: quoting, env scripts, `sudo -n` wrapping, the user-command
 * wrapper and the SSH wire form. Every value that goes into a generated command passes
 * through `quote` — nothing is ever spliced raw. Imports nothing; tests assert the exact
 * strings (test/unit/shell.test.ts, shell-wire.test.ts). The file and directory delivery
 * scripts are beside it in ./delivery.ts.
 */

/** POSIX single-quote a value: safe for any byte sequence except NUL. */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('value contains a NUL byte and cannot be passed to a shell');
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A variable name Hades accepts anywhere (env maps, passphrase_env, env scripts). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The env script a command's wrapper evaluates: one `NAME='value'` line per var.
 * It travels on the command's stdin, never in argv, so values don't show in `ps` on the host.
 */
export function envScript(env: Record<string, string>): string {
  let out = '';
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    out += `${k}=${quote(v)}\n`;
  }
  return out;
}

/** Wraps a command in `sudo -n` for the given user (root when 'root'). Non-interactive: never prompts. */
export function becomeWrap(command: string, become: string | undefined): string {
  if (!become) return command;
  const user = become === 'root' ? [] : ['-u', quote(become)];
  return ['sudo', '-n', ...user, '--', 'sh', '-c', quote(command)].join(' ');
}

/**
 * A user command run with env vars: `sh` reads the env script from stdin, exports it,
 * then execs `sh -c COMMAND` (stdin is then at EOF, like Ansible's `command`).
 * The user's command text is passed as an argument, quoted; the shell that runs it
 * expands `$VAR` and `${VAR}` itself — Hades never substitutes into it.
 */
export function runWithEnv(command: string, become?: string): string {
  const inner = `set -a; eval "$(cat)"; set +a; exec sh -c ${quote(command)}`;
  return becomeWrap(`sh -c ${quote(inner)}`, become);
}

/** Stable octal rendering of a mode: 0644, 0755, 04755. */
export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/**
 * The wire form of a command: what the SSH exec request carries instead of the command.
 *
 * sshd does not run the string with `sh -c`: it runs `$SHELL -c STRING` with the user's
 * login shell, and fish, tcsh and csh read POSIX quoting differently (fish treats `\\` and
 * `\'` inside single quotes, tcsh `!` and newlines). So the string sent is
 *
 *   exec /bin/sh -c 'set -- "$(printf %b "ENCODED_")"; exec /bin/sh -c "${1%_}"'
 *
 * where ENCODED is the command's UTF-8 bytes with every byte that is not printable ASCII,
 * and each of  ' \ ! " $ `  written as a `\0ooo` octal escape, which `printf %b` decodes.
 * The single-quoted word then holds no `'`, `!` or newline and no backslash other than
 * before `0`: sh, dash, bash, zsh, fish, tcsh and csh all read it literally, and all have
 * `exec`. The `_` sentinel keeps the command's trailing newlines, which `$(…)` would strip.
 *
 * Net effect: the host runs `/bin/sh -c COMMAND`, exactly what the local transport runs,
 * as the process sshd started (both `exec`s keep the pid that sshd signals on abort),
 * with the channel's stdin, exit status and signals untouched. Cost: one fork for the
 * command substitution (printf is a builtin of every /bin/sh), no extra program.
 * The plan and `--dry-run` show COMMAND; this wrapper is a transport detail.
 */
export function wireCommand(command: string): string {
  if (command.includes('\0')) throw new Error('command contains a NUL byte and cannot be passed to a shell');
  let enc = '';
  for (const b of Buffer.from(command, 'utf8')) enc += WIRE_BYTE[b];
  return `exec /bin/sh -c 'set -- "$(printf %b "${enc}_")"; exec /bin/sh -c "\${1%_}"'`;
}

/** The first line the announcing wire form writes on stderr: `hades-pgid <pid>` (the transport strips it). */
export const PGID_MARKER = 'hades-pgid';

/**
 * wireCommand, announcing the command's process group first: sshd makes every session's
 * command a session leader (setsid), so the pid of that sh — `$$` — is the group's id. The
 * transport reads the line off stderr, and on an abort or timeout kills the whole group
 * with a second command (killGroupCommand), which works even when the leader is gone and
 * children that ignore SIGTERM linger.
 */
export function announcedWireCommand(command: string): string {
  return wireCommand(command).replace(/^exec \/bin\/sh -c '/, () => `exec /bin/sh -c 'echo ${PGID_MARKER} $$ >&2; `);
}

/**
 * Kills process group `pgid`: SIGTERM, then SIGKILL to whatever is left after `graceMs`
 * (polled every 100 ms, so a group that obeys TERM ends the command at once).
 */
export function killGroupCommand(pgid: number, graceMs: number, become?: string): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`invalid process group ${pgid}`);
  const polls = Math.max(1, Math.ceil(graceMs / 100));
  const kill = killLoop(pgid, polls);
  // A command run through sudo has members of that user in the group, which the SSH user
  // may not signal (sudo relays SIGTERM to its child only): kill as that user first, then
  // what is left of the SSH user's own (the session leader).
  return become ? `${becomeWrap(kill, become)} </dev/null 2>/dev/null; ${kill}` : kill;
}

function killLoop(pgid: number, polls: number): string {
  // `kill -SIG -PGID` (no `--`, no `-s`): the one form dash, bash and busybox all read as a group.
  // After KILL, wait (bounded: a reaped zombie may linger as long as its parent lets it) until the
  // members are really gone, so "killed" means no process of the command still runs.
  return `kill -TERM -${pgid} 2>/dev/null || exit 0; i=0; while kill -0 -${pgid} 2>/dev/null; do if [ $i -ge ${polls} ]; then kill -KILL -${pgid} 2>/dev/null; j=0; while [ $j -lt 20 ] && ps -o stat= -g ${pgid} 2>/dev/null | grep -qv '^Z'; do sleep 0.05; j=$((j+1)); done; exit 0; fi; sleep 0.1; i=$((i+1)); done`;
}

/** Per byte: itself when every login shell and `"…"` + `printf %b` keep it literal, else `\0ooo`. */
const WIRE_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) =>
  b >= 0x20 && b <= 0x7e && !`'\\!"$\``.includes(String.fromCharCode(b)) ? String.fromCharCode(b) : `\\0${b.toString(8).padStart(3, '0')}`,
);
