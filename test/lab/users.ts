/**
 * The lab's machine-wide users (see LAB_USERS, LAB_SHELL_USERS) and their per-host private
 * ~/.hades mounts. Imports only node builtins (bench/lib/lab.mjs transpiles test/lab/*.ts).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const LAB_USERS = { user: 'hades-lab', sudoUser: 'hades-sudo', nosudoUser: 'hades-nosudo' } as const;
/**
 * Lab users whose login shell is not /bin/sh (the users above have /bin/sh): sshd runs a
 * command as `$SHELL -c STRING`, so these show what a bash, fish or tcsh login does to it.
 * Each has passwordless sudo (its own sudoers file, so the file above stays as it was).
 */
export const LAB_SHELL_USERS = {
  bashUser: { name: 'hades-bash', shell: '/bin/bash' },
  fishUser: { name: 'hades-fish', shell: '/usr/bin/fish' },
  tcshUser: { name: 'hades-tcsh', shell: '/usr/bin/tcsh' },
} as const;

/** Machine-wide lab users; idempotent and safe when two labs start at once. */
export async function ensureUsers(): Promise<void> {
  const users = [...Object.values(LAB_USERS).map((name) => ({ name, shell: '/bin/sh' })), ...Object.values(LAB_SHELL_USERS)];
  for (const { name: u, shell } of users) {
    const exists = await run('id', ['-u', u]).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await run('useradd', ['-m', '-s', shell, u]).catch(async (e) => {
        // Lost a race with another lab: fine if the user exists now.
        await run('id', ['-u', u]).catch(() => {
          throw e;
        });
      });
    }
    // useradd leaves the password locked ("!"); with UsePAM no, sshd then refuses key logins.
    const shadow = fs.readFileSync('/etc/shadow', 'utf8');
    const line = shadow.split('\n').find((l) => l.startsWith(`${u}:`));
    if (line?.split(':')[1] !== '*') await run('usermod', ['-p', '*', u]);
    const pw = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${u}:`));
    if (pw?.split(':')[6] !== shell) await run('usermod', ['-s', shell, u]);
  }
  await writeSudoers(
    '/etc/sudoers.d/hades-lab-shells',
    `# hades test lab: passwordless sudo for the users with other login shells\n${Object.values(LAB_SHELL_USERS)
      .map((x) => `${x.name} ALL=(ALL) NOPASSWD:ALL\n`)
      .join('')}`,
  );
  await writeSudoers(
    '/etc/sudoers.d/hades-lab',
    `# hades test lab: passwordless sudo for the sudo user only\n${LAB_USERS.sudoUser} ALL=(ALL) NOPASSWD:ALL\n`,
  );
}

/** Writes a sudoers.d file (mode 0440, temp + rename) unless it already holds `want`. */
async function writeSudoers(sudoers: string, want: string): Promise<void> {
  let have = '';
  try {
    have = fs.readFileSync(sudoers, 'utf8');
  } catch {
    /* missing */
  }
  if (have !== want) {
    const tmp = `${sudoers}.tmp${process.pid}`;
    fs.writeFileSync(tmp, want, { mode: 0o440 });
    fs.chmodSync(tmp, 0o440);
    fs.renameSync(tmp, sudoers);
  }
}

/**
 * Each lab user's ~/.hades is private to the host too (a tmpfs owned by the user, mode
 * 0700): that is where a run's host locks live by default, and the users' homes are shared
 * by every host and every lab on the machine — a real host has its own home.
 */
export function homeMounts(): string[] {
  const passwd = fs.readFileSync('/etc/passwd', 'utf8').split('\n');
  const out: string[] = [];
  for (const u of [...Object.values(LAB_USERS), ...Object.values(LAB_SHELL_USERS).map((x) => x.name)]) {
    const f = passwd.find((l) => l.startsWith(`${u}:`))?.split(':');
    if (!f?.[5]?.startsWith('/home/')) continue;
    const d = `${f[5]}/.hades`;
    out.push(`mkdir -p ${d}`, `mount -t tmpfs -o mode=0700,uid=${f[2]},gid=${f[3]},size=16m hades-lab ${d}`);
  }
  return out;
}
