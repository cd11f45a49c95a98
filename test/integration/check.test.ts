/**
 * `hades plan --check` through the built CLI on real OpenSSH hosts (one sshd of this file's
 * own): a run, then a template var, a secret and a copied file change → --check shows exactly
 * those changes with the right unified diffs (plain and JSON), the secret on neither side,
 * and the hosts' trees (bytes, modes, owners, mtimes) and lock directories are identical
 * before and after.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonEvents, project, runCli } from '../helpers/cli.js';
import { fileSshd, labProject } from '../helpers/lab-project.js';
import { requireLab } from '../lab/helpers.js';

const HOSTS = ['a1', 'a2'];
const OLD_SECRET = 'old-pw-5d1e8c';
const NEW_SECRET = 'new-pw-93fa2b';

const sshd = fileSshd('check');

/** Every entry under `dir`: type, mode, owner, size, mtime (ns), and the bytes' sha256 or the link target. */
function treeState(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    const st = lstatSync(d, { bigint: true });
    const key = relative(dir, d) || '.';
    const meta = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
    if (st.isSymbolicLink()) out[key] = `link ${meta} ${readlinkSync(d)}`;
    else if (st.isDirectory()) {
      out[key] = `dir ${meta}`;
      for (const e of readdirSync(d)) walk(join(d, e));
    } else out[key] = `file ${meta} ${createHash('sha256').update(readFileSync(d)).digest('hex')}`;
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

function checkProject() {
  const { dir, env, hostLines } = labProject(sshd(), {
    files: {
      'conf.tmpl': 'greeting={{ vars.greeting }}\nhost={{ host.name }}\npassword={{ env.DB_PASSWORD | upper }}\nport=8080\n',
      'files/data.txt': 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n',
    },
    userDirs: ['hosts', 'locks'],
  });
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `hosts:
${hostLines(HOSTS, `lock_dir: ${dir}/locks`)}
known_hosts: [${dir}/known_hosts]
targets:
  apps: [${HOSTS.join(', ')}]
jobs:
  deploy:
    actions:
      - mkdir: { path: "${dir}/hosts/\${HADES_HOST_NAME}", mode: 0755 }
      - template: { src: conf.tmpl, dst: "${dir}/hosts/\${HADES_HOST_NAME}/app.conf", vars: { greeting: "\${GREETING}" } }
      - copy: { src: files/data.txt, dst: "${dir}/hosts/\${HADES_HOST_NAME}/data.txt", mode: 0640 }
      - run: echo restarted >> "${dir}/hosts/$HADES_HOST_NAME/restarts"
plans:
  release:
    env: { GREETING: "\${GREETING:-hello}", DB_PASSWORD: "\${DB_PASSWORD}" }
    steps:
      - { name: deploy, job: deploy, targets: apps }
`,
  );
  const cli = (args: string[], extra: Record<string, string>) => runCli(args, { cwd: dir, env: { ...env, ...extra } });
  return { dir, cli };
}

describe('plan --check on the lab', () => {
  it('after a run, a changed template var, secret and copied file: exactly those changes with their diffs, secrets on neither side, hosts untouched', async () => {
    const { dir, cli } = checkProject();
    const r1 = await cli(['plan', 'release', '--output', 'json'], { DB_PASSWORD: OLD_SECRET });
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);
    expect(readFileSync(join(dir, 'hosts/a1/app.conf'), 'utf8')).toContain(`password=${OLD_SECRET.toUpperCase()}`);

    writeFileSync(join(dir, 'files/data.txt'), 'one\ntwo\nthree\nfour\nFIVE\nsix\nseven\neight\nnine\nten\neleven\n');
    const before = { hosts: treeState(join(dir, 'hosts')), locks: treeState(join(dir, 'locks')) };
    expect(Object.keys(before.hosts)).toContain('a2/restarts');
    const env = { GREETING: 'bonjour', DB_PASSWORD: NEW_SECRET };

    const json = await cli(['plan', 'release', '--check', '--output', 'json'], env);
    expect(json.code, json.stdout + json.stderr).toBe(0);
    const plain = await cli(['plan', 'release', '--check', '--output', 'plain'], env);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);

    // nothing written: every byte, mode, owner and mtime the same; no lock taken (the lock dir unchanged)
    expect(treeState(join(dir, 'hosts'))).toEqual(before.hosts);
    expect(treeState(join(dir, 'locks'))).toEqual(before.locks);
    expect(existsSync(join(dir, '.hades', 'runs')) ? readdirSync(join(dir, '.hades', 'runs')).length : 0).toBe(1); // only the real run's audit log

    const hidden = '*** (line hidden: the render uses a secret)';
    const confDiff = (h: string) =>
      [
        `--- ${dir}/hosts/${h}/app.conf (on ${h})`,
        `+++ ${dir}/hosts/${h}/app.conf (planned)`,
        '@@ -1,4 +1,4 @@',
        '-greeting=hello',
        '+greeting=bonjour',
        ` host=${h}`,
        `-${hidden}`,
        `+${hidden}`,
        ' port=8080',
      ].join('\n');
    const dataDiff = (h: string) =>
      [
        `--- ${dir}/hosts/${h}/data.txt (on ${h})`,
        `+++ ${dir}/hosts/${h}/data.txt (planned)`,
        '@@ -2,9 +2,10 @@',
        ' two',
        ' three',
        ' four',
        '-five',
        '+FIVE',
        ' six',
        ' seven',
        ' eight',
        ' nine',
        ' ten',
        '+eleven',
      ].join('\n');

    const events = jsonEvents(json.stdout);
    const changes = events.filter((e) => e.type === 'check.change');
    expect(changes.map((e) => [e.host, e.kind, e.status])).toEqual(
      HOSTS.flatMap((h) => [
        [h, 'mkdir', 'unchanged'],
        [h, 'template', 'replace'],
        [h, 'copy', 'replace'],
        [h, 'run', 'would-run'],
      ]),
    );
    for (const h of HOSTS) {
      const of = (kind: string) => changes.find((e) => e.host === h && e.kind === kind)!;
      expect(of('template').diff).toBe(confDiff(h));
      expect(of('template').change.sha256).toEqual({ from: '***', to: '***' }); // digests of secret renders are never shown
      expect(of('copy').diff).toBe(dataDiff(h));
      expect(of('copy').change).toMatchObject({ change: 'replace', path: `${dir}/hosts/${h}/data.txt` });
      expect(of('copy').change.mode).toBeUndefined(); // 0640 already
      expect(of('copy').change.sha256.to).toBe(
        createHash('sha256')
          .update(readFileSync(join(dir, 'files/data.txt')))
          .digest('hex'),
      );
      expect(of('mkdir').diff).toBeUndefined();
    }
    const end = events.at(-1)!;
    expect(end).toMatchObject({ type: 'check.end', status: 'ok', counts: { unchanged: 2, replace: 4, 'would-run': 2 } });
    expect(events.some((e) => e.type.startsWith('lock.') || e.type.startsWith('action.'))).toBe(false);

    for (const h of HOSTS) {
      expect(plain.stdout).toContain(`[${h}] unchanged mkdir ${dir}/hosts/${h}\n`);
      expect(plain.stdout).toContain(`[${h}] would replace copy ${dir}/hosts/${h}/data.txt (sha256 `);
      expect(plain.stdout).toContain(`${dataDiff(h).replace(/^/gm, '    ')}\n`);
      expect(plain.stdout).toContain(`${confDiff(h).replace(/^/gm, '    ')}\n`);
      expect(plain.stdout).toContain(`[${h}] would run run: echo restarted >> "${dir}/hosts/$HADES_HOST_NAME/restarts"\n`);
    }
    expect(plain.stdout).toContain('check: 4 replace, 2 unchanged, 2 would-run\n');
    for (const out of [json.stdout + json.stderr, plain.stdout + plain.stderr])
      for (const s of [OLD_SECRET, NEW_SECRET, OLD_SECRET.toUpperCase(), NEW_SECRET.toUpperCase()]) expect(out).not.toContain(s);
  });

  it('creates, chmods, refusals and what cannot be known: a dir an earlier mkdir creates, a directory another user owns, actions after a run', async () => {
    const lab = requireLab();
    const dir = project({ 'data.txt': 'x\n', 't.tmpl': 'v={{ env.V }}\n' });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'known_hosts'), `${sshd().knownHostsLine}\n`);
    for (const d of ['hosts', 'hosts/a1', 'locks']) {
      mkdirSync(join(dir, d));
      execFileSync('chown', [lab.user, join(dir, d)]);
    }
    chmodSync(join(dir, 'hosts/a1'), 0o755);
    mkdirSync(join(dir, 'evil'));
    execFileSync('chown', ['nobody', join(dir, 'evil')]);
    mkdirSync(join(dir, 'home'));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
  a1: { addr: ${sshd().host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey}, lock_dir: ${dir}/locks }
known_hosts: [${dir}/known_hosts]
jobs:
  deploy:
    actions:
      - mkdir: { path: "${dir}/hosts/a1", mode: 0700 }
      - mkdir: { path: "${dir}/hosts/a1/sub/deeper", mode: 0750 }
      - copy: { src: data.txt, dst: "${dir}/hosts/a1/sub/deeper/data.txt" }
      - copy: { src: data.txt, dst: "${dir}/hosts/a1/nowhere/data.txt" }
      - copy: { src: data.txt, dst: "${dir}/evil/data.txt" }
      - copy: { src: built.txt, dst: "${dir}/hosts/a1/built-1" }
      - run: mkdir -p "${dir}/hosts/a1/gen"
      - template: { src: t.tmpl, dst: "${dir}/hosts/a1/gen/t.conf" }
      - copy: { src: built.txt, dst: "${dir}/hosts/a1/built-2" }
  gate:
    actions:
      - wait: { message: "go on?" }
  guarded:
    guard: { if: "test -e ${dir}/hosts/a1/enabled" }
    actions:
      - mkdir: { path: "${dir}/hosts/a1/never", mode: 0755 }
plans:
  p:
    env: { V: "1" }
    steps:
      - { name: s, job: deploy, targets: a1 }
      - { name: approve, job: gate, targets: a1 }
      - { name: maybe, job: guarded, targets: a1 }
`,
    );
    const env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
    const before = { hosts: treeState(join(dir, 'hosts')), evil: treeState(join(dir, 'evil')), locks: treeState(join(dir, 'locks')) };
    const r = await runCli(['plan', 'p', '--check', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(1); // an action would fail / be refused
    expect({ hosts: treeState(join(dir, 'hosts')), evil: treeState(join(dir, 'evil')), locks: treeState(join(dir, 'locks')) }).toEqual(
      before,
    );
    const changes = jsonEvents(r.stdout).filter((e) => e.type === 'check.change');
    expect(changes.map((e) => [e.kind, e.status])).toEqual([
      ['mkdir', 'chmod'],
      ['mkdir', 'create'],
      ['copy', 'create'],
      ['copy', 'fail'],
      ['copy', 'refuse'],
      ['copy', 'fail'],
      ['run', 'would-run'],
      ['template', 'create'],
      ['copy', 'unknown'],
      ['wait', 'gate'],
    ]);
    const [chmod, create, copyCreate, fail, refuse, noSource, , tpl, unknown, gate] = changes;
    // a source that is not there: the run fails — unless an earlier run action may build it
    expect(noSource!.message).toBe(
      `would fail copy ${dir}/hosts/a1/built-1: cannot read source ${dir}/built.txt: ENOENT: no such file or directory, stat '${dir}/built.txt'`,
    );
    expect(unknown!.message).toBe(
      `cannot tell copy ${dir}/hosts/a1/built-2 — cannot read source ${dir}/built.txt: ENOENT: no such file or directory, stat '${dir}/built.txt'; after run: mkdir -p "${dir}/hosts/a1/gen" (step s): may differ`,
    );
    expect(chmod!.change.mode).toEqual({ from: '0755', to: '0700' });
    expect(chmod!.message).toBe(`would chmod 0755→0700 mkdir ${dir}/hosts/a1`);
    expect(create!.message).toBe(
      `would create mkdir ${dir}/hosts/a1/sub/deeper (mode 0750) — with its missing parents (${dir}/hosts/a1/sub does not exist)`,
    );
    expect(copyCreate!.message).toBe(
      `would create copy ${dir}/hosts/a1/sub/deeper/data.txt (mode 0644) — an earlier mkdir creates its parent; parent ${dir}/hosts/a1/sub/deeper does not exist now`,
    );
    // a new file's diff is its whole text
    expect(copyCreate!.diff).toBe(['--- /dev/null', `+++ ${dir}/hosts/a1/sub/deeper/data.txt (planned)`, '@@ -0,0 +1 @@', '+x'].join('\n'));
    expect(tpl!.diff).toBe(['--- /dev/null', `+++ ${dir}/hosts/a1/gen/t.conf (planned)`, '@@ -0,0 +1 @@', '+v=1'].join('\n'));
    expect(fail!.message).toBe(
      `would fail copy ${dir}/hosts/a1/nowhere/data.txt: parent directory ${dir}/hosts/a1/nowhere does not exist: the run fails`,
    );
    expect(refuse!.message).toContain(
      `would refuse copy ${dir}/evil/data.txt: refusing to write under ${dir}/evil: it is owned by nobody:`,
    );
    expect(tpl!.change.after).toBe(`run: mkdir -p "${dir}/hosts/a1/gen" (step s)`);
    expect(tpl!.message).toContain(`may differ`);
    expect(tpl!.message).toContain(`parent ${dir}/hosts/a1/gen does not exist now`);
    expect(gate!.message).toBe('gate: would ask: go on?');
    // the guard runs (read-only by contract): it says no, so the host is not checked for that step
    expect(jsonEvents(r.stdout).filter((e) => e.type === 'check.host')).toMatchObject([
      { step: 'maybe', host: 'a1', status: 'skipped', message: `guard exited 1: test -e ${dir}/hosts/a1/enabled: not checked` },
    ]);
    expect(jsonEvents(r.stdout).at(-1)).toMatchObject({
      type: 'check.end',
      status: 'failed',
      counts: { chmod: 1, create: 3, fail: 2, refuse: 1, 'would-run': 1, gate: 1, unknown: 1, 'skipped hosts': 1 },
    });
  });

  it('--check with --dry-run, --failed-hosts-file or --log-dir is a usage error (exit 2), nothing connects', async () => {
    const dir = project({
      'hadesfile.yaml':
        'hosts:\n  h: { local: true }\njobs:\n  j:\n    actions:\n      - run: "true"\nplans:\n  p:\n    steps:\n      - { job: j, targets: h }\n',
    });
    const r = await runCli(['plan', 'p', '--check', '--dry-run'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--check and --dry-run do not go together');
    const f = await runCli(['plan', 'p', '--check', '--failed-hosts-file', 'f.txt', '--log-dir', 'logs'], { cwd: dir });
    expect(f.code).toBe(2);
    expect(f.stderr).toContain('--failed-hosts-file does not go with --check');
    expect(f.stderr).toContain('--log-dir does not go with --check');
    expect(existsSync(join(dir, 'f.txt')) || existsSync(join(dir, 'logs'))).toBe(false);
  });

  it('pulls: a moved tag shows the file artifact replaced (by digest, no diff) and the directory artifact by its marker; the registry and hosts untouched', async () => {
    const lab = requireLab();
    const dir = project({});
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'known_hosts'), `${sshd().knownHostsLine}\n`);
    for (const d of ['hosts', 'locks', 'build', 'build/site']) mkdirSync(join(dir, d));
    for (const d of ['hosts', 'locks']) execFileSync('chown', [lab.user, join(dir, d)]);
    mkdirSync(join(dir, 'home'));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  build-server: { local: true }
  a1: { addr: ${sshd().host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey}, lock_dir: ${dir}/locks }
known_hosts: [${dir}/known_hosts]
jobs:
  build:
    local: true
    actions:
      - run: printf 'app %s\\n' "$VERSION" > build/app.bin && printf '<h1>%s</h1>\\n' "$VERSION" > build/site/index.html
  publish:
    artifacts:
      app: { path: ./build/app.bin }
      site: { path: ./build/site }
    actions:
      - push: { registry: r, artifact: app, name: app, tag: "\${VERSION}", aliases: semver }
      - push: { registry: r, artifact: site, name: site, tag: "\${VERSION}", aliases: semver }
  deploy:
    actions:
      - pull: { registry: r, name: app, tag: v1, to: "${dir}/hosts/app.bin" }
      - pull: { registry: r, name: site, tag: v1, to: "${dir}/hosts/site" }
plans:
  release:
    env: { VERSION: "\${VERSION}" }
    steps:
      - { name: build, job: build, targets: build-server }
      - { name: publish, job: publish, targets: build-server }
  deploy:
    steps:
      - { name: deploy, job: deploy, targets: a1 }
`,
    );
    const cli = (args: string[], extra: Record<string, string> = {}) =>
      runCli([...args, '--cache-dir', join(dir, 'cache')], { cwd: dir, env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', ...extra } });
    for (const [args, env] of [
      [['plan', 'release'], { VERSION: 'v1.0.0' }],
      [['plan', 'deploy'], {}],
      [['plan', 'release'], { VERSION: 'v1.1.0' }],
    ] as const) {
      const r = await cli([...args], env);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const oldMarker = readFileSync(join(dir, 'hosts/site/.hades-artifact'), 'utf8').trim();
    const before = { hosts: treeState(join(dir, 'hosts')), reg: treeState(join(dir, 'reg')), locks: treeState(join(dir, 'locks')) };
    const r = await cli(['plan', 'deploy', '--check', '--output', 'json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect({ hosts: treeState(join(dir, 'hosts')), reg: treeState(join(dir, 'reg')), locks: treeState(join(dir, 'locks')) }).toEqual(
      before,
    );
    const [app, site] = jsonEvents(r.stdout).filter((e) => e.type === 'check.change');
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    expect(app.change).toMatchObject({ change: 'replace', sha256: { from: sha('app v1.0.0\n'), to: sha('app v1.1.0\n') } });
    expect(app.change.noDiff).toMatch(/^artifact sha256:[0-9a-f]{64}: compared by digest$/);
    expect(app.diff).toBeUndefined();
    expect(site.change).toMatchObject({ change: 'replace', sha256: { from: oldMarker } });
    expect(site.change.sha256.to).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(site.change.sha256.to).not.toBe(oldMarker);
    // and once deployed, nothing left to change
    expect((await cli(['plan', 'deploy'])).code).toBe(0);
    const again = jsonEvents((await cli(['plan', 'deploy', '--check', '--output', 'json'])).stdout);
    expect(again.filter((e) => e.type === 'check.change').map((e) => e.status)).toEqual(['unchanged', 'unchanged']);
  });

  it('a host that cannot be reached: one check.host line, its actions not listed, exit 1', async () => {
    const lab = requireLab();
    const dir = project({
      'hadesfile.yaml': `hosts:\n  down: { addr: 127.0.0.1, port: 1, user: ${lab.user}, identity_file: ${lab.clientKey} }\njobs:\n  j:\n    actions:\n      - mkdir: { path: /srv/x }\n      - mkdir: { path: /srv/y }\nplans:\n  p:\n    steps:\n      - { job: j, targets: down }\n`,
    });
    const r = await runCli(['plan', 'p', '--check', '--output', 'json', '--connect-timeout', '5s'], {
      cwd: dir,
      env: { HOME: dir, SSH_AUTH_SOCK: '' },
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const ev = jsonEvents(r.stdout);
    expect(ev.map((e) => [e.type, e.host, e.status])).toEqual([
      ['check.host', 'down', 'failed'],
      ['check.end', undefined, 'failed'],
    ]);
    expect(ev[0].message).toMatch(/^cannot check: /);
    expect(ev[1].counts).toEqual({ 'hosts not checked': 1 });
  });
});
