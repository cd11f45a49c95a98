/**
 * Pure shell-command builders. Every value that goes into a generated command passes
 * through `quote` — nothing is ever spliced raw. Tests assert the exact strings.
 */

/** POSIX single-quote a value: safe for any byte sequence except NUL. */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('value contains a NUL byte and cannot be passed to a shell');
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

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
  return '0' + mode.toString(8).padStart(3, '0');
}
