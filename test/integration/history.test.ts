/**
 * `hades history`, `--resume`, `--replay`, `hades rollback`, `--steps`/`--from-step` through
 * the built CLI: real plans on real OpenSSH hosts (one sshd of this file's own), a real
 * filesystem registry, the audit logs the runs wrote.
 */
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { fileSshd, labProject } from '../helpers/lab-project.js';
import { sha256 as sha, treeHashes } from '../helpers/tree.js';
const APPS = ['app-1', 'app-2', 'app-3'];

const sshd = fileSshd('history');

/**
 * build → publish (push ${VERSION} with semver aliases) → canary → rollout; the deploy job
 * pulls ${VERSION} and the moving alias v1, and records the sha256 the host computes.
 * `fail`: a marker file that makes the deploy's check fail on that host.
 */
function releaseProject() {
  const { dir, knownHosts, env, hostLines } = labProject(sshd(), { userDirs: ['hosts'] });
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `registries:
  reg: { type: filesystem, path: ./registry }
hosts:
  build-server: { local: true }
${hostLines(APPS)}
known_hosts: [${knownHosts}]
targets:
  apps: [${APPS.join(', ')}]
jobs:
  build:
    local: true
    actions:
      - run: printf 'myapp %s\\n' "$VERSION" > build.bin && head -c 4096 /dev/urandom >> build.bin
  publish:
    artifacts:
      app: { path: ./build.bin }
    actions:
      - push: { registry: reg, artifact: app, name: myapp, tag: "\${VERSION}", aliases: semver }
  deploy:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - pull: { registry: reg, name: myapp, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}/app" }
      - pull: { registry: reg, name: myapp, tag: v1, to: "${dir}/hosts/\${HADES_HOST_NAME}/app-v1" }
      - run: cd "${dir}/hosts/$HADES_HOST_NAME" && sha256sum app app-v1 > sums && echo "$VERSION" > version && test ! -e "${dir}/fail-$HADES_HOST_NAME"
plans:
  release:
    env: { VERSION: "\${VERSION:-v1.0.0}" }
    steps:
      - { name: build, job: build, targets: build-server }
      - { name: publish, job: publish, targets: build-server }
      - { name: canary, job: deploy, targets: apps, limit: 1 }
      - { name: rollout, job: deploy, targets: apps, max_failures: 1 }
  other:
    steps:
      - { name: build, job: build, targets: build-server }
`,
  );
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runCli([...args, '--cache-dir', join(dir, 'cache')], { cwd: dir, env: { ...env, ...extra } });
  const plain = (args: string[]) => runCli(args, { cwd: dir, env });
  /** The sha256 sums each host computed of what it holds (app, app-v1). */
  const sums = (h: string) =>
    Object.fromEntries(
      readFileSync(join(dir, 'hosts', h, 'sums'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).reverse()),
    );
  return { dir, cli, plain, sums };
}

describe('rollback on the lab', () => {
  it('release v1, release v2, rollback: every host has v1 bytes again (sha256 on the hosts), nothing is pushed, dry-run and history say what was replayed', async () => {
    const { dir, cli, plain, sums } = releaseProject();
    const r1 = await cli(['plan', 'release', '--output', 'json'], { VERSION: 'v1.0.0' });
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);
    const v1 = sha(readFileSync(join(dir, 'build.bin')));
    const r2 = await cli(['plan', 'release', '--output', 'json'], { VERSION: 'v1.1.0' });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    const v2 = sha(readFileSync(join(dir, 'build.bin')));
    expect(v2).not.toBe(v1);
    for (const h of APPS) expect(sums(h)).toEqual({ app: v2, 'app-v1': v2 }); // the alias v1 moved to v1.1.0
    const runs = JSON.parse((await plain(['history', 'release', '--output', 'json'])).stdout).runs;
    expect(runs.map((r: any) => r.status)).toEqual(['ok', 'ok']);
    const [first] = runs;
    const pushed = (r: any, tag: string) => r.artifacts.find((a: any) => a.kind === 'push' && a.tag === tag)?.digest;
    expect(pushed(first, 'v1.0.0')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pushed(first, 'v1')).toBe(pushed(first, 'v1.0.0'));

    // dry-run: the replayed run and the digests that go out, pulls by digest
    const registryBefore = treeHashes(join(dir, 'registry'));
    const dry = await cli(['rollback', 'release', '--steps', 'canary,rollout', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`rollback: replay of run ${first.runId} (ok`);
    expect(dry.stdout).toContain(`this is exactly what \`hades plan release --replay ${first.runId} --steps canary,rollout\` runs`);
    expect(dry.stdout).toContain(`digest reg/myapp:v1.0.0 -> ${pushed(first, 'v1.0.0')} (pinned; the tag is not followed)`);
    expect(dry.stdout).toContain(`digest reg/myapp:v1 -> ${pushed(first, 'v1.0.0')} (pinned; the tag is not followed)`);
    expect(dry.stdout).toContain(`myapp@${pushed(first, 'v1.0.0')} from registry "reg"`);
    expect(dry.stdout).toContain('skipped: not selected by --steps canary,rollout');
    expect(dry.stdout).toContain('VERSION="v1.0.0"');

    const rb = await cli(['rollback', 'release', '--steps', 'canary,rollout', '--output', 'json']);
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    for (const h of APPS) {
      expect(sums(h)).toEqual({ app: v1, 'app-v1': v1 });
      expect(readFileSync(join(dir, 'hosts', h, 'version'), 'utf8')).toBe('v1.0.0\n');
    }
    const ev = jsonEvents(rb.stdout);
    expect(ev.filter((e) => e.type === 'action.start' && e.kind === 'push')).toEqual([]);
    const end = ev.find((e) => e.type === 'run.end')!.summary;
    expect(end.origin).toEqual({
      mode: 'rollback',
      runId: first.runId,
      pins: [
        { registry: 'reg', name: 'myapp', tag: 'v1.0.0', digest: pushed(first, 'v1.0.0') },
        { registry: 'reg', name: 'myapp', tag: 'v1', digest: pushed(first, 'v1.0.0') },
      ],
    });
    expect(ev.filter((e) => e.type === 'step.end').map((e) => [e.step, e.status])).toEqual([
      ['build', 'skipped'],
      ['publish', 'skipped'],
      ['canary', 'ok'],
      ['rollout', 'ok'],
    ]);
    expect(treeHashes(join(dir, 'registry'))).toEqual(registryBefore); // nothing was pushed

    const hist = await plain(['history', 'release']);
    expect(hist.code).toBe(0);
    const lines = hist.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toContain(`rollback of ${first.runId}`);
    expect(lines[2]).toContain(`reg/myapp:v1.0.0@${pushed(first, 'v1.0.0').slice(0, 19)}`);
    expect(lines[2]).toContain('hosts ok 3 failed 0');
    const show = await plain(['history', 'show', 'last']);
    expect(show.stdout).toContain(`rollback of run ${first.runId}`);
    expect(show.stdout).toContain(`reg/myapp:v1@${pushed(first, 'v1.0.0')} (pull)`);
  });

  it('--resume: same env and digests as the failed run, only the (step, host) pairs that did not end ok run; a changed plan is refused', async () => {
    const { dir, cli, plain, sums } = releaseProject();
    writeFileSync(join(dir, 'fail-app-2'), '');
    const r1 = await cli(['plan', 'release', '--output', 'json'], { VERSION: 'v1.0.0' });
    expect(r1.code, r1.stdout).toBe(4); // app-2 failed within the rollout's max_failures 1
    const failed = JSON.parse((await plain(['history', 'release', '--host', 'app-2', '--output', 'json'])).stdout).runs;
    expect(failed).toHaveLength(1);
    expect(failed[0].hosts['app-2']).toBe('failed');
    const v1 = sha(readFileSync(join(dir, 'build.bin')));
    // Meanwhile v1.1.0 is published: the tag v1 moves. A resume must not follow it.
    const bump = await cli(['plan', 'release', '--steps', 'build,publish', '--output', 'json'], { VERSION: 'v1.1.0' });
    expect(bump.code, bump.stdout).toBe(0);
    rmSync(join(dir, 'fail-app-2'));
    rmSync(join(dir, 'hosts', 'app-2'), { recursive: true });
    const before = statSync(join(dir, 'hosts', 'app-3', 'sums'));

    const dry = await cli(['plan', 'release', '--resume', failed[0].runId, '--dry-run'], { VERSION: 'v9.9.9' });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`resume of run ${failed[0].runId} (partial`);
    expect(dry.stdout).toContain(`step rollout: skipping app-1, app-3 (ended ok in ${failed[0].runId})`);
    expect(dry.stdout).toContain('VERSION="v1.0.0"');

    const r = await cli(['plan', 'release', '--resume', failed[0].runId, '--output', 'json'], { VERSION: 'v9.9.9' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const starts = jsonEvents(r.stdout)
      .filter((e) => e.type === 'host.start')
      .map((e) => `${e.step}/${e.host}`);
    expect(starts).toEqual(['rollout/app-2']);
    expect(sums('app-2')).toEqual({ app: v1, 'app-v1': v1 });
    expect(readFileSync(join(dir, 'hosts', 'app-2', 'version'), 'utf8')).toBe('v1.0.0\n');
    expect(statSync(join(dir, 'hosts', 'app-3', 'sums')).mtimeMs).toBe(before.mtimeMs);

    // the plan's shape changed since: refused, exit 2, naming what differs; --force goes on
    const yaml = readFileSync(join(dir, 'hadesfile.yaml'), 'utf8');
    writeFileSync(join(dir, 'hadesfile.yaml'), yaml.replace('{ name: rollout, job: deploy', '{ name: everyone, job: deploy'));
    const refused = await cli(['plan', 'release', '--resume', failed[0].runId, '--dry-run']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("the plan's shape changed since that run");
    expect(refused.stderr).toContain('steps: were [build, publish, canary, rollout], now [build, publish, canary, everyone]');
    expect(refused.stderr).toContain('--force');
    const forced = await cli(['plan', 'release', '--resume', failed[0].runId, '--force', '--dry-run']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('plan changed since: steps: were');
  });
});

describe('history and replay: bad input and damaged logs', () => {
  function localProject() {
    const dir = project({
      'hadesfile.yaml': `hosts:
  a: { local: true }
jobs:
  hello:
    actions:
      - run: echo "hello $WHO" && test -n "$API_TOKEN" && echo token-is-set
plans:
  greet:
    env: { WHO: "\${WHO:-world}" }
    steps:
      - { name: first, job: hello, targets: a }
      - { name: second, job: hello, targets: a }
  other:
    steps:
      - { name: only, job: hello, targets: a }
`,
    });
    const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: dir, env });
    return { dir, cli, runs: join(dir, '.hades', 'runs') };
  }

  it('secrets: the log keeps their names only; a replay takes their values from the current environment and says so, or refuses', async () => {
    const { cli, runs } = localProject();
    const r1 = await cli(['plan', 'greet', '-o', 'plain', '-e', 'API_TOKEN=s3cr3t-value-1'], { WHO: 'alice' });
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);
    for (const f of readdirSync(runs)) expect(readFileSync(join(runs, f), 'utf8')).not.toContain('s3cr3t-value-1');
    const show = await cli(['history', 'show', 'last']);
    expect(show.stdout).toContain('WHO="alice"');
    expect(show.stdout).toMatch(/API_TOKEN="\*\*\*" \(secret: not recorded\)/);

    const missing = await cli(['plan', 'greet', '--replay', 'last', '--dry-run'], { WHO: 'bob' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('secret API_TOKEN is not set now');
    expect(missing.stderr).toContain('the audit log keeps secret names only');

    const r = await cli(['plan', 'greet', '--replay', 'last', '-o', 'plain', '-e', 'API_TOKEN=other-value-2'], { WHO: 'bob' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('| hello alice');
    expect(r.stdout).toContain('| token-is-set');
    expect(r.stdout).toMatch(/OK in .*\n {2}replayed run \d{8}T\d{6}Z-[0-9a-f]{6}\n/);
    expect(r.stderr).toContain('secrets API_TOKEN: values from the current environment / env files (the audit log keeps names only)');
    expect(
      readdirSync(runs)
        .map((f) => readFileSync(join(runs, f), 'utf8'))
        .join(''),
    ).not.toContain('other-value-2');
  });

  it("a replay needs no -e for a required var the replayed run was given with -e; today's -e does not change it", async () => {
    const dir = project({
      'hadesfile.yaml': `hosts:
  a: { local: true }
jobs:
  hello:
    env:
      VERSION:
    actions:
      - run: echo "deploying $VERSION"
plans:
  p:
    steps:
      - { name: s, job: hello, targets: a }
`,
    });
    const cli = (args: string[]) => runCli(args, { cwd: dir });
    expect((await cli(['plan', 'p', '-e', 'VERSION=v1', '-o', 'plain'])).stdout).toContain('| deploying v1');
    expect((await cli(['plan', 'p', '-e', 'VERSION=v2', '-o', 'plain'])).stdout).toContain('| deploying v2');
    const without = await cli(['plan', 'p', '-o', 'plain']);
    expect(without.code).toBe(2);
    const rb = await cli(['rollback', 'p', '-o', 'plain']);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stdout).toContain('| deploying v1');
    const again = await cli(['plan', 'p', '--replay', 'last', '-e', 'VERSION=v3', '-o', 'plain']);
    expect(again.stdout).toContain('| deploying v1');
  });

  it('unknown run, a run of another plan, empty/corrupt/truncated logs, unknown steps: exit 2 with a clear message; history lists damaged logs as such', async () => {
    const { cli, runs } = localProject();
    expect((await cli(['plan', 'greet', '-o', 'plain', '-e', 'API_TOKEN=t'])).code).toBe(0);
    expect((await cli(['plan', 'other', '-o', 'plain', '-e', 'API_TOKEN=t'])).code).toBe(0);
    const recorded = JSON.parse((await cli(['history', '-o', 'json'])).stdout).runs;
    const otherId: string = recorded.find((r: any) => r.plan === 'other').runId;
    const greetId: string = recorded.find((r: any) => r.plan === 'greet').runId;

    const unknown = await cli(['plan', 'greet', '--resume', '20200101T000000Z-abcdef', '--dry-run']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--resume 20200101T000000Z-abcdef: no such run in');
    expect(unknown.stderr).toContain('recent runs:');

    const other = await cli(['plan', 'greet', '--resume', otherId, '--dry-run']);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`--resume ${otherId}: that run is of plan "other", not "greet"`);

    const steps = await cli(['plan', 'greet', '--steps', 'secnd', '--dry-run']);
    expect(steps.code).toBe(2);
    expect(steps.stderr).toContain('--steps: plan "greet" has no step "secnd"');
    expect(steps.stderr).toContain('did you mean "second"?');
    const from = await cli(['plan', 'greet', '--from-step', 'frist', '--dry-run']);
    expect(from.code).toBe(2);
    expect(from.stderr).toContain('did you mean "first"?');
    const ok = await cli(['plan', 'greet', '--from-step', 'second', '--dry-run']);
    expect(ok.stdout).toContain('skipped: before --from-step second');

    // A run killed mid-write: header and some events, the last line cut off.
    const whole = readFileSync(join(runs, `${greetId}.jsonl`), 'utf8')
      .split(greetId)
      .join('20991231T000000Z-aaaaaa')
      .replace(/"ts":"[^"]*"/, '"ts":"2099-12-31T00:00:00.000Z"')
      .split('\n');
    writeFileSync(join(runs, '20991231T000000Z-aaaaaa.jsonl'), `${whole.slice(0, 4).join('\n')}\n${whole[4]!.slice(0, 20)}`);
    writeFileSync(join(runs, '20991231T000001Z-bbbbbb.jsonl'), '');
    writeFileSync(join(runs, '20991231T000002Z-cccccc.jsonl'), '{not json\n\u0000\u0001garbage\n');
    appendFileSync(join(runs, 'notes.txt'), 'not a log');
    const hist = await cli(['history']);
    expect(hist.code, hist.stderr).toBe(0);
    expect(hist.stdout).toMatch(
      /20991231T000000Z-aaaaaa .* greet {2}incomplete .*line 5 is truncated \(the run was killed mid-write\?\); no end recorded/,
    );
    expect(hist.stdout).toMatch(/20991231T000001Z-bbbbbb .* empty .*the log is empty/);
    expect(hist.stdout).toMatch(/20991231T000002Z-cccccc .* corrupt .*no run header/);
    const json = JSON.parse((await cli(['history', '-o', 'json'])).stdout);
    expect(json.runs.map((r: any) => r.status)).toEqual(['ok', 'ok', 'incomplete', 'empty', 'corrupt']);
    for (const id of ['20991231T000001Z-bbbbbb', '20991231T000002Z-cccccc']) {
      const r = await cli(['plan', 'greet', '--replay', id, '--dry-run']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--replay ${id}: its audit log cannot be used`);
    }
    // the truncated run still has its header: it can be resumed
    const resumed = await cli(['plan', 'greet', '--resume', 'last', '--dry-run', '-e', 'API_TOKEN=t']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('resume of run 20991231T000000Z-aaaaaa (incomplete');
    const show = await cli(['history', 'show', '20991231T000002Z-cccccc']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('log problem: no run header');
    const none = await cli(['history', 'show', 'nope']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('history show nope: no such run');

    const rb = await cli(['rollback', 'other', '--dry-run']);
    expect(rb.code).toBe(2);
    expect(rb.stderr).toContain('rollback: no successful run of plan "other" before the latest one');
  });
});
