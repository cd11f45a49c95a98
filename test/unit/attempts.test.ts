/** The pure parts of timeouts and retries: delays, their dry-run text, the pgid line, the kill command. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { delayBefore, describeAttempts } from '../../src/config/attempts.js';
import { announcedWireCommand, killGroupCommand, quote, wireCommand } from '../../src/shell/command.js';
import { PgidLine } from '../../src/transport/ssh/channel.js';

describe('retry delays', () => {
  it('constant without backoff; multiplied by backoff, capped at 5m (or the first delay when longer)', () => {
    expect([1, 2, 3].map((n) => delayBefore({ attempts: 4, delayMs: 2000, backoff: 1 }, n))).toEqual([2000, 2000, 2000]);
    expect([1, 2, 3, 4].map((n) => delayBefore({ attempts: 5, delayMs: 2000, backoff: 2 }, n))).toEqual([2000, 4000, 8000, 16000]);
    expect(delayBefore({ attempts: 12, delayMs: 60_000, backoff: 3 }, 3)).toBe(300_000);
    expect(delayBefore({ attempts: 3, delayMs: 600_000, backoff: 2 }, 2)).toBe(600_000);
    expect(delayBefore({ attempts: 3, delayMs: 0, backoff: 1 }, 1)).toBe(0);
  });

  it('dry-run text shows every attempt count, timeout and delay', () => {
    expect(describeAttempts(undefined, undefined)).toBeUndefined();
    expect(describeAttempts(30_000, undefined)).toBe('timeout 30s per attempt (then killed on the host)');
    expect(describeAttempts(undefined, { attempts: 3, delayMs: 2000, backoff: 1 })).toBe('up to 3 attempts, 2s apart');
    expect(describeAttempts(undefined, { attempts: 2, delayMs: 0, backoff: 1 })).toBe('up to 2 attempts, no delay between them');
    expect(describeAttempts(90_000, { attempts: 4, delayMs: 1000, backoff: 2 })).toBe(
      'timeout 1m30s per attempt (then killed on the host); up to 4 attempts, 1s, 2s, 4s apart (backoff ×2, capped at 5m)',
    );
  });
});

describe('process group of an SSH command', () => {
  it('the announcing wire form: one echo before the plain wire form', () => {
    expect(announcedWireCommand('true')).toBe(
      `exec /bin/sh -c 'echo hades-pgid $$ >&2; ${wireCommand('true').slice("exec /bin/sh -c '".length)}`,
    );
  });

  it.each(['/bin/sh', '/bin/bash', '/usr/bin/zsh', '/usr/bin/fish', '/usr/bin/tcsh', '/bin/csh'])(
    'as %s -c (a session leader, as sshd starts it): the first stderr line is the group id, the rest is the command',
    (shell) => {
      const r = spawnSync('setsid', ['-w', shell, '-c', announcedWireCommand('echo out; echo err >&2; ps -o pgid= -p $$')], {
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' },
      });
      const m = /^hades-pgid ([0-9]+)\nerr\n$/.exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      expect(r.stdout.split('\n')[0]).toBe('out');
      expect(r.stdout.split('\n')[1]!.trim()).toBe(m![1]);
    },
  );

  it('PgidLine takes the marker off stderr, whatever the chunking, and passes the rest through unchanged', () => {
    const input = 'rc says hi\nhades-pgid 4242\nreal stderr\nmore';
    for (let cut = 0; cut <= input.length; cut++) {
      let passed = '';
      const found: number[] = [];
      const p = new PgidLine(
        (c) => (passed += c.toString()),
        (n) => found.push(n),
      );
      p.push(Buffer.from(input.slice(0, cut)));
      p.push(Buffer.from(input.slice(cut)));
      p.end();
      expect(found, `cut ${cut}`).toEqual([4242]);
      expect(passed, `cut ${cut}`).toBe('rc says hi\nreal stderr\nmore');
    }
    // Only the first marker is taken: a command printing the same line keeps it.
    let passed = '';
    const p = new PgidLine(
      (c) => (passed += c.toString()),
      () => undefined,
    );
    p.push(Buffer.from('hades-pgid 1\nhades-pgid 2\n'));
    expect(passed).toBe('hades-pgid 2\n');
  });

  it('the kill command: TERM to the group, polls, KILL after the grace', () => {
    expect(killGroupCommand(4242, 2000)).toBe(
      "kill -TERM -4242 2>/dev/null || exit 0; i=0; while kill -0 -4242 2>/dev/null; do if [ $i -ge 20 ]; then kill -KILL -4242 2>/dev/null; j=0; while [ $j -lt 20 ] && ps -o stat= -g 4242 2>/dev/null | grep -qv '^Z'; do sleep 0.05; j=$((j+1)); done; exit 0; fi; sleep 0.1; i=$((i+1)); done",
    );
    expect(() => killGroupCommand(1, 2000)).toThrow(/invalid process group/);
    // With become: first as that user (through sudo -n), then as the SSH user.
    const plain = killGroupCommand(4242, 2000);
    expect(killGroupCommand(4242, 2000, 'app')).toBe(`sudo -n -u app -- sh -c ${quote(plain)} </dev/null 2>/dev/null; ${plain}`);
  });

  it('the kill command kills a real group, a member that ignores SIGTERM included', () => {
    // setsid -f forks: the leader reports its pid, its members keep no pipe of ours open.
    const r = spawnSync(
      'setsid',
      ['-f', 'sh', '-c', `echo $$; exec >/dev/null 2>&1 </dev/null; trap "" TERM; sleep 4801 & sleep 4802 & wait`],
      { encoding: 'utf8' },
    );
    const pgid = Number(r.stdout.trim());
    expect(pgid).toBeGreaterThan(1);
    // Live members (a killed orphan may stay a zombie until this machine's init reaps it).
    const members = () =>
      spawnSync('ps', ['-o', 'pid=,stat=', '-g', String(pgid)], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter((l) => l.trim() && !/\sZ/.test(l))
        .join('\n');
    expect(members()).not.toBe('');
    const k = spawnSync('sh', ['-c', killGroupCommand(pgid, 300)], { encoding: 'utf8' });
    expect(k.status).toBe(0);
    expect(members()).toBe('');
  });
});
