/**
 * `hades registry tag|exists|rm` through the built CLI, one table over a filesystem registry and
 * an oci registry (the real docker-registry) where the behaviour is the same; what only one type
 * does (oci: rm of a manifest other tags share, a registry that refuses deletes; gc is filesystem
 * only) afterwards. Interop claims are checked with the real `oras`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
let reg: TestRegistry | undefined;
let n = 0;

beforeAll(async () => {
  if (!skip) reg = await startRegistry();
});
afterAll(async () => {
  await reg?.stop();
});

interface Kind {
  kind: 'filesystem' | 'oci';
  /** A hadesfile with the registry "local" (fresh storage each call). */
  hadesfile(): string;
  /** The digest `oras` sees for app:TAG (oras reading the layout, or the remote registry). */
  orasDigest(dir: string, tag: string): string;
  /** Makes the registry unreadable for `exists` (→ exit 2). */
  breakIt(dir: string): void;
}

let url = '';
const KINDS: Kind[] = [
  {
    kind: 'filesystem',
    hadesfile: () => 'registries:\n  local: { type: filesystem, path: ./reg }\n',
    orasDigest: (dir, tag) =>
      JSON.parse(
        execFileSync('oras', ['manifest', 'fetch', '--oci-layout', '--descriptor', `${join(dir, 'reg', 'app')}:${tag}`], {
          encoding: 'utf8',
        }),
      ).digest,
    breakIt: (dir) => writeFileSync(join(dir, 'reg', 'app', 'index.json'), '{ not json'),
  },
  {
    kind: 'oci',
    hadesfile: () => {
      url = `${reg!.url}/lifecycle${n++}`;
      return `registries:\n  local: { type: oci, url: ${url}, plain_http: true }\n`;
    },
    orasDigest: (_dir, tag) =>
      JSON.parse(execFileSync('oras', ['manifest', 'fetch', '--plain-http', '--descriptor', `${url}/app:${tag}`], { encoding: 'utf8' }))
        .digest,
    // Nothing listens there (the registry's port + a closed one would race; an unused port of the
    // loopback range is refused at once).
    breakIt: (dir) =>
      writeFileSync(join(dir, 'hadesfile.yaml'), 'registries:\n  local: { type: oci, url: 127.0.0.1:9/gone, plain_http: true }\n'),
  },
];

describe.skipIf(skip).each(KINDS)('registry lifecycle on a $kind registry', (k) => {
  const setup = () => {
    const dir = project({ 'hadesfile.yaml': k.hadesfile(), 'a.txt': 'artifact a\n', 'b.txt': 'artifact b\n', 'c.txt': 'artifact c\n' });
    const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    return { dir, run };
  };

  it('tag adds immutable tags to an existing digest, never moves one, refuses alias-shaped names', async () => {
    const { dir, run } = setup();
    const p = await run('push', 'local', 'a.txt', 'app:v1.2.3', '--output', 'json');
    expect(p.code, p.stderr).toBe(0);
    const digest = JSON.parse(p.stdout).descriptor.manifestDigest;
    const t = await run('tag', 'local', 'app:v1.2.3', 'stable', 'rc-1');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toBe(`tagged app:v1.2.3 = ${digest} as stable, rc-1\n`);
    expect(k.orasDigest(dir, 'stable')).toBe(digest);
    expect(k.orasDigest(dir, 'rc-1')).toBe(digest);
    const again = await run('tag', 'local', 'app:stable', 'rc-1', 'ga', '--output', 'json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ registry: 'local', name: 'app', digest, added: ['ga'], unchanged: ['rc-1'] });

    expect((await run('push', 'local', 'b.txt', 'app:other')).code).toBe(0);
    const move = await run('tag', 'local', 'app:other', 'stable');
    expect(move.code).toBe(2);
    expect(move.stderr).toContain(`tag stable of app already exists with ${digest}; registries are immutable`);
    expect(k.orasDigest(dir, 'stable')).toBe(digest);
    const alias = await run('tag', 'local', 'app:v1.2.3', 'latest');
    expect(alias.code).toBe(2);
    expect(alias.stderr).toContain('tag latest has the form of a semver alias');
    const missing = await run('tag', 'local', 'app:nope', 'x1');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('app:nope not found in registry "local"');
    expect((await run('tag', 'local', 'app:v1.2.3')).code).toBe(2); // no new tag: usage
    const pulled = await run('pull', 'local', 'app:ga', '-o', join(dir, 'ga.txt'));
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(readFileSync(join(dir, 'ga.txt'), 'utf8')).toBe('artifact a\n');
  });

  it('exists: exit 0 present, 1 absent, 2 on error; no output unless --output json', async () => {
    const { dir, run } = setup();
    const p = await run('push', 'local', 'a.txt', 'app:v1', '--output', 'json');
    const digest = JSON.parse(p.stdout).descriptor.manifestDigest;
    const cases: [string, number][] = [
      ['app:v1', 0],
      [`app@${digest}`, 0],
      ['app:v2', 1],
      [`app@sha256:${'0'.repeat(64)}`, 1],
      ['other:v1', 1],
      ['app:bad tag!', 2],
    ];
    for (const [ref, code] of cases) {
      const r = await run('exists', 'local', ref);
      expect([ref, r.code, r.stdout]).toEqual([ref, code, '']);
    }
    const json = await run('exists', 'local', 'app:v2', '--output', 'json');
    expect([json.code, JSON.parse(json.stdout)]).toEqual([1, { registry: 'local', ref: 'app:v2', exists: false }]);
    const unknown = await run('exists', 'nope', 'app:v1');
    expect([unknown.code, unknown.stdout]).toEqual([2, '']);
    expect(unknown.stderr).toContain('unknown registry "nope"');
    k.breakIt(dir);
    const broken = await run('exists', 'local', 'app:v1');
    expect([broken.code, broken.stdout], broken.stderr).toEqual([2, '']);
    expect(broken.stderr).toMatch(/^error: /);
  });

  it('rm deletes one tag only with --force, with an audit line; a missing tag fails', async () => {
    const { run } = setup();
    expect((await run('push', 'local', 'c.txt', 'app:solo')).code).toBe(0);
    const no = await run('rm', 'local', 'app:solo');
    expect(no.code).toBe(2);
    expect(no.stderr).toContain('add --force');
    expect((await run('exists', 'local', 'app:solo')).code).toBe(0);
    const rm = await run('rm', 'local', 'app:solo', '--force');
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toMatch(/^removed app:solo \(was sha256:[a-f0-9]{64}\)/);
    expect((await run('exists', 'local', 'app:solo')).code).toBe(1);
    const log = /audit log: (.+\.jsonl)/.exec(rm.stderr)![1]!;
    const events = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ type: 'run.meta', command: 'registry rm --force', registry: 'local' });
    expect(events[1]).toMatchObject({ type: 'registry.removed', status: 'forced' });
    expect(events[1].message).toContain(`removed tag app:solo (was sha256:`);
    const again = await run('rm', 'local', 'app:solo', '--force');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('app:solo not found');
    expect((await run('rm', 'local', `app@sha256:${'0'.repeat(64)}`, '--force')).code).toBe(2);
  });
});

describe('registry rm of a tag that shares its digest with other tags', () => {
  it('filesystem: only that tag goes; the others still pull (the blobs stay until gc)', async () => {
    const dir = project({ 'hadesfile.yaml': KINDS[0]!.hadesfile(), 'a.txt': 'shared\n' });
    const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir });
    expect((await run('push', 'local', 'a.txt', 'app:v1', '--tag', 'stable')).code).toBe(0);
    const rm = await run('rm', 'local', 'app:v1', '--force');
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toContain('stable still points at it');
    expect((await run('exists', 'local', 'app:v1')).code).toBe(1);
    expect((await run('pull', 'local', 'app:stable', '-o', join(dir, 'x'))).code).toBe(0);
  });

  it.skipIf(skip)('oci: refused naming the other tags; --with-shared-tags deletes them together', async () => {
    const dir = project({ 'hadesfile.yaml': KINDS[1]!.hadesfile(), 'a.txt': 'shared\n' });
    const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir });
    expect((await run('push', 'local', 'a.txt', 'app:v1', '--tag', 'stable', '--tag', 'ga')).code).toBe(0);
    const refused = await run('rm', 'local', 'app:v1', '--force');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('shares its manifest');
    expect(refused.stderr).toContain('with ga, stable');
    expect(refused.stderr).toContain('--with-shared-tags');
    expect((await run('exists', 'local', 'app:v1')).code).toBe(0);
    const rm = await run('rm', 'local', 'app:v1', '--force', '--with-shared-tags', '--output', 'json');
    expect(rm.code, rm.stderr).toBe(0);
    expect(JSON.parse(rm.stdout).removed).toEqual(['ga', 'stable', 'v1']);
    for (const t of ['v1', 'stable', 'ga']) expect((await run('exists', 'local', `app:${t}`)).code).toBe(1);
    const tags = execFileSync('oras', ['repo', 'tags', '--plain-http', `${url}/app`], { encoding: 'utf8' });
    expect(tags.trim()).toBe('');
  });

  it.skipIf(skip)('oci: a registry that refuses deletes says so (exit 1) and keeps the tag', async () => {
    const strict = await startRegistry({ deleteEnabled: false });
    try {
      const dir = project({
        'hadesfile.yaml': `registries:\n  strict: { type: oci, url: ${strict.url}/x, plain_http: true }\n`,
        'a.txt': 'kept\n',
      });
      const run = (...a: string[]) => runCli(['registry', ...a], { cwd: dir });
      expect((await run('push', 'strict', 'a.txt', 'app:v1')).code).toBe(0);
      const rm = await run('rm', 'strict', 'app:v1', '--force');
      expect(rm.code).toBe(1);
      expect(rm.stderr).toContain('refuses to delete app:v1');
      expect(rm.stderr).toContain('storage.delete.enabled: true');
      expect((await run('exists', 'strict', 'app:v1')).code).toBe(0);
      const log = readFileSync(/audit log: (.+\.jsonl)/.exec(rm.stderr)![1]!, 'utf8');
      expect(log).toContain('"type":"registry.failed"');
    } finally {
      await strict.stop();
    }
  });

  it.skipIf(skip)('gc is for filesystem registries (exit 2 on an oci one)', async () => {
    const dir = project({ 'hadesfile.yaml': KINDS[1]!.hadesfile() });
    const r = await runCli(['registry', 'gc', 'local'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('registry gc works on filesystem registries');
  });
});
