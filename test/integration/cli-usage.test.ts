/**
 * Every usage error of the command line exits 2 (as the README promises), for every
 * subcommand — not commander's default exit 1 — with the parser's message and the
 * pointer to --help. --help and --version exit 0; --help lists the exit codes.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const cases: Array<[string, string[], RegExp]> = [
  ['unknown command', ['deploy'], /unknown command 'deploy'/],
  ['unknown top-level option', ['--frobnicate'], /unknown option '--frobnicate'/],
  ['plan: missing argument', ['plan'], /missing required argument 'plan'/],
  ['plan: unknown option', ['plan', 'release', '--bogus'], /unknown option '--bogus'/],
  ['plan: bad --output choice', ['plan', 'release', '--output', 'xml'], /argument 'xml' is invalid/],
  ['plan: option missing its value', ['plan', 'release', '--limit'], /option '--limit <hosts>' argument missing/],
  ['run (alias): unknown option', ['run', 'release', '--bogus'], /unknown option '--bogus'/],
  ['validate: unknown option', ['validate', '--zzz'], /unknown option '--zzz'/],
  ['validate: too many arguments', ['validate', 'a', 'b'], /too many arguments/],
  ['list: unknown option', ['list', '--zzz'], /unknown option '--zzz'/],
  ['list: too many arguments', ['list', 'x'], /too many arguments/],
  ['init: too many arguments', ['init', 'a', 'b'], /too many arguments/],
  ['init: unknown option', ['init', '--zzz'], /unknown option '--zzz'/],
  ['doctor: bad --output choice', ['doctor', '--output', 'xml'], /argument 'xml' is invalid/],
  ['doctor: unknown option', ['doctor', '--zzz'], /unknown option '--zzz'/],
  ['schema: too many arguments', ['schema', 'x'], /too many arguments/],
  ['registry: no subcommand', ['registry'], /Usage: hades registry/],
  ['registry: unknown subcommand', ['registry', 'nope'], /unknown command 'nope'/],
  ['cache: no subcommand', ['cache'], /Usage: hades cache/],
  ['cache ls: bad --output choice', ['cache', 'ls', '--output', 'xml'], /argument 'xml' is invalid/],
  ['cache prune: unknown option', ['cache', 'prune', '--all'], /unknown option '--all'/],
  ['cache prune: option missing its value', ['cache', 'prune', '--keep-last'], /option '--keep-last <N>' argument missing/],
  ['registry ls: missing argument', ['registry', 'ls'], /missing required argument 'registry'/],
  ['registry ls: bad --output choice', ['registry', 'ls', 'local', '--output', 'xml'], /argument 'xml' is invalid/],
  ['registry inspect: missing argument', ['registry', 'inspect', 'local'], /missing required argument 'ref'/],
  ['registry inspect: unknown option', ['registry', 'inspect', 'local', 'a:1', '--zzz'], /unknown option '--zzz'/],
  ['registry push: missing argument', ['registry', 'push', 'local', 'dir'], /missing required argument 'ref'/],
  ['registry push: unknown option', ['registry', 'push', 'local', 'dir', 'a:1', '--zzz'], /unknown option '--zzz'/],
  ['registry pull: missing argument', ['registry', 'pull', 'local'], /missing required argument 'ref'/],
  ['registry pull: bad --output choice', ['registry', 'pull', 'local', 'a:1', '--output', 'xml'], /argument 'xml' is invalid/],
  ['registry promote: missing argument', ['registry', 'promote', 'a', 'b'], /missing required argument 'ref'/],
  ['registry promote: unknown option', ['registry', 'promote', 'a', 'b', 'n:1', '--zzz'], /unknown option '--zzz'/],
  ['registry tag: missing new tag', ['registry', 'tag', 'local', 'a:1'], /missing required argument 'newtag'/],
  ['registry exists: missing argument', ['registry', 'exists', 'local'], /missing required argument 'ref'/],
  ['registry exists: too many arguments', ['registry', 'exists', 'local', 'a:1', 'b:2'], /too many arguments/],
  ['registry rm: unknown option', ['registry', 'rm', 'local', 'a:1', '--zzz'], /unknown option '--zzz'/],
  ['registry gc: missing argument', ['registry', 'gc'], /missing required argument 'registry'/],
];

describe('usage errors exit 2', () => {
  it.each(cases)('%s', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    // the parser's message points to --help; a command missing its subcommand shows that help itself
    expect(r.stderr).toMatch(/\(run with --help for usage\)|^Usage: hades /m);
    expect(r.stdout).toBe('');
  });

  it.each([[['--help']], [['plan', '--help']], [['registry', 'push', '--help']], [['--version']]])('%j exits 0', async (args) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
  });

  it('--help of hades and of hades plan list the exit codes, 4 included', async () => {
    for (const args of [['--help'], ['plan', '--help']]) {
      const r = await runCli(args);
      expect(r.stdout).toContain('Exit codes:');
      expect(r.stdout).toMatch(/^ {2}2 {4}usage or user error/m);
      expect(r.stdout).toMatch(/^ {2}4 {4}completed, but some hosts failed within their step's max_failures$/m);
    }
    const plan = await runCli(['plan', '--help']);
    expect(plan.stdout).toContain('--limit <hosts>');
    expect(plan.stdout).toContain('--failed-hosts-file <file>');
  });
});
