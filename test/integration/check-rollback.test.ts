/**
 * `--check` with step selection and `hades rollback`, through the built CLI on real OpenSSH
 * hosts (one sshd of this file's own) and a real filesystem registry: steps that `--steps`,
 * `--from-step` or `--limit` leave out are listed as skipped (plain and JSON), and after two
 * releases `hades rollback --check` shows each host getting the first release's bytes back —
 * without writing anything on a host or in the registry.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonEvents, runCli } from '../helpers/cli.js';
import { fileSshd, labProject } from '../helpers/lab-project.js';
import { sha256 as sha, treeHashes } from '../helpers/tree.js';

const HOSTS = ['a1', 'a2'];

const sshd = fileSshd('check-rollback');
/** Every file under `dir` with its sha256 (what the hosts and the registry hold); a missing `dir` holds nothing. */
const hashes = (dir: string) => treeHashes(dir, { missingIsEmpty: true });

/** build (local) → publish (push ${VERSION}) → deploy (pull ${VERSION} to each host). */
function releaseProject() {
  const { dir, env, hostLines } = labProject(sshd(), { userDirs: ['hosts', 'locks'] });
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  build-server: { local: true }
${hostLines(HOSTS, `lock_dir: ${dir}/locks`)}
known_hosts: [${dir}/known_hosts]
jobs:
  build:
    local: true
    actions:
      - run: printf 'app %s\\n' "$VERSION" > app.bin
  publish:
    artifacts:
      app: { path: ./app.bin }
    actions:
      - push: { registry: r, artifact: app, name: app, tag: "\${VERSION}" }
  deploy:
    actions:
      - pull: { registry: r, name: app, tag: "\${VERSION}", to: "${dir}/hosts/\${HADES_HOST_NAME}.bin" }
plans:
  release:
    env: { VERSION: "\${VERSION:-v1.0.0}" }
    steps:
      - { name: build, job: build, targets: build-server }
      - { name: publish, job: publish, targets: build-server }
      - { name: deploy, job: deploy, targets: [${HOSTS.join(', ')}] }
  one-by-one:
    env: { VERSION: v1.0.0 }
    steps:
      - { name: first, job: deploy, targets: a1 }
      - { name: second, job: deploy, targets: a2 }
`,
  );
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    runCli([...args, '--cache-dir', join(dir, 'cache')], { cwd: dir, env: { ...env, ...extra } });
  return { dir, cli };
}

describe('--check: skipped steps, and hades rollback --check', () => {
  it('steps left out by --steps, --from-step or --limit are one "skipped" line each (plain) and a check.step event (JSON)', async () => {
    const { dir, cli } = releaseProject();
    const r1 = await cli(['plan', 'release'], { VERSION: 'v1.0.0' });
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);

    const steps = await cli(['plan', 'release', '--check', '--steps', 'deploy', '--output', 'plain'], { VERSION: 'v1.0.0' });
    expect(steps.code, steps.stdout + steps.stderr).toBe(0);
    expect(steps.stdout.split('\n')).toEqual([
      '== step build: skipped (not selected by --steps deploy)',
      '== step publish: skipped (not selected by --steps deploy)',
      '== step deploy',
      `[a1] unchanged pull ${dir}/hosts/a1.bin`,
      `[a2] unchanged pull ${dir}/hosts/a2.bin`,
      'check: 2 unchanged, 2 skipped steps',
      'nothing was written on any host (read-only probes; no lock taken)',
      '',
    ]);

    const from = await cli(['plan', 'release', '--check', '--from-step', 'deploy', '--output', 'json'], { VERSION: 'v1.0.0' });
    expect(from.code, from.stdout + from.stderr).toBe(0);
    const ev = jsonEvents(from.stdout);
    expect(ev.map((e) => [e.type, e.step, e.host, e.status])).toEqual([
      ['check.step', 'build', undefined, 'skipped'],
      ['check.step', 'publish', undefined, 'skipped'],
      ['check.change', 'deploy', 'a1', 'unchanged'],
      ['check.change', 'deploy', 'a2', 'unchanged'],
      ['check.end', undefined, undefined, 'ok'],
    ]);
    expect(ev[0]).toMatchObject({ stepIndex: 0, message: 'before --from-step deploy' });
    expect(ev[1]).toMatchObject({ stepIndex: 1, message: 'before --from-step deploy' });
    expect(ev[4].counts).toEqual({ unchanged: 2, 'skipped steps': 2 });

    // (--limit leaves out host steps only: a step on the orchestrator runs whatever it selects)
    const limit = await cli(['plan', 'one-by-one', '--check', '--limit', 'a2', '--output', 'plain']);
    expect(limit.code, limit.stdout + limit.stderr).toBe(0);
    expect(limit.stdout.split('\n')).toEqual([
      '== step first: skipped (none of its hosts is selected by --limit)',
      '== step second',
      `[a2] unchanged pull ${dir}/hosts/a2.bin`,
      'check: 1 unchanged, 1 skipped steps',
      'nothing was written on any host (read-only probes; no lock taken)',
      '',
    ]);
  });

  it('after two releases, rollback --check shows every host getting the first release back (sha256 v2→v1); nothing written', async () => {
    const { dir, cli } = releaseProject();
    for (const v of ['v1.0.0', 'v1.1.0']) {
      const r = await cli(['plan', 'release'], { VERSION: v });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const v1 = sha('app v1.0.0\n');
    const v2 = sha('app v1.1.0\n');
    for (const h of HOSTS) expect(sha(readFileSync(join(dir, 'hosts', `${h}.bin`)))).toBe(v2);
    const before = { hosts: hashes(join(dir, 'hosts')), reg: hashes(join(dir, 'reg')), locks: hashes(join(dir, 'locks')) };
    const runs = readdirSync(join(dir, '.hades', 'runs')).length;

    const plain = await cli(['rollback', 'release', '--steps', 'deploy', '--check', '--output', 'plain']);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/^rollback: replay of run \S+ \(ok/m);
    const lines = plain.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      '== step build: skipped (not selected by --steps deploy)',
      '== step publish: skipped (not selected by --steps deploy)',
      '== step deploy',
    ]);
    for (const h of HOSTS)
      expect(lines).toContain(`[${h}] would replace pull ${dir}/hosts/${h}.bin (sha256 ${v2.slice(0, 12)}→${v1.slice(0, 12)})`);
    expect(plain.stdout).toContain('check: 2 replace, 2 skipped steps\n');

    const json = await cli(['rollback', 'release', '--steps', 'deploy', '--check', '--output', 'json']);
    expect(json.code, json.stdout + json.stderr).toBe(0);
    const changes = jsonEvents(json.stdout).filter((e) => e.type === 'check.change');
    expect(changes.map((e) => [e.host, e.status, e.change.sha256])).toEqual(HOSTS.map((h) => [h, 'replace', { from: v2, to: v1 }]));

    // read-only: the hosts, the registry and the locks as they were; no run recorded
    expect({ hosts: hashes(join(dir, 'hosts')), reg: hashes(join(dir, 'reg')), locks: hashes(join(dir, 'locks')) }).toEqual(before);
    expect(readdirSync(join(dir, '.hades', 'runs'))).toHaveLength(runs);
  });
});
