/**
 * Security issue 11, end to end through the built CLI: hostile archives in a real filesystem
 * registry, pulled by a real plan onto a `local: true` host. The run must fail naming the
 * entry, before any byte reaches the host: nothing outside the tree changes (a sentinel's
 * bytes and lstat), the destination does not appear. Good archives still extract.
 */
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { writeDirectoryArtifact } from '../helpers/raw-artifact.js';
import { rawTar, type RawEntry } from '../fixtures/registry/rawtar.js';

function deployProject(pull: (dir: string) => string): string {
  const dir = project({});
  mkdirSync(join(dir, 'out'));
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  h: { local: true }
jobs:
  deploy:
    actions:
      - pull: ${pull(dir)}
plans:
  p:
    steps:
      - { name: deploy, job: deploy, targets: h }
`,
  );
  return dir;
}

/** Bytes and lstat of a file: what must not change. */
function fingerprint(path: string): unknown {
  const st = lstatSync(path);
  return {
    bytes: readFileSync(path).toString('hex'),
    ino: st.ino,
    mode: st.mode,
    nlink: st.nlink,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
}

const run = (dir: string) => runCli(['plan', 'p', '--output', 'plain', '--cache-dir', join(dir, 'cache')], { cwd: dir });

describe('hostile archives are refused on the orchestrator, before the host sees a byte', () => {
  it('a directory artifact whose app/.hades-artifact links to ../passwd (the marker write overwrote a sibling)', async () => {
    const dir = deployProject((dir) => `{ registry: r, name: site, tag: v1, to: "${dir}/out/site" }`);
    const sentinel = join(dir, 'out', 'passwd');
    writeFileSync(sentinel, 'root:x:0:0::/root:/bin/sh\n');
    const before = fingerprint(sentinel);
    const entries: RawEntry[] = [
      { name: 'app', typeflag: '5', mode: 0o755 },
      { name: 'app/index.html', typeflag: '0', data: '<h1>hi</h1>\n' },
      { name: 'app/.hades-artifact', typeflag: '2', linkname: '../passwd' },
    ];
    await writeDirectoryArtifact(join(dir, 'reg'), 'site', 'v1', 'app', rawTar(entries));

    const r = await run(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain('refusing to extract site:v1');
    expect(r.stdout).toContain('tar entry "app/.hades-artifact": .hades-artifact at the root of the tree is the marker Hades writes');
    expect(r.stdout).toContain('nothing was written on the host');
    expect(fingerprint(sentinel)).toEqual(before);
    expect(readdirSync(join(dir, 'out'))).toEqual(['passwd']);
  });

  it('extract: true of a tar whose links chain out of the tree (a/b/c/d/e/f/l -> ../../../../../.., then .hades-artifact -> …/l/../../…/victim)', async () => {
    const dir = project({});
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    const before = fingerprint(victim);
    const deep = 'a/b/c/d/e/f';
    const through = `${deep}/l/${'../'.repeat(7)}${victim.slice(1)}`;
    writeFileSync(
      join(dir, 'evil.tar'),
      rawTar([
        { name: `${deep}/`, typeflag: '5', mode: 0o755 },
        { name: `${deep}/l`, typeflag: '2', linkname: '../../../../../..' },
        { name: '.hades-artifact', typeflag: '2', linkname: through },
        { name: 'x', typeflag: '2', linkname: through },
      ]),
    );
    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'hadesfile.yaml'), `registries:\n  r: { type: filesystem, path: ./reg }\n`);
    const push = await runCli(['registry', 'push', 'r', 'evil.tar', 'evil:v1'], { cwd: dir });
    expect(push.code, push.stderr).toBe(0);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  h: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: r, name: evil, tag: v1, to: "${dir}/out/evil", extract: true }
plans:
  p:
    steps:
      - { name: deploy, job: deploy, targets: h }
`,
    );
    const r = await run(dir);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain('refusing to extract evil:v1');
    expect(r.stdout).toContain('tar entry ".hades-artifact": .hades-artifact at the root of the tree is the marker Hades writes');
    expect(r.stdout).toContain(
      `tar entry "x": symlink to ${JSON.stringify(through)} goes up ("..") after passing through the symlink "${deep}/l"`,
    );
    expect(fingerprint(victim)).toEqual(before);
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
  });

  it('a good directory artifact (current -> v1, lib/x -> ../share/x) pushed by the CLI still extracts, with the marker', async () => {
    const dir = project({ 'hadesfile.yaml': 'registries:\n  r: { type: filesystem, path: ./reg }\n' });
    const app = join(dir, 'app');
    mkdirSync(join(app, 'v1'), { recursive: true });
    mkdirSync(join(app, 'share'));
    mkdirSync(join(app, 'lib'));
    writeFileSync(join(app, 'v1', 'bin'), 'v1\n');
    writeFileSync(join(app, 'share', 'x'), 'shared\n');
    symlinkSync('v1', join(app, 'current'));
    symlinkSync('../share/x', join(app, 'lib', 'x'));
    const push = await runCli(['registry', 'push', 'r', 'app', 'app:v1'], { cwd: dir });
    expect(push.code, push.stderr).toBe(0);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  h: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: r, name: app, tag: v1, to: "${dir}/out/app" }
plans:
  p:
    steps:
      - { name: deploy, job: deploy, targets: h }
`,
    );
    mkdirSync(join(dir, 'out'));
    const r = await run(dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = join(dir, 'out', 'app');
    expect(readlinkSync(join(out, 'current'))).toBe('v1');
    expect(readlinkSync(join(out, 'lib', 'x'))).toBe('../share/x');
    expect(readFileSync(join(out, 'current', 'bin'), 'utf8')).toBe('v1\n');
    expect(readFileSync(join(out, 'lib', 'x'), 'utf8')).toBe('shared\n');
    expect(readFileSync(join(out, '.hades-artifact'), 'utf8')).toMatch(/^sha256:[0-9a-f]{64}\n$/);
  });
});
