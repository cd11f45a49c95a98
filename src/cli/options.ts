/** The options every command shares, their types, and the flags that declare them. */
import type { Command } from 'commander';
import { UserError } from '../errors.js';

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
  /** `--offline`: no registry is contacted; every artifact pinned by digest and in the cache (cli/offline.ts). */
  offline: boolean;
  /** `--limit` patterns as given (repeatable, comma-separated; `@file` reads names from a file). */
  limit: string[];
  failedHostsFile?: string;
  /** `--resume <run-id|last>`, `--replay <run-id|last>`, `--force`, `--steps`, `--from-step` (cli/replay.ts). */
  resume?: string;
  replay?: string;
  force: boolean;
  steps: string[];
  fromStep?: string;
  /** `hades rollback [--to]`. */
  rollback?: string | true;
  /** `--check`: read-only — what the run would change, per host, with diffs (cli/check-command.ts). */
  check?: boolean;
  /** `--no-lock`: false; the host locks are taken by default. */
  lock: boolean;
  /** `--max-connections N` as given (default DEFAULT_MAX_CONNECTIONS; parsed by maxConnectionsOf). */
  maxConnections?: string;
}

/** `--max-connections N`: a whole number ≥ 1 (a user mistake is exit 2). */
export function maxConnectionsOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,6}$/.test(v.trim())) {
    throw new UserError({
      message: `--max-connections must be a whole number of at least 1, not ${JSON.stringify(v)}`,
      hint: 'e.g. --max-connections 64 (default 256)',
    });
  }
  return Number(v.trim());
}

/** A repeatable option's accumulator. */
export const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** -f, -i, -e, --env-file, --secret-pattern: what every command that reads hadesfiles takes. */
export function common(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'hadesfile or directory (repeatable; default: hadesfile.yaml, else *.hades.yaml here)', collect, [])
    .option('-i, --inventory <path>', 'inventory file with hosts/targets (repeatable)', collect, [])
    .option('-e, --env <KEY=VALUE>', 'set a variable (repeatable; highest precedence)', collect, [])
    .option('--env-file <path>', 'read variables from a dotenv file (repeatable)', collect, [])
    .option('--secret-pattern <glob>', 'extra name pattern whose values are redacted, e.g. "*_CRED*" (repeatable)', collect, []);
}
