/**
 * A hadesfile project whose hosts are one test file's own sshd (test/lab/lab.ts startSshd): a
 * temp directory (mode 0755, so the lab user can reach it) with the sshd's known_hosts line,
 * directories the lab user owns (where the hosts write), a HOME of its own for the CLI.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { requireLab } from '../lab/helpers.js';
import { type ExtraSshd, type LabInfo, startSshd } from '../lab/lab.js';
import { project } from './cli.js';

/** This test file's own sshd: started before its tests, stopped after them. Call the result inside a test. */
export function fileSshd(name: string): () => ExtraSshd {
  let sshd: ExtraSshd | undefined;
  beforeAll(async () => {
    sshd = await startSshd(requireLab(), { name });
  });
  afterAll(async () => {
    await sshd?.stop();
  });
  return () => {
    if (!sshd) throw new Error(`the sshd "${name}" is not running (fileSshd is for use inside tests)`);
    return sshd;
  };
}

export interface LabProject {
  dir: string;
  lab: LabInfo;
  /** `<dir>/known_hosts`: the sshd's host key. */
  knownHosts: string;
  /** The CLI's environment: HOME `<dir>/home`, no ssh agent. */
  env: { HOME: string; SSH_AUTH_SOCK: string };
  /** The inventory lines of `names`, each on the sshd as the lab user with the lab's key; `extra`: more keys of each. */
  hostLines(names: readonly string[], extra?: string): string;
}

/** `files` as in cli.ts project(); `userDirs`: directories made for the lab user (owner), e.g. where the hosts write. */
export function labProject(sshd: ExtraSshd, opts: { files?: Record<string, string>; userDirs?: readonly string[] } = {}): LabProject {
  const lab = requireLab();
  const dir = project(opts.files ?? {});
  chmodSync(dir, 0o755);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  for (const d of opts.userDirs ?? []) {
    mkdirSync(join(dir, d));
    execFileSync('chown', [lab.user, join(dir, d)]);
  }
  mkdirSync(join(dir, 'home'));
  const hostLines = (names: readonly string[], extra?: string) =>
    names
      .map(
        (n) =>
          `  ${n}: { addr: ${sshd.host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey}${extra ? `, ${extra}` : ''} }`,
      )
      .join('\n');
  return { dir, lab, knownHosts, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' }, hostLines };
}
