/**
 * `timeout`, `default_timeout` and `retries` through the built CLI on a local host (the
 * orchestrator's own shell): the whole process group is killed, and dry-run shows every
 * attempt count, timeout and delay — in text and in the JSON plan.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { jsonEvents, project, runCli, startCli } from '../helpers/cli.js';

/** Live processes on this machine whose command line is exactly one of `cmds`. */
function running(cmds: string[]): string[] {
  return execFileSync('ps', ['-eo', 'stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([stat]) => stat && !stat.startsWith('Z'))
    .map((parts) => parts.slice(1).join(' '))
    .filter((c) => cmds.includes(c))
    .sort();
}

describe('timeouts and retries on a local host', () => {
  it('a timed-out command is killed with its whole process group (a child ignoring SIGTERM too)', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  j:
    local: true
    actions:
      - name: hang
        timeout: 500ms
        run: |
          sleep 4901 &
          sh -c 'trap "" TERM; sleep 4903' &
          sleep 4902
plans:
  p:
    steps:
      - { name: s, job: j, targets: localhost }
`,
    });
    const mine = ['sleep 4901', 'sleep 4902', 'sleep 4903'];
    const { done } = startCli(['plan', 'p', '--output', 'json'], { cwd: dir });
    let seen: string[] = [];
    for (let i = 0; i < 400 && seen.length < 3; i++) {
      seen = running(mine);
      if (seen.length < 3) await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toEqual(mine);
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const end = jsonEvents(r.stdout).find((e) => e.type === 'action.end');
    expect(end).toMatchObject({ status: 'failed', message: 'timed out after 500ms' });
    expect(running(mine)).toEqual([]);
  });

  it('default_timeout: the action’s own timeout wins, then the job’s, then the plan’s; a gate keeps its own', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  a:
    default_timeout: 2m
    actions:
      - run: echo own
        timeout: 10s
      - run: echo job
      - run: echo retried
        retries: 2
        delay: 3s
  b:
    actions:
      - run: echo plan
  g:
    actions:
      - wait: { message: go?, timeout: 1m }
plans:
  p:
    default_timeout: 5m
    steps:
      - { name: one, job: a, targets: localhost }
      - { name: two, job: b, targets: localhost }
      - { name: three, job: g, targets: localhost }
`,
    });
    const r = await runCli(['plan', 'p', '--dry-run'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lineAfter = (cmd: string) => r.stdout.split('\n')[r.stdout.split('\n').findIndex((l) => l.trim() === `$ ${cmd}`) + 1]!.trim();
    expect(lineAfter('echo own')).toBe('timeout 10s per attempt (then killed on the host)');
    expect(lineAfter('echo job')).toBe('timeout 2m per attempt (then killed on the host)');
    expect(lineAfter('echo retried')).toBe('timeout 2m per attempt (then killed on the host); up to 3 attempts, 3s apart');
    expect(lineAfter('echo plan')).toBe('timeout 5m per attempt (then killed on the host)');
    expect(r.stdout).toContain('gate: go? (declined after 1m without an answer)');
    expect(r.stdout).not.toMatch(/gate: go\?.*\n.*per attempt/);

    const j = await runCli(['plan', 'p', '--dry-run', '--output', 'json'], { cwd: dir });
    expect(j.code, j.stderr).toBe(0);
    const planJson = JSON.parse(j.stdout);
    const actions = planJson.steps.map((s: any) => s.batches[0].hosts[0].actions);
    expect(actions[0].map((a: any) => [a.attemptTimeoutMs, a.retry])).toEqual([
      [10_000, undefined],
      [120_000, undefined],
      [120_000, { attempts: 3, delayMs: 3000, backoff: 1 }],
    ]);
    expect(actions[1][0].attemptTimeoutMs).toBe(300_000);
    expect(actions[2][0].timeoutMs).toBe(60_000); // the gate's own timeout, not the plan's default
    expect(actions[2][0].attemptTimeoutMs).toBeUndefined(); // and no attempt timeout racing it
  });

  it('without timeout or retries nothing is retried or timed out: one attempt, no retry event', async () => {
    const dir = project({
      'hadesfile.yaml': `jobs:
  j:
    local: true
    actions:
      - run: exit 4
plans:
  p:
    steps:
      - { name: s, job: j, targets: localhost }
`,
    });
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir });
    expect(r.code).toBe(1);
    const ev = jsonEvents(r.stdout);
    expect(ev.filter((e) => e.type === 'action.retry')).toEqual([]);
    const end = ev.find((e) => e.type === 'action.end')!;
    expect(end.message).toBe('command exited with code 4: exit 4');
    expect(end.attempts).toBeUndefined();
  });
});
