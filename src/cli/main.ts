#!/usr/bin/env node
/**
 * The `hades` (alias `orchestrate`) command line: thin commands over config → env →
 * plan → engine → report. Heavy modules load only in the commands that need them, so
 * `hades validate` stays fast.
 */
import { Command, CommanderError, Option } from 'commander';
import { EXIT, RunError, UserError } from '../errors.js';
import { redactOutput } from '../env/secrets.js';
import { VERSION } from './version.js';
import { registryCommand } from './registry-command.js';

export interface CommonOptions {
  file: string[];
  inventory: string[];
  env: string[];
  envFile: string[];
  secretPattern: string[];
}

export interface RunOptions extends CommonOptions {
  dryRun: boolean;
  yes: boolean;
  approve: string[];
  output: 'auto' | 'tty' | 'plain' | 'json';
  logDir?: string;
  knownHosts: string[];
  acceptNewHosts: boolean;
  connectTimeout?: string;
  cacheDir?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** How every report of a bug of ours starts (the CLI tests fail on it unless they expect it). */
const INTERNAL_ERROR = 'hades: internal error (a bug — please report it)';

function common(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'hadesfile or directory (repeatable; default: hadesfile.yaml, else *.hades.yaml here)', collect, [])
    .option('-i, --inventory <path>', 'inventory file with hosts/targets (repeatable)', collect, [])
    .option('-e, --env <KEY=VALUE>', 'set a variable (repeatable; highest precedence)', collect, [])
    .option('--env-file <path>', 'read variables from a dotenv file (repeatable)', collect, [])
    .option('--secret-pattern <glob>', 'extra name pattern whose values are redacted, e.g. "*_CRED*" (repeatable)', collect, []);
}

export function buildProgram(): Command {
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
    .option('-y, --yes', 'approve every gate', false)
    .option('--approve <step>', 'approve the gates of this step (repeatable)', collect, [])
    .addOption(new Option('-o, --output <mode>', 'output mode').choices(['auto', 'tty', 'plain', 'json']).default('auto'))
    .option('--log-dir <dir>', 'where run audit logs go (default: .hades/runs beside the hadesfile)')
    .option('--known-hosts <file>', 'extra known_hosts file (repeatable)', collect, [])
    .option('--accept-new-hosts', 'accept and record keys of hosts not yet known (never a changed key)', false)
    .option('--connect-timeout <duration>', 'SSH connect timeout (default 10s)')
    .option('--cache-dir <dir>', 'local artifact cache (default ~/.cache/hades)')
    .action(async (name: string, opts: RunOptions) => {
      const { planCommand } = await import('./plan-command.js');
      process.exitCode = await planCommand(name, opts);
    });
  program.addCommand(planCmd);

  program.addCommand(
    common(new Command('validate'))
      .description('check the hadesfiles (and, given a plan, its env contracts and planning) without running anything')
      .argument('[plan]', 'also resolve env and plan this plan')
      .action(async (name: string | undefined, opts: CommonOptions) => {
        const { validateCommand } = await import('./info-commands.js');
        process.exitCode = await validateCommand(name, opts);
      }),
  );
  program.addCommand(
    common(new Command('list'))
      .description('list plans (steps, jobs), targets (hosts), hosts and registries')
      .action(async (opts: CommonOptions) => {
        const { listCommand } = await import('./info-commands.js');
        process.exitCode = await listCommand(opts);
      }),
  );
  program.addCommand(
    new Command('init')
      .description('write a working starter project')
      .argument('[dir]', 'directory', '.')
      .action(async (dir: string) => {
        const { initCommand } = await import('./init-command.js');
        process.exitCode = await initCommand(dir);
      }),
  );
  program.addCommand(registryCommand(common));
  program.addCommand(new Command('doctor').description('check the local tools hades uses (node, oras for oci registries, tar); exit 1 if one is missing').addOption(new Option('-o, --output <mode>', 'plain or json').choices(['plain', 'json']).default('plain')).action(async (opts: { output: 'plain' | 'json' }) => { const { doctorCommand } = await import('./doctor-command.js'); process.exitCode = await doctorCommand(opts); }));
  program.addCommand(
    new Command('schema').description('print the hadesfile JSON Schema (for editors)').action(async () => {
      const { schemaCommand } = await import('./info-commands.js');
      process.exitCode = await schemaCommand();
    }),
  );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    // Every message may carry a value (a bad path built from a secret): scrubbed first.
    if (e instanceof UserError) {
      process.stderr.write(redactOutput(e.format()) + '\n');
      return EXIT.usage;
    }
    if (e instanceof RunError) {
      process.stderr.write(redactOutput(`error: ${e.message}`) + '\n');
      return EXIT.failed;
    }
    const hint = process.sourceMapsEnabled || !import.meta.url.includes('/dist/bin/') ? '' : '\n(the places above are in the bundle, dist/bin/; run with NODE_OPTIONS=--enable-source-maps to see them in src/)';
    process.stderr.write(`${INTERNAL_ERROR}:\n${redactOutput((e as Error)?.stack ?? String(e))}${hint}\n`);
    return EXIT.failed;
  }
}

/**
 * A reader that went away (`hades plan x --dry-run | head`) is not a failure of ours: the
 * rest of the output is dropped and the command finishes what it does (a run is never cut
 * short by its reader going away — its audit log still has every event).
 */
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });

/**
 * A command closes everything it opened before it returns, so the process then ends by
 * itself. If something stayed open (a bug: a connection, a timer, a child), the command's
 * work is done and its exit code known: say what is still open and end, rather than hang
 * (a CI job would wait for its timeout). Output still being written — a slow reader of
 * stdout — is waited for. The timer itself does not keep the process alive.
 */
const LINGER_MS = 2_500;
function endEvenIfSomethingLeaked(code: number): void {
  let quietTicks = 0;
  const t = setInterval(() => {
    if (process.stdout.writableLength > 0 || process.stderr.writableLength > 0) {
      quietTicks = 0;
      return;
    }
    if (++quietTicks < 2) return;
    clearInterval(t);
    const open = process.getActiveResourcesInfo().join(', ');
    process.stderr.write(
      `${INTERNAL_ERROR}: the command finished (exit ${code}) but the process was still running ${(quietTicks * LINGER_MS) / 1000}s later; open: ${open || 'nothing node reports'}. Exiting.\n`,
    );
    process.exit(code);
  }, LINGER_MS);
  t.unref();
}

main(process.argv).then((code) => {
  process.exitCode = code;
  endEvenIfSomethingLeaked(code);
});
