/** Runs the built CLI (dist/bin/hades.js, package.json's bin: the bundle) as a real child process, as an operator would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'dist/bin/hades.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `done` rejects when the CLI reported an internal error (a bug: a stack trace, or a process
 * that stayed alive after its command finished) unless the test expects one
 * (`internalError: true`) — so no test passes over one unnoticed.
 */
export function startCli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; internalError?: boolean } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...opts.env };
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: env as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdin!.end(opts.input ?? '');
  const done = new Promise<CliResult>((res, rej) =>
    child.on('close', (code) => {
      if (!opts.internalError && /hades: internal error/.test(stderr))
        rej(new Error(`hades ${args.join(' ')} reported an internal error (exit ${code}):\n${stderr}`));
      else res({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

export function runCli(args: string[], opts: Parameters<typeof startCli>[1] = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

/** A temp project directory with the given files. */
export function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hades-test-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

export function jsonEvents(stdout: string): Array<Record<string, any>> {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/**
 * DEMO_DIR and DEMO_PORT for one run of hadesfile.example.yaml: its own directory, and a port that
 * is free on the demo hosts' three loopback addresses (127.0.0.11-13), so parallel runs never meet.
 */
export async function demoEnv(): Promise<{ DEMO_DIR: string; DEMO_PORT: string }> {
  const { createServer } = await import('node:net');
  const bind = (addr: string, port: number) =>
    new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(port, addr, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
  for (;;) {
    const port = await bind('127.0.0.11', 0);
    try {
      await bind('127.0.0.12', port);
      await bind('127.0.0.13', port);
      return { DEMO_DIR: join(mkdtempSync(join(tmpdir(), 'hades-demo-')), 'demo'), DEMO_PORT: String(port) };
    } catch {
      /* taken on another address: try another port */
    }
  }
}
