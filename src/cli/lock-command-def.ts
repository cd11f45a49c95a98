/** The `hades lock status|release` command tree (handlers in ./lock-command.ts, loaded on use). */
import { Command, Option } from 'commander';
import { collect, common } from './options.js';
import type { LockOptions } from './lock-command.js';

export function lockCommand(done: (code: number) => void): Command {
  const shared = (c: Command): Command =>
    common(c)
      .argument('[plan]', "only this plan's hosts (as a run would lock them)")
      .option('--limit <hosts>', 'only these hosts: names, globs (web-*), target:NAME, @FILE; comma-separated, repeatable', collect, [])
      .option('--known-hosts <file>', 'extra known_hosts file (repeatable)', collect, [])
      .option('--connect-timeout <duration>', 'SSH connect timeout (default 10s)')
      .addOption(new Option('-o, --output <mode>', 'output mode').choices(['plain', 'json']).default('plain'));
  return new Command('lock')
    .description('the host deploy locks: who holds them, and clearing the ones a killed run left')
    .addHelpText(
      'after',
      `
Every \`hades plan\` run locks the hosts it touches before step 1 (unless --no-lock) and
releases them at the end; a run finding a host locked exits 5 and runs nothing. A lock is
the directory <lock_dir>/<host>.lock: lock_dir defaults to ~/.hades/locks of the SSH login
user (created 0700), .hades/locks beside the hadesfile for local hosts. A run killed with
kill -9 leaves its locks; nothing takes them over: check with \`hades lock status\`, then
\`hades lock release --force --limit HOST\` (recorded in .hades/runs/).`,
    )
    .addCommand(
      shared(new Command('status'))
        .description(
          "show each host's lock: free, or held by which run (plan, user@machine, pid, since when); exit 1 if a host could not be read",
        )
        .action(async (plan: string | undefined, opts: LockOptions) => {
          const { lockStatusCommand } = await import('./lock-command.js');
          done(await lockStatusCommand(plan, opts));
        }),
    )
    .addCommand(
      shared(new Command('release'))
        .description(
          "remove the hosts' locks whoever holds them (needs --force; no run ever takes over a lock by itself); recorded in an audit log",
        )
        .option('--force', 'really remove them', false)
        .option('--log-dir <dir>', 'where the audit log goes (default: .hades/runs beside the hadesfile)')
        .action(async (plan: string | undefined, opts: LockOptions) => {
          const { lockReleaseCommand } = await import('./lock-command.js');
          done(await lockReleaseCommand(plan, opts));
        }),
    );
}
