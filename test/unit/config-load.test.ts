/** The hadesfile loader on good input: discovery, merging, the typed model, positions. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverFiles, loadSchema, parseModeToken } from '../../src/config/load.js';
import { loadHadesfile } from '../helpers/load.js';
import type { ActionSpec } from '../../src/config/model.js';
import { UserError } from '../../src/errors.js';

const fixtures = fileURLToPath(new URL('../fixtures/config/', import.meta.url));
const guide = join(fixtures, 'guide');
const split = join(fixtures, 'split');

const temps: string[] = [];
function tempDir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'hades-config-'));
  temps.push(d);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** The UserError's formatted text (fails the test when loading succeeds). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  throw new Error('expected a UserError');
}

const JOB = 'jobs:\n  j:\n    actions:\n      - run: "true"\n';

describe('the registry guide', () => {
  it("loads the guide's complete example unmodified, with an inventory", () => {
    const h = loadHadesfile({ cwd: guide, inventory: ['inventory.yaml'] });
    expect(h.files).toEqual([join(guide, 'hadesfile.yaml'), join(guide, 'inventory.yaml')]);
    expect(h.baseDir).toBe(guide);
    expect(h.registries.get('prod')).toEqual({
      name: 'prod',
      type: 'filesystem',
      path: '/var/hades/artifacts',
      pos: { file: 'hadesfile.yaml', line: 2, col: 3 },
    });
    const publish = h.jobs.get('publish')!;
    expect(publish.artifacts['app-binary']).toEqual({ path: join(guide, 'build/myapp'), pos: { file: 'hadesfile.yaml', line: 9, col: 7 } });
    expect(publish.env).toBeUndefined();
    expect(publish.actions[0]).toMatchObject({
      kind: 'push',
      spec: { registry: 'prod', artifact: 'app-binary', name: 'myapp', tag: '${VERSION}' },
    });
    const deploy = h.jobs.get('deploy')!;
    expect(deploy.env).toEqual({ VERSION: { required: true, pos: { file: 'hadesfile.yaml', line: 20, col: 7 } } });
    expect(deploy.actions.map((a) => a.kind)).toEqual(['mkdir', 'pull', 'run', 'run']);
    expect(deploy.actions[0]!.spec).toEqual({ path: '/opt/myapp', mode: 0o755 });
    expect(deploy.actions[0]!.fieldPos.mode).toEqual({ file: 'hadesfile.yaml', line: 24, col: 17 });
    expect(deploy.actions[2]!.spec).toBe('chmod +x /opt/myapp/app');
    const steps = h.plans.get('release')!.steps;
    expect(steps.map((s) => [s.name, s.job, s.targets, s.limit, s.env])).toEqual([
      ['publish', 'publish', ['build-server'], undefined, { VERSION: 'v1.0.0' }],
      ['deploy-canary', 'deploy', ['app-servers'], 1, { VERSION: 'v1.0.0' }],
      ['deploy-all', 'deploy', ['app-servers'], undefined, { VERSION: 'v1.0.0' }],
    ]);
    expect(steps[1]!.pos).toEqual({ file: 'hadesfile.yaml', line: 42, col: 9 });
    expect(steps[1]!.envPos.VERSION).toEqual({ file: 'hadesfile.yaml', line: 47, col: 11 });
    expect([...h.hosts.keys()]).toEqual(['build-server', 'app1', 'app2', 'localhost']);
    expect(h.targets.get('app-servers')).toEqual({ hosts: ['app1', 'app2'], pos: { file: 'inventory.yaml', line: 9, col: 3 } });
  });

  it('without hosts for its targets, says which names are unknown', () => {
    expect(errorOf(() => loadHadesfile({ cwd: guide }))).toBe(
      [
        'hadesfile.yaml:38:19: error: unknown target or host "build-server" in step "publish"',
        '    hint: no targets are declared; declared hosts: localhost',
        'hadesfile.yaml:44:19: error: unknown target or host "app-servers" in step "deploy-canary"',
        '    hint: no targets are declared; declared hosts: localhost',
        'hadesfile.yaml:51:19: error: unknown target or host "app-servers" in step "deploy-all"',
        '    hint: no targets are declared; declared hosts: localhost',
        '3 errors',
      ].join('\n'),
    );
  });
});

describe('two-file split (inventory.hades.yaml + jobs.hades.yaml)', () => {
  const h = loadHadesfile({ cwd: split });

  it('discovers both *.hades.yaml files, sorted, and merges them', () => {
    expect(h.files).toEqual([join(split, 'inventory.hades.yaml'), join(split, 'jobs.hades.yaml')]);
    expect([...h.hosts.values()].map((x) => [x.name, x.order])).toEqual([
      ['build', 0],
      ['web1', 1],
      ['web2', 2],
      ['localhost', 3],
    ]);
  });

  it('builds hosts: paths, durations, defaults', () => {
    expect(h.hosts.get('build')).toEqual({
      name: 'build',
      addr: '127.0.1.1',
      user: 'ci',
      port: 2222,
      identityFile: join(split, 'keys/ci_ed25519'),
      connectTimeoutMs: 500,
      local: false,
      order: 0,
      pos: { file: 'inventory.hades.yaml', line: 3, col: 3 },
    });
    expect(h.hosts.get('web1')).toMatchObject({ jump: 'build' });
    expect(h.hosts.get('web1')!.port).toBeUndefined(); // ssh default 22
    expect(h.hosts.get('web2')).toMatchObject({ jump: 'ops@bastion.example.com:2200', connectTimeoutMs: 15_000 });
    expect(h.hosts.get('localhost')).toEqual({
      name: 'localhost',
      addr: 'localhost',
      local: true,
      builtin: true,
      order: 3,
      pos: { file: '(built-in)', line: 1, col: 1 },
    });
    expect(h.knownHosts).toEqual([join(split, 'keys/known_hosts')]);
    expect(h.secretPatterns).toEqual(['*_CRED*']);
  });

  it('builds registries', () => {
    expect(h.registries.get('local')).toMatchObject({ type: 'filesystem', path: join(fixtures, 'registry') });
    expect(h.registries.get('remote')).toEqual({
      name: 'remote',
      type: 'oci',
      url: '127.0.0.1:5000/hades',
      plainHttp: true,
      insecure: false,
      username: 'ci',
      passwordEnv: 'REGISTRY_PASSWORD',
      registryConfig: join(split, 'auth/config.json'),
      pos: { file: 'jobs.hades.yaml', line: 5, col: 3 },
    });
  });

  it('builds jobs: contract, guard, become, artifacts, actions', () => {
    const deploy = h.jobs.get('deploy')!;
    expect(deploy.become).toBe('root');
    expect(deploy.guard).toEqual({ if: 'test -d /opt', pos: { file: 'jobs.hades.yaml', line: 24, col: 5 } });
    expect(deploy.baseDir).toBe(split);
    expect(deploy.env).toEqual({
      VERSION: { required: true, pos: { file: 'jobs.hades.yaml', line: 26, col: 7 } },
      REPLICAS: { required: false, default: '2', pos: { file: 'jobs.hades.yaml', line: 27, col: 7 } },
      CHANNEL: { required: false, default: 'stable', pos: { file: 'jobs.hades.yaml', line: 28, col: 7 } },
    });
    const [mkdir, pull, template, run] = deploy.actions as [ActionSpec, ActionSpec, ActionSpec, ActionSpec];
    expect(mkdir).toEqual({
      kind: 'mkdir',
      name: 'app dir',
      spec: { path: '/opt/app', mode: 0o750, owner: 'deploy', group: 1000 },
      index: 0,
      pos: { file: 'jobs.hades.yaml', line: 31, col: 9 },
      fieldPos: {
        path: { file: 'jobs.hades.yaml', line: 31, col: 23 },
        mode: { file: 'jobs.hades.yaml', line: 31, col: 39 },
        owner: { file: 'jobs.hades.yaml', line: 31, col: 52 },
        group: { file: 'jobs.hades.yaml', line: 31, col: 67 },
      },
    });
    expect(Object.hasOwn(mkdir, 'become')).toBe(false); // inherits the job's
    expect(pull.become).toBe('deploy');
    expect(pull.spec).toMatchObject({ extract: true, tag: '${VERSION}' });
    expect(Object.hasOwn(template, 'become') && template.become === undefined).toBe(true); // become: false
    expect(template.spec).toEqual({ src: 'app.conf.tmpl', dst: '/etc/app.conf', vars: { port: 8080 } });
    expect(run).toMatchObject({
      kind: 'run',
      spec: 'systemctl restart app',
      fieldPos: { run: { file: 'jobs.hades.yaml', line: 36, col: 14 } },
    });
    const build = h.jobs.get('build')!;
    expect(build.local).toBe(true);
    expect(build.artifacts.app!.path).toBe(join(split, 'dist/app.tar.gz'));
    expect(build.actions[1]!.spec).toEqual({
      registry: 'local',
      artifact: 'app',
      name: 'app',
      tag: '${VERSION}',
      tags: ['latest-build'],
      aliases: 'semver',
    });
    expect(h.jobs.get('gate')!.actions.map((a) => a.spec)).toEqual([
      { message: 'Roll out to everyone?', timeout: '10m' },
      { duration: '1h30m' },
      null,
    ]);
    expect(h.jobs.get('promote')!.actions[0]!.spec).toEqual({
      from: 'local',
      to: 'remote',
      name: 'app',
      tag: '${VERSION}',
      as_tag: 'stable',
    });
  });

  it('builds plans: env as written, targets, limit, parallelism', () => {
    const plan = h.plans.get('release')!;
    expect(plan.env).toEqual({ VERSION: '1.10', DEBUG: 'false', COUNT: '3' });
    expect(plan.envPos.VERSION).toEqual({ file: 'jobs.hades.yaml', line: 48, col: 7 });
    const s = Object.fromEntries(plan.steps.map((x) => [x.name, x]));
    expect(s.build!.targets).toEqual(['localhost']);
    expect(s.canary).toMatchObject({ targets: ['web'], limit: 1, env: { VERSION: '${TAG}', REPLICAS: '1' } });
    expect(s.gate!.targets).toEqual([]);
    expect(s.rollout!.parallelism).toEqual({ kind: 'percent', percent: 25 });
    expect(s['rollout-2']!.parallelism).toEqual({ kind: 'count', n: 3 });
    expect(s['rollout-3']!.parallelism).toEqual({ kind: 'count', n: 2 });
    expect(s.canary!.parallelism).toBeUndefined();
  });

  it('the same split as -f FILE -i FILE: hosts come after the -f file in load order', () => {
    const h2 = loadHadesfile({ cwd: split, files: ['jobs.hades.yaml'], inventory: ['inventory.hades.yaml'] });
    expect(h2.files).toEqual([join(split, 'jobs.hades.yaml'), join(split, 'inventory.hades.yaml')]);
    expect([...h2.hosts.keys()]).toEqual(['build', 'web1', 'web2', 'localhost']);
  });
});

describe('file discovery', () => {
  it('prefers hadesfile.yaml in cwd over *.hades.yaml', () => {
    const d = tempDir({ 'hadesfile.yaml': JOB, 'other.hades.yaml': 'hosts: {a: {}}\n' });
    expect(discoverFiles({ cwd: d })).toEqual([join(d, 'hadesfile.yaml')]);
    expect(loadHadesfile({ cwd: d }).hosts.has('a')).toBe(false);
  });

  it('accepts hadesfile.yml', () => {
    const d = tempDir({ 'hadesfile.yml': JOB });
    expect(discoverFiles({ cwd: d })).toEqual([join(d, 'hadesfile.yml')]);
  });

  it('refuses both hadesfile.yaml and hadesfile.yml', () => {
    const d = tempDir({ 'hadesfile.yaml': JOB, 'hadesfile.yml': JOB });
    expect(errorOf(() => discoverFiles({ cwd: d }))).toBe(
      `error: both hadesfile.yaml and hadesfile.yml are in ${d}\n    hint: keep one of them, or name the one to use with -f`,
    );
  });

  it('else takes every *.hades.yaml and *.hades.yml, sorted', () => {
    const d = tempDir({ 'b.hades.yml': JOB.replace('j:', 'b:'), 'a.hades.yaml': JOB, 'notes.yaml': 'x: 1\n', 'c.hades.yaml.bak': '' });
    expect(discoverFiles({ cwd: d })).toEqual([join(d, 'a.hades.yaml'), join(d, 'b.hades.yml')]);
    expect([...loadHadesfile({ cwd: d }).jobs.keys()]).toEqual(['j', 'b']);
  });

  it('says what it looked for when nothing is there', () => {
    const d = tempDir({ 'notes.yaml': 'x: 1\n' });
    expect(errorOf(() => loadHadesfile({ cwd: d }))).toBe(
      `error: no hadesfile found in ${d}\n    hint: looked for hadesfile.yaml, hadesfile.yml, *.hades.yaml, *.hades.yml; name a file with -f FILE`,
    );
  });

  it('-f DIR applies the same rules inside DIR; -f FILE takes the file whatever its name', () => {
    const d = tempDir({ 'conf/x.hades.yaml': JOB, 'conf/y.hades.yaml': 'hosts: {h: {}}\n', 'deploy.yml': JOB.replace('j:', 'k:') });
    expect(discoverFiles({ cwd: d, files: ['conf'] })).toEqual([join(d, 'conf/x.hades.yaml'), join(d, 'conf/y.hades.yaml')]);
    expect(discoverFiles({ cwd: d, files: ['deploy.yml', 'conf'] })).toEqual([
      join(d, 'deploy.yml'),
      join(d, 'conf/x.hades.yaml'),
      join(d, 'conf/y.hades.yaml'),
    ]);
    // the same file twice is read once
    expect(discoverFiles({ cwd: d, files: ['conf', 'conf/x.hades.yaml'] })).toEqual([
      join(d, 'conf/x.hades.yaml'),
      join(d, 'conf/y.hades.yaml'),
    ]);
    const h = loadHadesfile({ cwd: d, files: ['conf'] });
    expect(h.baseDir).toBe(join(d, 'conf'));
    expect(h.jobs.get('j')!.pos).toEqual({ file: 'conf/x.hades.yaml', line: 2, col: 3 });
  });

  it('reports every missing -f / -i entry at once', () => {
    const d = tempDir({ 'empty/readme.txt': 'x' });
    expect(errorOf(() => loadHadesfile({ cwd: d, files: ['nope.yaml', 'empty'], inventory: ['inv.yaml'] }))).toBe(
      [
        `error: file nope.yaml does not exist`,
        `    hint: check the path (relative to ${d})`,
        'error: no hadesfile in directory empty',
        '    hint: looked for hadesfile.yaml, hadesfile.yml, *.hades.yaml, *.hades.yml',
        'error: inventory inv.yaml does not exist',
        `    hint: check the path (relative to ${d})`,
        '3 errors',
      ].join('\n'),
    );
  });

  it('shows paths relative to cwd inside it, absolute outside', () => {
    const d = tempDir({ 'in/hadesfile.yaml': 'jobz: {}\n', 'out/hadesfile.yaml': 'jobz: {}\n' });
    const msg = errorOf(() => loadHadesfile({ cwd: join(d, 'in'), files: ['hadesfile.yaml', '../out/hadesfile.yaml'] }));
    const lines = msg.split('\n').filter((l) => l.includes('error:'));
    expect(lines.map((l) => l.slice(0, l.indexOf(': error')))).toEqual([`${join(d, 'out/hadesfile.yaml')}:1:1`, 'hadesfile.yaml:1:1']);
  });
});

describe('inventory files (-i)', () => {
  it('may hold only hosts and targets', () => {
    const d = tempDir({ 'hadesfile.yaml': JOB, 'inv.yaml': 'hosts:\n  a: {}\njobs:\n  x: {}\nplans: {}\n' });
    expect(errorOf(() => loadHadesfile({ cwd: d, inventory: ['inv.yaml'] }))).toBe(
      [
        'inv.yaml:3:1: error: key "jobs" is not allowed in an inventory file (only hosts and targets)',
        '    hint: inventory files (-i) hold hosts and targets; load this file with -f instead',
        'inv.yaml:5:1: error: key "plans" is not allowed in an inventory file (only hosts and targets)',
        '    hint: inventory files (-i) hold hosts and targets; load this file with -f instead',
        '2 errors',
      ].join('\n'),
    );
  });

  it('an inventory alone loads (no hadesfile in cwd)', () => {
    const d = tempDir({ 'inv.yaml': 'hosts:\n  a: {addr: 10.0.0.1}\n' });
    const h = loadHadesfile({ cwd: d, inventory: ['inv.yaml'] });
    expect([...h.hosts.keys()]).toEqual(['a', 'localhost']);
    expect(h.baseDir).toBe(d);
  });

  it('a declared localhost replaces the built-in one', () => {
    const d = tempDir({ 'inv.yaml': 'hosts:\n  web: {}\n  localhost: {local: true, become: true}\n' });
    const h = loadHadesfile({ cwd: d, inventory: ['inv.yaml'] });
    expect([...h.hosts.keys()]).toEqual(['web', 'localhost']);
    expect(h.hosts.get('localhost')).toMatchObject({ local: true, become: 'root', addr: 'localhost', order: 1 });
    expect(h.hosts.get('localhost')!.builtin).toBeUndefined();
    expect(h.hosts.get('web')).toMatchObject({ addr: 'web', local: false });
  });
});

describe('modes', () => {
  it('0644, "0644", 0o644, "0o755", 04755 load as octal; <<: merges keep the token', () => {
    const h = loadHadesfile({ cwd: join(fixtures, 'good'), files: ['modes.yaml'] });
    const modes = h.jobs.get('modes')!.actions.map((a) => (a.spec as { mode?: number }).mode);
    expect(modes).toEqual([0o644, 0o644, 0o644, 0o755, 0o4755, undefined, 0o600, 0o440, 0o755, 0o700]);
    // the merged key's position is where the anchor wrote it
    expect(h.jobs.get('modes')!.actions[9]!.fieldPos.mode).toEqual({ file: 'modes.yaml', line: 1, col: 26 });
  });

  it.each([
    ['0644', 0o644],
    ['"0644"', 0o644],
    ["'0644'", 0o644],
    ['0o644', 0o644],
    ['"0o644"', 0o644],
    ['0755', 0o755],
    ['00', 0],
    ['0', 0],
    ['07777', 0o7777],
  ])('parseModeToken(%s) = %o', (raw, mode) => {
    expect(parseModeToken(raw)).toEqual({ mode });
  });

  it.each([
    ['644', 'ambiguous mode 644; write 0644'],
    ['"755"', 'ambiguous mode 755; write 0755'],
    ['7', 'ambiguous mode 7; write 07'],
    ['0o8', 'invalid mode 0o8: 8 and 9 are not octal digits'],
    ['999', 'invalid mode 999: 8 and 9 are not octal digits'],
    ['010000', 'mode 010000 is out of range'],
    ['rwxr-xr-x', 'invalid mode "rwxr-xr-x"'],
    ['0x1a4', 'invalid mode "0x1a4"'],
    ['""', 'invalid mode ""'],
  ])('parseModeToken(%s) is refused: %s', (raw, error) => {
    const r = parseModeToken(raw);
    expect('error' in r && r.error).toBe(error);
    expect('hint' in r && r.hint).toBeTruthy();
  });
});

describe('paths and values', () => {
  it('expands ~ and resolves relative paths against the declaring file; $VAR paths stay as written', () => {
    const d = tempDir({
      'sub/hadesfile.yaml': [
        'hosts:',
        '  a: {identity_file: ~/.ssh/id_ed25519}',
        '  b: {identity_file: /etc/keys/b}',
        '  c: {identity_file: ../keys/c}',
        'registries:',
        '  r1: {type: filesystem, path: "~"}',
        '  r2: {type: filesystem, path: "${REG_DIR}/r2"}',
        'jobs:',
        '  j:',
        '    artifacts: {x: {path: ./out/x}, y: {path: "${OUT}/y"}}',
        '    actions: [{copy: {src: files/a.conf, dst: /etc/a.conf}}]',
        '',
      ].join('\n'),
    });
    const h = loadHadesfile({ cwd: d, files: ['sub'] });
    expect(h.hosts.get('a')!.identityFile).toBe(join(homedir(), '.ssh/id_ed25519'));
    expect(h.hosts.get('b')!.identityFile).toBe('/etc/keys/b');
    expect(h.hosts.get('c')!.identityFile).toBe(join(d, 'keys/c'));
    expect(h.registries.get('r1')).toMatchObject({ path: homedir() });
    expect(h.registries.get('r2')).toMatchObject({ path: '${REG_DIR}/r2' });
    expect(h.jobs.get('j')!.artifacts).toMatchObject({ x: { path: join(d, 'sub/out/x') }, y: { path: '${OUT}/y' } });
    expect(h.jobs.get('j')!.actions[0]!.spec).toEqual({ src: 'files/a.conf', dst: '/etc/a.conf' });
    expect(h.jobs.get('j')!.baseDir).toBe(join(d, 'sub'));
  });

  it('an empty file and a file of comments declare nothing', () => {
    const d = tempDir({ 'a.hades.yaml': '', 'b.hades.yaml': '# nothing yet\n', 'c.hades.yaml': 'jobs:\nplans:\n' });
    const h = loadHadesfile({ cwd: d });
    expect(h.jobs.size + h.plans.size + h.targets.size + h.registries.size).toBe(0);
    expect([...h.hosts.keys()]).toEqual(['localhost']);
  });

  it('hosts in list form; a schema comment line is harmless', () => {
    const d = tempDir({
      'hadesfile.yaml': [
        '# yaml-language-server: $schema=https://example.invalid/hadesfile.schema.json',
        'hosts:',
        '  - name: web1',
        '    addr: 10.0.0.1',
        '    key: keys/web1',
        '  - {name: web2, local: true}',
        'targets:',
        '  web: [web1, web2]',
        '',
      ].join('\n'),
    });
    const h = loadHadesfile({ cwd: d });
    expect(h.hosts.get('web1')).toMatchObject({
      addr: '10.0.0.1',
      identityFile: join(d, 'keys/web1'),
      pos: { file: 'hadesfile.yaml', line: 3, col: 5 },
    });
    expect(h.hosts.get('web2')).toMatchObject({ addr: 'localhost', local: true, order: 1 });
  });
});

describe('all problems at once', () => {
  it('a file that does not parse does not hide the other files, and suppresses reference checks', () => {
    const d = tempDir({
      'a.hades.yaml': 'jobs:\n  deploy:\n    actions: [\n',
      'b.hades.yaml': 'plans:\n  p:\n    steps:\n      - {name: s, job: deploy, targets: [web], limt: 1}\n',
    });
    expect(errorOf(() => loadHadesfile({ cwd: d }))).toBe(
      [
        'a.hades.yaml:3:14: error: invalid YAML: unclosed [: a flow sequence must end with ]',
        '    hint: close it with ] (on the same line, or indented under its key)',
        'b.hades.yaml:4:48: error: unknown key "limt" in step "s" (allowed: name, job, targets, limit, parallelism, max_failures, env)',
        '    hint: did you mean "limit"?',
        '2 errors',
      ].join('\n'),
    );
  });

  it('the UserError carries structured problems sorted by file, line, column', () => {
    let err: UserError | undefined;
    try {
      loadHadesfile({ cwd: join(fixtures, 'bad'), files: ['many-errors.yaml'] });
    } catch (e) {
      err = e as UserError;
    }
    expect(err).toBeInstanceOf(UserError);
    const ps = err!.problems.map((p) => [p.pos!.line, p.pos!.col]);
    expect(ps).toEqual([...ps].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!));
    expect(err!.problems.every((p) => p.pos!.file === 'many-errors.yaml' && p.hint)).toBe(true);
  });
});

describe('schema', () => {
  it('loadSchema returns the shipped draft-07 schema', () => {
    const s = loadSchema() as Record<string, unknown>;
    expect(s.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(Object.keys(s.properties as object)).toEqual([
      'registries',
      'jobs',
      'plans',
      'hosts',
      'targets',
      'known_hosts',
      'secret_patterns',
    ]);
    expect(loadSchema()).toBe(s);
  });
});

describe('robustness', () => {
  it('any node replaced by a value of the wrong shape gives a UserError, never a crash', async () => {
    const { parse, stringify } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const base = parse(readFileSync(join(split, 'jobs.hades.yaml'), 'utf8')) as unknown;
    const inventory = parse(readFileSync(join(split, 'inventory.hades.yaml'), 'utf8')) as Record<string, unknown>;
    const paths: Array<Array<string | number>> = [];
    const walk = (v: unknown, p: Array<string | number>): void => {
      paths.push(p);
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...p, i]);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    };
    walk({ ...(base as object), ...inventory }, []);
    const d = tempDir({});
    let rejected = 0;
    const shapes = [null, 7, 'x', [], {}, true, [null], { a: null }];
    // every path gets two wrong shapes, rotating so each shape visits every depth (keeps this ~1 s);
    // HADES_CONFIG_FUZZ_ALL=1 tries every shape everywhere (~5 s)
    for (const [i, p] of paths.slice(1).entries()) {
      const some = [shapes[i % shapes.length], shapes[(i + 3) % shapes.length]];
      for (const bad of process.env.HADES_CONFIG_FUZZ_ALL === '1' ? shapes : some) {
        const doc = structuredClone({ ...(base as object), ...inventory }) as Record<string, unknown>;
        let cur: Record<string | number, unknown> = doc;
        for (const seg of p.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
        cur[p[p.length - 1]!] = bad;
        writeFileSync(join(d, 'hadesfile.yaml'), stringify(doc));
        try {
          loadHadesfile({ cwd: d });
        } catch (e) {
          if (!(e instanceof UserError)) throw new Error(`crash with ${JSON.stringify(bad)} at ${p.join('.')}: ${(e as Error).stack}`);
          expect(e.problems.every((x) => x.pos && x.hint && x.message)).toBe(true);
          rejected++;
        }
      }
    }
    expect(rejected).toBeGreaterThan(paths.length);
  });
});
