/**
 * The host-lock commands (src/shell/lock.ts): exact strings, and what they do in a real
 * /bin/sh — atomic take, holder shown, release only by the holder, force release, and the
 * trusted-directory rule for the lock directory (no world-writable or foreign directory,
 * no planted link).
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRUSTED_WALK } from '../../src/shell/delivery.js';
import {
  lockAcquireCommand,
  lockConfirmCommand,
  lockRecordPrefix,
  lockDirWord,
  lockForceReleaseCommand,
  lockName,
  lockReleaseCommand,
  lockStatusCommand,
} from '../../src/shell/lock.js';
import { describeHolder, isTransient, parseLockRecord } from '../../src/engine/lock.js';

const sh = (script: string, input = '', env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync('/bin/sh', ['-c', script], { input, encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const record = (run: string) => `run: ${run}\nplan: deploy\nby: ops@laptop\npid: 42\nstarted: 2026-01-02T03:04:05.000Z\n`;

describe('lock command strings', () => {
  it('lock names and directory words', () => {
    expect(lockName('web-1.example')).toBe('web-1.example.lock');
    expect(lockName('a b/c')).toBe('a_b_c.lock');
    expect(lockName('..x')).toBe('_..x.lock');
    expect(lockDirWord('~/.hades/locks')).toBe('"$HOME"/.hades/locks');
    expect(lockDirWord('~')).toBe('"$HOME"');
    expect(lockDirWord("/srv/it's")).toBe(`'/srv/it'\\''s'`);
  });

  it('acquire', () => {
    expect(lockAcquireCommand('/var/lib/deploy', 'web1')).toBe(
      `umask 077; ${TRUSTED_WALK}hades_walk /var/lib/deploy; ` +
        `if [ "$k" = 514 ]; then printf 'refusing lock directory %s: it is writable by every user (sticky, like /tmp), so another user could create the lock first\\n' "$c" >&2; exit 3; fi; ` +
        'l=${c%/}/web1.lock; ' +
        'n=0; while :; do ' +
        `if mkdir -- "$l" 2>/dev/null; then printf '%s' "$HADES_LOCK_RECORD" > "$l/info" || { rm -rf -- "$l"; exit 1; }; echo locked; exit 0; ` +
        'elif [ -d "$l" ] && [ ! -L "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; exit 0; ' +
        'elif [ ! -e "$l" ] && [ ! -L "$l" ] && [ "$n" -lt 3 ]; then n=$((n+1)); ' +
        `else printf '%s exists and is not a lock directory\\n' "$l" >&2; exit 3; fi; done`,
    );
  });

  it("acquire under the login user's home checks HOME first", () => {
    expect(lockAcquireCommand('~/.hades/locks', 'web1')).toBe(
      `umask 077; [ -n "$HOME" ] || { echo 'HOME is not set on this host: set lock_dir to an absolute path' >&2; exit 3; }; ${TRUSTED_WALK}hades_walk "$HOME"/.hades/locks; ` +
        `if [ "$k" = 514 ]; then printf 'refusing lock directory %s: it is writable by every user (sticky, like /tmp), so another user could create the lock first\\n' "$c" >&2; exit 3; fi; ` +
        'l=${c%/}/web1.lock; ' +
        'n=0; while :; do ' +
        `if mkdir -- "$l" 2>/dev/null; then printf '%s' "$HADES_LOCK_RECORD" > "$l/info" || { rm -rf -- "$l"; exit 1; }; echo locked; exit 0; ` +
        'elif [ -d "$l" ] && [ ! -L "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; exit 0; ' +
        'elif [ ! -e "$l" ] && [ ! -L "$l" ] && [ "$n" -lt 3 ]; then n=$((n+1)); ' +
        `else printf '%s exists and is not a lock directory\\n' "$l" >&2; exit 3; fi; done`,
    );
  });

  it('release, status, force release', () => {
    expect(lockReleaseCommand('/d', 'web1', '20260102T030405Z-abcdef')).toBe(
      `${TRUSTED_WALK}hades_walk /d 'lock directory /d does not exist'; ` +
        `if [ "$k" = 514 ]; then printf 'refusing lock directory %s: it is writable by every user (sticky, like /tmp), so another user could create the lock first\\n' "$c" >&2; exit 3; fi; ` +
        'l=${c%/}/web1.lock; ' +
        `if [ -d "$l" ] && [ ! -L "$l" ] && grep -qxF 'run: 20260102T030405Z-abcdef' "$l/info" 2>/dev/null; then rm -rf -- "$l" && echo released; else echo 'not held'; fi`,
    );
    expect(lockStatusCommand('~/.hades/locks', 'web1')).toBe(
      'l="$HOME"/.hades/locks/web1.lock; if [ -d "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; else echo free; fi; exit 0',
    );
    expect(lockForceReleaseCommand('/d', 'web1')).toBe(
      'l=/d/web1.lock; if [ ! -d "$l" ] && [ ! -L "$l" ]; then echo free; exit 0; fi; ' +
        `${TRUSTED_WALK}hades_walk /d 'lock directory /d does not exist'; ` +
        `if [ "$k" = 514 ]; then printf 'refusing lock directory %s: it is writable by every user (sticky, like /tmp), so another user could create the lock first\\n' "$c" >&2; exit 3; fi; ` +
        'l=${c%/}/web1.lock; ' +
        `if [ -d "$l" ] && [ ! -L "$l" ]; then echo held; cat -- "$l/info" 2>/dev/null; rm -rf -- "$l"; ` +
        `else printf '%s is not a lock directory: remove it by hand\\n' "$l" >&2; exit 3; fi`,
    );
  });
});

describe('lock commands in a real shell', () => {
  const base = () => {
    const d = mkdtempSync(join(tmpdir(), 'hades-lock-'));
    chmodSync(d, 0o755);
    return d;
  };

  it('confirm turns a trying record into the final one, only for the run that holds the lock', () => {
    const d = join(base(), 'locks');
    const trying = `${record('run-a')}state: trying\n`;
    const held = `${record('run-a')}state: held\n`;
    expect(sh(lockRecordPrefix(trying) + lockAcquireCommand(d, 'web1')).out).toBe('locked\n');
    const seen = sh(lockRecordPrefix(record('run-b')) + lockAcquireCommand(d, 'web1'))
      .out.trim()
      .split('\n');
    expect(isTransient(parseLockRecord(seen.slice(1)))).toBe(true);
    expect(sh(lockRecordPrefix(`${record('run-b')}state: held\n`) + lockConfirmCommand(d, 'web1', 'run-b')).out).toBe('not held\n');
    expect(readFileSync(join(d, 'web1.lock', 'info'), 'utf8')).toBe(trying);
    expect(sh(lockRecordPrefix(held) + lockConfirmCommand(d, 'web1', 'run-a'))).toMatchObject({ code: 0, out: 'confirmed\n' });
    expect(readFileSync(join(d, 'web1.lock', 'info'), 'utf8')).toBe(held);
    expect(readdirSync(join(d, 'web1.lock'))).toEqual(['info']);
    expect(isTransient(parseLockRecord(held.split('\n')))).toBe(false);
    expect(isTransient(parseLockRecord(record('run-a').split('\n')))).toBe(false); // a record of an older version: final
    expect(isTransient(parseLockRecord([]))).toBe(true); // being written
    expect(sh(lockConfirmCommand(d, 'web2', 'run-a')).out).toBe('not held\n');
  });

  it('creates the lock directory 0700, takes the lock once, shows the holder to the next run, releases only its own', () => {
    const d = join(base(), 'state', 'locks');
    const a = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(d, 'web1'));
    expect(a).toMatchObject({ code: 0, out: 'locked\n' });
    expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(statSync(join(d, '..')).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(d, 'web1.lock', 'info'), 'utf8')).toBe(record('run-a'));

    const b = sh(lockRecordPrefix(record('run-b')) + lockAcquireCommand(d, 'web1'));
    expect(b.code).toBe(0);
    const lines = b.out.trim().split('\n');
    expect(lines[0]).toBe('held');
    const rec = parseLockRecord(lines.slice(1));
    expect(rec).toEqual({ run: 'run-a', plan: 'deploy', by: 'ops@laptop', pid: '42', started: '2026-01-02T03:04:05.000Z' });
    expect(describeHolder(rec, Date.parse('2026-01-02T03:07:05.000Z'))).toBe(
      'run run-a (plan deploy, by ops@laptop, pid 42, since 2026-01-02T03:04:05.000Z, 3m ago)',
    );
    // The holder's record was not touched; another host's lock is independent.
    expect(readFileSync(join(d, 'web1.lock', 'info'), 'utf8')).toBe(record('run-a'));
    expect(sh(lockRecordPrefix(record('run-b')) + lockAcquireCommand(d, 'web2')).out).toBe('locked\n');

    expect(sh(lockStatusCommand(d, 'web1')).out).toBe(`held\n${record('run-a')}`);
    expect(sh(lockReleaseCommand(d, 'web1', 'run-b')).out).toBe('not held\n');
    expect(existsSync(join(d, 'web1.lock'))).toBe(true);
    expect(sh(lockReleaseCommand(d, 'web1', 'run-a')).out).toBe('released\n');
    expect(existsSync(join(d, 'web1.lock'))).toBe(false);
    expect(sh(lockStatusCommand(d, 'web1')).out).toBe('free\n');
    expect(sh(lockReleaseCommand(d, 'web1', 'run-a')).out).toBe('not held\n');
  });

  it('of concurrent takers exactly one gets the lock', async () => {
    const d = join(base(), 'locks');
    const { spawn } = await import('node:child_process');
    const runs = Array.from(
      { length: 8 },
      (_, i) =>
        new Promise<string>((res) => {
          const c = spawn('/bin/sh', ['-c', lockRecordPrefix(record(`run-${i}`)) + lockAcquireCommand(d, 'web1')]);
          let out = '';
          c.stdout.on('data', (x) => (out += x));
          c.stdin.end();
          c.on('close', () => res(out.split('\n')[0]!));
        }),
    );
    const answers = await Promise.all(runs);
    expect(answers.filter((a) => a === 'locked')).toHaveLength(1);
    expect(answers.filter((a) => a === 'held')).toHaveLength(7);
  });

  it('force release removes whoever holds it and says whose it was', () => {
    const d = join(base(), 'locks');
    sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(d, 'web1'));
    expect(sh(lockForceReleaseCommand(d, 'web1'))).toMatchObject({ code: 0, out: `held\n${record('run-a')}` });
    expect(existsSync(join(d, 'web1.lock'))).toBe(false);
    expect(sh(lockForceReleaseCommand(d, 'web1'))).toMatchObject({ code: 0, out: 'free\n' });
    expect(sh(lockForceReleaseCommand(join(d, 'missing'), 'web1'))).toMatchObject({ code: 0, out: 'free\n' });
  });

  it('refuses a world-writable (sticky, like /tmp) lock directory', () => {
    const d = join(base(), 'shared');
    mkdirSync(d);
    chmodSync(d, 0o1777);
    const r = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(d, 'web1'));
    expect(r.code).toBe(3);
    expect(r.err).toContain(`refusing lock directory ${d}: it is writable by every user`);
    expect(existsSync(join(d, 'web1.lock'))).toBe(false);
  });

  it('refuses a lock directory another user owns, and one under a group-writable directory', () => {
    const b = base();
    const foreign = join(b, 'foreign');
    mkdirSync(foreign);
    chownSync(foreign, 65534, 65534);
    const r = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(foreign, 'web1'));
    expect(r.code).toBe(3);
    expect(r.err).toContain(`refusing to write under ${foreign}: it is owned by`);
    const gw = join(b, 'gw');
    mkdirSync(gw);
    chownSync(gw, 0, 65534);
    chmodSync(gw, 0o775);
    const r2 = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(join(gw, 'locks'), 'web1'));
    expect(r2.code).toBe(3);
    expect(r2.err).toContain(`refusing to write under ${gw}`);
    expect(existsSync(join(gw, 'locks'))).toBe(false);
  });

  it('a lock given back between the failed mkdir and the check (another run releasing) is taken, not reported as "not a lock"', () => {
    const d = join(base(), 'locks');
    mkdirSync(d, { mode: 0o700 });
    // A mkdir on PATH that fails once as if another run held the lock, which is gone by the check.
    const bin = mkdtempSync(join(tmpdir(), 'hades-lock-bin-'));
    const once = join(bin, 'failed-once');
    writeFileSync(join(bin, 'mkdir'), `#!/bin/sh\nif [ ! -e '${once}' ]; then : > '${once}'; exit 1; fi\nexec /bin/mkdir "$@"\n`, {
      mode: 0o755,
    });
    const r = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(d, 'web1'), '', {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(r).toMatchObject({ code: 0, out: 'locked\n' });
    expect(existsSync(once)).toBe(true);
    expect(readFileSync(join(d, 'web1.lock', 'info'), 'utf8')).toBe(record('run-a'));
  });

  it('never follows a link planted as the lock', () => {
    const d = join(base(), 'locks');
    mkdirSync(d, { mode: 0o700 });
    const target = mkdtempSync(join(tmpdir(), 'hades-lock-target-'));
    symlinkSync(target, join(d, 'web1.lock'));
    const r = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand(d, 'web1'));
    expect(r.code).toBe(3);
    expect(r.err).toContain('web1.lock exists and is not a lock directory');
    expect(existsSync(join(target, 'info'))).toBe(false);
    expect(sh(lockForceReleaseCommand(d, 'web1')).code).toBe(3);
    expect(lstatSync(join(d, 'web1.lock')).isSymbolicLink()).toBe(true);
  });

  it('~/… is the home of the user it runs as; without HOME it refuses', () => {
    const home = base();
    expect(
      sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand('~/.hades/locks', 'web1'), '', { ...process.env, HOME: home }).out,
    ).toBe('locked\n');
    expect(existsSync(join(home, '.hades', 'locks', 'web1.lock', 'info'))).toBe(true);
    const r = sh(lockRecordPrefix(record('run-a')) + lockAcquireCommand('~/.hades/locks', 'web1'), '', { PATH: process.env.PATH! });
    expect(r.code).toBe(3);
    expect(r.err).toContain('HOME is not set on this host');
  });
});
