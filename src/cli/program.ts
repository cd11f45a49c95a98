/**
 * The `hades` (alias `orchestrate`) command line: thin commands over config → env →
 * plan → engine → report. Heavy modules load only in the commands that need them, so
 * `hades validate` stays fast. Every command returns its exit code; nothing here sets
 * process.exitCode (main.ts does, once).
 */
import { Command, CommanderError, Option } from 'commander';
import { redactOutput } from '../env/secrets.js';
import { EXIT, RunError, UserError } from '../errors.js';
import { terminalSafe } from '../terminal.js';
import { type CommonOptions, collect, common, type RunOptions } from './options.js';
import { cacheCommand } from './cache-command.js';
import { lockCommand } from './lock-command-def.js';
import { registryCommand } from './registry-command.js';
import { VERSION } from './version.js';

/** How every report of a bug of ours starts (the CLI tests fail on it unless they expect it). */
export const INTERNAL_ERROR = 'hades: internal error (a bug — please report it)';

/** The command tree. Each action hands its command's exit code to `done`. */
export function buildProgram(done: (code: number) => void): Command {
  const program = new Command('hades')
    .description('Declarative YAML deploy orchestrator: registries, jobs and plans over SSH.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const planCmd = common(new Command('plan'))
    .alias('run')
    .description('run a plan (or print exactly what would run with --dry-run)')
    .argument('<plan>', 'plan name')
    .option('--dry-run', 'print the run plan (every command, every host) and touch nothing', false)
    .option(
      '--check',
      'connect and run only the read-only half of every action: per host what would change (create/replace/chmod/unchanged, unified diffs of text files up to 64 KiB, secrets redacted), run/push/promote/health listed as "would run", steps left out by --steps/--from-step/--limit as "skipped"; no lock, nothing written; exit 0 checked, 1 an action would fail or a host could not be checked',
    )
    .option('-y, --yes', 'approve every gate', false)
    .option('--approve <step>', 'approve the gates of this step (repeatable)', collect, [])
    .addOption(new Option('-o, --output <mode>', 'output mode').choices(['auto', 'tty', 'plain', 'json']).default('auto'))
    .option('--log-dir <dir>', 'where run audit logs go (default: .hades/runs beside the hadesfile)')
    .option('--known-hosts <file>', 'extra known_hosts file (repeatable)', collect, [])
    .option('--accept-new-hosts', 'accept and record keys of hosts not yet known (never a changed key)', false)
    .option('--connect-timeout <duration>', 'SSH connect timeout (default 10s)')
    .option(
      '--max-connections <n>',
      'at most N SSH connections open at once, jump hosts included (default 256); a batch larger than N queues its hosts',
    )
    .option('--cache-dir <dir>', 'local artifact cache (default ~/.cache/hades)')
    .option(
      '--offline',
      'contact no registry: every artifact pinned by digest (digest: on the pull, or --replay/--resume) and in the cache, checked before anything runs',
      false,
    )
    .option(
      '--limit <hosts>',
      'run only on these hosts: names, globs (web-*), target:NAME, @FILE (one name per line); comma-separated, repeatable',
      collect,
      [],
    )
    .option(
      '--failed-hosts-file <file>',
      'after the run, write the hosts that failed to FILE, one per line (empty when none failed); usable as --limit @FILE',
    )
    .option(
      '--resume <run-id|last>',
      "continue that run: its env and artifact digests, skipping every (step, host) that ended ok (refused if the plan's steps/jobs/actions changed, unless --force)",
    )
    .option('--replay <run-id|last>', "run the plan again with that run's env and artifact digests (its tags are not looked up again)")
    .option('--force', '--resume even though the plan changed since that run', false)
    .option('--steps <names>', 'run only these steps (comma-separated, repeatable); the others are skipped', collect, [])
    .option('--from-step <name>', 'skip the steps before this one')
    .option(
      '--no-lock',
      'do not take the host locks for this run (by default every host the run touches is locked first; held by another run: exit 5)',
    )
    .addHelpText('after', `\n${EXIT_CODES}`)
    .action(async (name: string, opts: RunOptions) => {
      const { planCommand } = await import('./plan-command.js');
      done(await planCommand(name, opts));
    });
  program.addCommand(planCmd);
  program.addCommand(rollbackCommand(planCmd, done));
  program.addCommand(historyCommand(done));

  program.addCommand(
    common(new Command('validate'))
      .description('check the hadesfiles (and, given a plan, its env contracts and planning) without running anything')
      .argument('[plan]', 'also resolve env and plan this plan')
      .action(async (name: string | undefined, opts: CommonOptions) => {
        const { validateCommand } = await import('./info-commands.js');
        done(await validateCommand(name, opts));
      }),
  );
  program.addCommand(
    common(new Command('list'))
      .description('list plans (steps, jobs), targets (hosts), hosts and registries')
      .action(async (opts: CommonOptions) => {
        const { listCommand } = await import('./info-commands.js');
        done(await listCommand(opts));
      }),
  );
  program.addCommand(
    new Command('init')
      .description('write a working starter project')
      .argument('[dir]', 'directory', '.')
      .action(async (dir: string) => {
        const { initCommand } = await import('./init-command.js');
        done(await initCommand(dir));
      }),
  );
  program.addCommand(lockCommand(done));
  program.addCommand(registryCommand(common, done));
  program.addCommand(cacheCommand(done));
  program.addCommand(
    new Command('doctor')
      .description('check the local tools hades uses (node, oras for oci registries, tar); exit 1 if one is missing')
      .addOption(new Option('-o, --output <mode>', 'plain or json').choices(['plain', 'json']).default('plain'))
      .action(async (opts: { output: 'plain' | 'json' }) => {
        const { doctorCommand } = await import('./doctor-command.js');
        done(await doctorCommand(opts));
      }),
  );
  program.addCommand(
    new Command('schema').description('print the hadesfile JSON Schema (for editors)').action(async () => {
      const { schemaCommand } = await import('./info-commands.js');
      done(await schemaCommand());
    }),
  );
  program.addHelpText('after', `\n${EXIT_CODES}`);
  // Every command of the tree reports a usage error by throwing (runProgram exits 2), not
  // with commander's own process.exit(1); subcommands do not inherit these settings.
  const configure = (c: Command): void => {
    c.exitOverride()
      .showHelpAfterError('(run with --help for usage)')
      .configureOutput({ writeErr: (s) => process.stderr.write(s) });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** `hades rollback <plan> [--to RUN]`: a replay of an earlier run; takes every option of `plan` (but --resume/--replay). */
function rollbackCommand(planCmd: Command, done: (code: number) => void): Command {
  const cmd = new Command('rollback')
    .description(
      "replay the last successful run of a plan before the latest one (or --to RUN): that run's env and artifact digests; e.g. --steps canary,rollout to skip build/publish",
    )
    .argument('<plan>', 'plan name')
    .option('--to <run-id>', 'the run to replay (default: the last successful run before the latest one)');
  for (const o of planCmd.options) if (!['--resume', '--replay', '--force', '--version'].includes(o.long ?? '')) cmd.addOption(o);
  return cmd.addHelpText('after', `\n${EXIT_CODES}`).action(async (name: string, opts: RunOptions & { to?: string }) => {
    const { planCommand } = await import('./plan-command.js');
    const { to, ...rest } = opts;
    done(await planCommand(name, { ...rest, rollback: to ?? true }));
  });
}

function historyCommand(done: (code: number) => void): Command {
  const flags = (c: Command) =>
    c
      .option('-f, --file <path>', 'hadesfile or directory: the logs are in .hades/runs beside it (repeatable)', collect, [])
      .option('-i, --inventory <path>', 'inventory file (repeatable)', collect, [])
      .option('--log-dir <dir>', 'where the audit logs are (default: .hades/runs beside the hadesfile)')
      .addOption(new Option('-o, --output <mode>', 'plain or json').choices(['plain', 'json']).default('plain'));
  const cmd = flags(new Command('history'))
    .description('list the recorded runs (from the audit logs): when, who, plan, status, duration, hosts ok/failed, artifacts deployed')
    .argument('[plan]', 'only the runs of this plan')
    .option('--host <name>', 'only the runs that planned this host (and its status in each)')
    .action(async (plan: string | undefined, opts: import('./history-command.js').HistoryOptions) => {
      const { historyCommand: list } = await import('./history-command.js');
      done(await list(plan, opts));
    });
  cmd.addCommand(
    flags(new Command('show'))
      .description("one run's summary and resolved env (secrets masked; the log never holds them)")
      .argument('<run-id>', 'a run id, or last')
      .action(async (ref: string, opts: import('./history-command.js').HistoryOptions) => {
        const { historyShowCommand } = await import('./history-command.js');
        done(await historyShowCommand(ref, opts));
      }),
  );
  return cmd;
}

export const EXIT_CODES = `Exit codes:
  0    ok
  1    the run failed (a step exceeded its max_failures, or a host check failed)
  2    usage or user error (bad flag, bad hadesfile, --limit matching nothing)
  3    a gate was declined
  4    completed, but some hosts failed within their step's max_failures
  5    a host is locked by another run (nothing ran; see hades lock status)
  130  interrupted`;

/** Parses argv, runs the command, and returns its exit code; every error ends here, printed once. */
export async function runProgram(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; a command given without its subcommand shows help as an error.
      if (e.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    // Every message may carry a value (a bad path built from a secret): scrubbed first.
    if (e instanceof UserError) {
      process.stderr.write(`${terminalSafe(redactOutput(e.format()))}\n`);
      return EXIT.usage;
    }
    if (e instanceof RunError) {
      process.stderr.write(`${terminalSafe(redactOutput(`error: ${e.message}`))}\n`);
      return EXIT.failed;
    }
    const hint =
      process.sourceMapsEnabled || !import.meta.url.includes('/dist/bin/')
        ? ''
        : '\n(the places above are in the bundle, dist/bin/; run with NODE_OPTIONS=--enable-source-maps to see them in src/)';
    process.stderr.write(`${INTERNAL_ERROR}:\n${terminalSafe(redactOutput((e as Error)?.stack ?? String(e)))}${hint}\n`);
    return EXIT.failed;
  }
}
