/**
 * Host deploy locks and plan hooks (issue 14 parts 1 and 6) on the real-sshd lab, through
 * the built CLI: overlapping runs (exactly one runs, the other exits 5 naming the holder and
 * touches nothing), disjoint runs, Ctrl-C and kill -9, `hades lock status|release --force`,
 * lock_dir rules, and the on_start / on_success / on_failure hooks.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lockAcquireCommand, lockConfirmCommand, lockReleaseCommand } from '../../src/shell/lock.js';
import { LOCK_HOSTS, requireLab } from '../lab/helpers.js';
import type { LabInfo } from '../lab/lab.js';
import { jsonEvents, runCli, startCli } from '../helpers/cli.js';

let lab: LabInfo;
beforeAll(() => {
  lab = requireLab();
  for (const n of LOCK_HOSTS) onHost(n, `chown ${lab.user} /opt && rm -rf /opt/* ${`/home/${lab.user}`}/.hades/*`);
});

function onHost(name: string, script: string): string {
  const h = lab.hosts.find((x) => x.name === name)!;
  return execFileSync('nsenter', ['-t', String(h.pid), '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
}

function inventory(extra: Record<string, string> = {}): string {
  return `hosts:
${LOCK_HOSTS.map((n) => lab.hosts.find((h) => h.name === n)!)
  .map(
    (h) =>
      `  ${h.name}: { addr: ${h.addr}, port: ${h.port}, user: ${lab.user}, identity_file: ${lab.clientKey}${extra[h.name] ? `, ${extra[h.name]}` : ''} }`,
  )
  .join('\n')}
  down: { addr: ${lab.base}.250, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey}, connect_timeout: 2s }
known_hosts: [${lab.knownHosts}]
`;
}

/** A project whose job writes /opt/<run id> on each host, after sleeping NAP seconds. */
function project(body = '', extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hades-lock-'));
  mkdirSync(join(dir, 'home'));
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    inventory(extra) +
      `jobs:
  work:
    actions:
      - run: sleep \${NAP}; echo "$HADES_RUN_ID" >> /opt/touched
plans:
  a:
    env: { NAP: "0" }
    steps: [{ name: work, job: work, targets: [h15, h16] }]
  b:
    env: { NAP: "0" }
    steps: [{ name: work, job: work, targets: [h16, h17] }]
  only15:
    env: { NAP: "0" }
    steps: [{ name: work, job: work, targets: [h15] }]
  only16:
    env: { NAP: "0" }
    steps: [{ name: work, job: work, targets: [h16] }]
${body}`,
  );
  return { dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' } };
}

const touched = (host: string) => onHost(host, 'cat /opt/touched 2>/dev/null || true').split('\n').filter(Boolean);
const runIdOf = (stdout: string) => /^run (\S+): plan/m.exec(stdout)?.[1];

/** Starts a plan and resolves once its first step has started (the locks are then held). */
async function startHolding(dir: string, env: Record<string, string>, args: string[]) {
  const run = startCli(['plan', ...args, '-o', 'plain'], { cwd: dir, env });
  let out = '';
  await new Promise<void>((res, rej) => {
    run.child.stdout!.on('data', (c) => {
      out += c;
      if (/^== step /m.test(out)) res();
    });
    run.child.on('close', () => rej(new Error(`the run ended before its first step:\n${out}`)));
  });
  return { ...run, runId: runIdOf(out)! };
}

describe('host locks on the lab', () => {
  it('overlapping runs: exactly one runs; the other exits 5 within seconds naming the holder, and touched nothing', async () => {
    const { dir, env } = project();
    const first = await startHolding(dir, env, ['a', '-e', 'NAP=4']);
    const second = await runCli(['plan', 'b', '-o', 'plain'], { cwd: dir, env });
    expect(second.code).toBe(5);
    // It failed at once, while the holder was still in its 4 s step.
    expect(first.child.exitCode).toBe(null);
    expect(second.stderr).toContain(`error: host h16 is locked by another run: run ${first.runId} (plan a, by `);
    expect(second.stderr).toContain('no action was run: 1 host(s) locked by another run');
    expect(second.stderr).toContain('hades lock release --force --limit h16');
    expect(second.stdout).not.toMatch(/^== step/m);
    const r1 = await first.done;
    expect(r1.code).toBe(0);
    expect(touched('h15')).toEqual([first.runId]);
    expect(touched('h16')).toEqual([first.runId]);
    expect(touched('h17')).toEqual([]);
    // Everything is free again: the second plan now runs.
    const again = await runCli(['plan', 'b', '-o', 'plain'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(touched('h17')).toHaveLength(1);
  });

  it('overlapping runs started at the same instant: exactly one runs, the other exits 5 (both may be in the parallel phase)', async () => {
    const { dir, env } = project(`  ab:
    env: { NAP: "1" }
    steps: [{ name: work, job: work, targets: [h15, h16, h17] }]
  ba:
    env: { NAP: "1" }
    steps: [{ name: work, job: work, targets: [h17, h16, h15] }]
`);
    for (let round = 0; round < 3; round++) {
      const [x, y] = await Promise.all([
        runCli(['plan', 'ab', '-o', 'plain'], { cwd: dir, env }),
        runCli(['plan', 'ba', '-o', 'plain'], { cwd: dir, env }),
      ]);
      expect([x.code, y.code].sort(), x.stdout + x.stderr + y.stdout + y.stderr).toEqual([0, 5]);
      const loser = x.code === 5 ? x : y;
      expect(loser.stderr).toMatch(/error: host h1[567] is locked by another run: run /);
      expect(loser.stdout).not.toMatch(/^== step/m);
    }
    const status = await runCli(['lock', 'status', '--limit', 'h15,h16,h17'], { cwd: dir, env });
    expect(status.stdout).toContain('3 host(s): 0 locked, 3 free');
  });

  it('a lock another run is still taking (state: trying) is waited for, then taken; one left behind fails the run after the wait, naming it', async () => {
    const { dir, env } = project();
    const plant = (state: string) =>
      onHost(
        'h16',
        `su -s /bin/sh ${lab.user} -c 'umask 077; mkdir -p "$HOME/.hades/locks/h16.lock" && printf "run: other-run\\nplan: x\\nby: ops@elsewhere\\npid: 1\\nstarted: 2026-01-01T00:00:00.000Z\\nstate: ${state}\\n" > "$HOME/.hades/locks/h16.lock/info"'`,
      );
    const unplant = () => onHost('h16', `rm -rf /home/${lab.user}/.hades/locks/h16.lock`);
    plant('trying');
    const run = startCli(['plan', 'a', '-o', 'plain'], { cwd: dir, env });
    let out = '';
    run.child.stdout!.on('data', (c) => (out += c));
    await new Promise<void>((res) => {
      const t = setInterval(() => {
        if (/^lock h16: HELD by another run: run other-run .*: it is taking its locks right now; waiting \(at most 10s\)$/m.test(out)) {
          clearInterval(t);
          res();
        }
      }, 50);
    });
    expect(out).not.toMatch(/^== step/m);
    unplant(); // the other run gave it back: this one takes it and runs
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^lock h16: taken/m);

    plant('trying'); // never resolved (a run killed during its parallel phase)
    const stuck = await runCli(['plan', 'a', '-o', 'plain'], { cwd: dir, env });
    expect(stuck.code).toBe(5);
    expect(stuck.stderr).toContain('error: host h16 is locked by another run: run other-run (plan x, by ops@elsewhere, pid 1');
    expect(stuck.stdout).not.toMatch(/^== step/m);
    plant('held'); // a final lock: no waiting at all
    const held = await runCli(['plan', 'a', '-o', 'plain'], { cwd: dir, env });
    expect(held.code).toBe(5);
    expect(held.stdout).not.toContain('waiting');
    unplant();
    const status = await runCli(['lock', 'status', '--limit', 'h15,h16'], { cwd: dir, env });
    expect(status.stdout).toContain('2 host(s): 0 locked, 2 free');
  }, 60_000);

  it('disjoint runs both run, at the same time', async () => {
    const { dir, env } = project();
    const first = await startHolding(dir, env, ['only15', '-e', 'NAP=3']);
    const second = await runCli(['plan', 'only16', '-o', 'plain'], { cwd: dir, env });
    expect(second.code, second.stderr).toBe(0);
    expect(first.child.exitCode).toBe(null); // the first was still running
    expect((await first.done).code).toBe(0);
  });

  it('Ctrl-C releases the locks', async () => {
    const { dir, env } = project();
    const run = await startHolding(dir, env, ['a', '-e', 'NAP=30']);
    expect(onHost('h15', `cat /home/${lab.user}/.hades/locks/h15.lock/info`)).toContain(`run: ${run.runId}\nplan: a\n`);
    run.child.kill('SIGINT');
    setTimeout(() => run.child.kill('SIGINT'), 300);
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/^lock h15: released$/m);
    expect(r.stdout).toMatch(/^lock h16: released$/m);
    expect(onHost('h15', `ls -A /home/${lab.user}/.hades/locks`)).toBe('');
    const status = await runCli(['lock', 'status', 'a'], { cwd: dir, env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^h15 +free$/m);
    expect(status.stdout).toMatch(/^h16 +free$/m);
  });

  it('kill -9 leaves the locks: status shows holder and age, a new run exits 5, release --force clears them (audit-logged)', async () => {
    const { dir, env } = project();
    const run = await startHolding(dir, env, ['a', '-e', 'NAP=2']);
    run.child.kill('SIGKILL');
    await run.done;
    const status = await runCli(['lock', 'status', '--limit', 'h15,h16,h17'], { cwd: dir, env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      new RegExp(`^h15 +held by run ${run.runId} \\(plan a, by \\S+@\\S+, pid ${run.child.pid}, since \\S+, \\d+s ago\\)$`, 'm'),
    );
    expect(status.stdout).toMatch(new RegExp(`^h16 +held by run ${run.runId} `, 'm'));
    expect(status.stdout).toMatch(/^h17 +free$/m);
    expect(status.stdout).toContain('3 host(s): 2 locked, 1 free');
    const json = JSON.parse((await runCli(['lock', 'status', 'a', '-o', 'json'], { cwd: dir, env })).stdout);
    expect(json.hosts.map((h: { host: string; state: string; holder?: { run: string } }) => [h.host, h.state, h.holder?.run])).toEqual([
      ['h15', 'held', run.runId],
      ['h16', 'held', run.runId],
    ]);

    // No automatic takeover.
    const blocked = await runCli(['plan', 'only15', '-o', 'plain'], { cwd: dir, env });
    expect(blocked.code).toBe(5);
    expect(blocked.stderr).toContain(`host h15 is locked by another run: run ${run.runId}`);

    const noForce = await runCli(['lock', 'release', '--limit', 'h15'], { cwd: dir, env });
    expect(noForce.code).toBe(2);
    expect(noForce.stderr).toContain('error: lock release needs --force');

    const rel = await runCli(['lock', 'release', '--force', 'a'], { cwd: dir, env });
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(new RegExp(`^h15 +released \\(was held by run ${run.runId} `, 'm'));
    expect(rel.stdout).toMatch(new RegExp(`^h16 +released \\(was held by run ${run.runId} `, 'm'));
    const auditPath = /audit log: (\S+)/.exec(rel.stderr)![1]!;
    const audit = readFileSync(auditPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit[0]).toMatchObject({ type: 'run.meta', command: 'lock release --force', plan: 'a', hosts: ['h15', 'h16'] });
    expect(audit.slice(1).map((e) => [e.type, e.host, e.status])).toEqual([
      ['lock.released', 'h15', 'forced'],
      ['lock.released', 'h16', 'forced'],
    ]);
    expect(audit[1].message).toContain(`was held by run ${run.runId}`);

    const after = await runCli(['plan', 'only15', '-o', 'plain'], { cwd: dir, env });
    expect(after.code, after.stderr).toBe(0);
  });

  it('a declined gate and a failed run release the locks too', async () => {
    const { dir, env } = project(`  gated:
    env: { NAP: "0" }
    steps:
      - { name: work, job: work, targets: [h15] }
      - { name: gate, job: ask }
      - { name: more, job: work, targets: [h16] }
  failing:
    steps: [{ name: boom, job: boom, targets: [h15, h16] }]
`);
    const file = join(dir, 'hadesfile.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        'jobs:\n',
        'jobs:\n  ask:\n    actions:\n      - wait: { message: "go on?" }\n  boom:\n    actions:\n      - run: exit 3\n',
      ),
    );
    for (const [plan, code] of [
      ['gated', 3],
      ['failing', 1],
    ] as const) {
      const r = await runCli(['plan', plan, '-o', 'json'], { cwd: dir, env });
      expect(r.code, r.stderr).toBe(code);
      const ev = jsonEvents(r.stdout);
      const locks = ev.filter((e) => e.type.startsWith('lock.')).map((e) => `${e.type} ${e.host}`);
      expect(locks.filter((l) => l.startsWith('lock.acquired')).length).toBeGreaterThan(0);
      expect(locks.filter((l) => l.startsWith('lock.released')).sort()).toEqual(
        locks
          .filter((l) => l.startsWith('lock.acquired'))
          .map((l) => l.replace('acquired', 'released'))
          .sort(),
      );
      expect(ev.at(-1)).toMatchObject({ type: 'run.end', exitCode: code });
    }
    const status = await runCli(['lock', 'status', '--limit', 'h15,h16,localhost'], { cwd: dir, env });
    expect(status.stdout).toContain('3 host(s): 0 locked, 3 free');
  });

  it('an unreachable host is not locked and fails in its turn; the run goes on within max_failures', async () => {
    const { dir, env } = project(`  withdown:
    env: { NAP: "0" }
    steps: [{ name: work, job: work, targets: [h15, down], max_failures: 1 }]
`);
    const before = touched('h15').length;
    const r = await runCli(['plan', 'withdown', '-o', 'plain'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toMatch(/^lock h15: taken/m);
    expect(r.stdout).toMatch(/^lock down: FAILED: .*\(not locked: the host is unreachable, so nothing runs there either\)$/m);
    expect(r.stdout).toMatch(/^lock h15: released$/m);
    expect(touched('h15')).toHaveLength(before + 1);
  });

  it('lock status on an unreachable host reports it per host and exits 1', async () => {
    const { dir, env } = project();
    const r = await runCli(['lock', 'status', '--limit', 'h15,down'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^h15 +free$/m);
    expect(r.stdout).toMatch(/^down +error: .*(connection refused|timed out)/m);
    expect(r.stdout).toContain('2 host(s): 0 locked, 1 free, 1 unreadable');
  });

  it('--dry-run shows the exact lock commands; --no-lock takes none', async () => {
    const { dir, env } = project();
    const r = await runCli(['plan', 'a', '--dry-run', '-o', 'json'], { cwd: dir, env });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.locks.map((l: { host: string }) => l.host)).toEqual(['h15', 'h16']);
    expect(plan.locks[0]).toEqual({
      host: 'h15',
      transport: 'ssh',
      dir: '~/.hades/locks',
      path: '~/.hades/locks/h15.lock',
      acquire: lockAcquireCommand('~/.hades/locks', 'h15'),
      confirm: lockConfirmCommand('~/.hades/locks', 'h15', plan.runId),
      release: lockReleaseCommand('~/.hades/locks', 'h15', plan.runId),
    });
    const text = await runCli(['plan', 'a', '--dry-run'], { cwd: dir, env });
    expect(text.stdout).toContain('host locks: taken before step 1, all hosts at once (record state: trying), then confirmed');
    expect(text.stdout).toMatch(
      /^ {4}confirm: \$ HADES_LOCK_RECORD=<the same record, state: held>; umask 077; .*l=\$\{c%\/\}\/h15\.lock; .*echo confirmed;/m,
    );
    expect(text.stdout).toContain('  lock h15 (ssh): ~/.hades/locks/h15.lock');
    const limited = JSON.parse((await runCli(['plan', 'a', '--dry-run', '-o', 'json', '--limit', 'h16'], { cwd: dir, env })).stdout);
    expect(limited.locks.map((l: { host: string }) => l.host)).toEqual(['h16']);
    const none = await runCli(['plan', 'a', '--dry-run', '--no-lock'], { cwd: dir, env });
    expect(none.stdout).toContain('host locks: none (--no-lock)');

    const holder = await startHolding(dir, env, ['only15', '-e', 'NAP=3']);
    const unlocked = await runCli(['plan', 'only15', '--no-lock', '-o', 'plain'], { cwd: dir, env });
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(unlocked.stdout).not.toMatch(/^lock /m);
    expect((await holder.done).code).toBe(0);
  });

  it('lock_dir: a custom directory is used; a world-writable or unwritable one fails the run before anything ran', async () => {
    const ok = project('', { h15: 'lock_dir: ~/.hades/custom' });
    const held = await startHolding(ok.dir, ok.env, ['only15', '-e', 'NAP=2']);
    expect(onHost('h15', `ls -A /home/${lab.user}/.hades/custom`)).toBe('h15.lock\n');
    expect(onHost('h15', `stat -c %a /home/${lab.user}/.hades/custom`)).toBe('700\n');
    expect((await held.done).code).toBe(0);

    for (const [lockDir, msg] of [
      ['/tmp', 'refusing lock directory /tmp: it is writable by every user'],
      ['/var/lib/app/locks', 'cannot create directory /var/lib/app/locks'],
    ] as const) {
      const p = project('', { h15: `lock_dir: ${lockDir}` });
      const before = touched('h15').length;
      const r = await runCli(['plan', 'only15', '-o', 'plain'], { cwd: p.dir, env: p.env });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: cannot lock host h15: ${msg}`);
      expect(r.stderr).toContain('no action was run: 1 host(s) could not be locked');
      expect(touched('h15')).toHaveLength(before);
    }
  });
});

describe('plan hooks on the lab', () => {
  const hooks = `  hooked:
    env: { NAP: "0", FAIL: "0" }
    on_start: "cat > start.json; echo started here: $(pwd)"
    on_success: ["cat > success.json", "echo chat is down >&2; exit 9"]
    on_failure: "cat > failure.json"
    steps: [{ name: work, job: hook, targets: [h17] }]
`;
  const job = `  hook:
    actions:
      - run: echo deploying with s3cr3t-t0ken-value; exit \${FAIL}
`;
  const hookProject = () => {
    const p = project(hooks);
    const file = join(p.dir, 'hadesfile.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('jobs:\n', `jobs:\n${job}`));
    return p;
  };

  it('on_start and on_success get the redacted summary on stdin in the hadesfile directory; a failing hook changes nothing', async () => {
    const { dir, env } = hookProject();
    const res = await runCli(['plan', 'hooked', '-o', 'plain', '-e', 'API_TOKEN=s3cr3t-t0ken-value'], { cwd: dir, env });
    expect(res.code, res.stderr).toBe(0);
    const start = JSON.parse(readFileSync(join(dir, 'start.json'), 'utf8'));
    expect(start).toMatchObject({ hook: 'on_start', plan: 'hooked', status: 'started', hosts: ['h17'], locked: ['h17'] });
    const success = JSON.parse(readFileSync(join(dir, 'success.json'), 'utf8'));
    expect(success).toMatchObject({ hook: 'on_success', plan: 'hooked', status: 'ok', exitCode: 0, failedHosts: [] });
    expect(success.runId).toBe(start.runId);
    expect(JSON.stringify(success)).not.toContain('s3cr3t-t0ken-value');
    expect(JSON.stringify(success)).toContain('deploying with ***');
    expect(existsSync(join(dir, 'failure.json'))).toBe(false);
    expect(res.stdout).toContain(`hook on_start | started here: ${dir}`);
    expect(res.stdout).toContain('hook on_success ! chat is down');
    expect(res.stdout).toContain("hook on_success: FAILED (exit 9); the run's outcome is unchanged");
    // The order: locks, on_start, the steps, on_success, the locks given back, then the summary (run.end stays last).
    const lines = res.stdout.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/^lock h17: taken/)).toBeGreaterThanOrEqual(0);
    expect(at(/^lock h17: taken/)).toBeLessThan(at(/^hook on_start: \$/));
    expect(at(/^hook on_start: ok/)).toBeLessThan(at(/^== step work/));
    expect(at(/^== step work: ok/)).toBeLessThan(at(/^hook on_success: \$ cat/));
    expect(at(/^hook on_success: FAILED/)).toBeLessThan(at(/^lock h17: released/));
    expect(at(/^lock h17: released/)).toBeLessThan(at(/^Run .* OK/));
    // Logged too.
    const audit = readFileSync(join(dir, '.hades', 'runs', `${start.runId}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(audit.filter((e) => e.type === 'hook.end').map((e) => [e.action, e.status, e.exitCode])).toEqual([
      ['on_start', 'ok', 0],
      ['on_success', 'ok', 0],
      ['on_success', 'failed', 9],
    ]);
    expect(audit.find((e) => e.type === 'hook.output' && e.stream === 'stderr')).toMatchObject({
      action: 'on_success',
      data: 'chat is down',
    });
  });

  it('a failed run calls on_failure (not on_success) and keeps its exit code; JSON output carries the hook events', async () => {
    const { dir, env } = hookProject();
    const res = await runCli(['plan', 'hooked', '-o', 'json', '-e', 'FAIL=4'], { cwd: dir, env });
    expect(res.code).toBe(1);
    const failure = JSON.parse(readFileSync(join(dir, 'failure.json'), 'utf8'));
    expect(failure).toMatchObject({ hook: 'on_failure', status: 'failed', exitCode: 1, failedHosts: ['h17'] });
    expect(existsSync(join(dir, 'success.json'))).toBe(false);
    const events = jsonEvents(res.stdout);
    expect(events.filter((e) => e.type === 'hook.end').map((e) => [e.action, e.status])).toEqual([
      ['on_start', 'ok'],
      ['on_failure', 'ok'],
    ]);
    expect(events.map((e) => e.type).filter((t) => t.startsWith('lock.'))).toEqual(['lock.acquired', 'lock.released']);
    expect(events.at(-1)).toMatchObject({ type: 'run.end', status: 'failed', exitCode: 1 });
    expect(readdirSync(dir)).toContain('start.json');
  });
});
