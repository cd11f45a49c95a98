/**
 * Registry mirrors against real registries: an origin (Debian's docker-registry), a second one
 * configured as its pull-through cache (`proxy.remoteurl`), and a plain third one playing a
 * stale / corrupt mirror. Pulls go through the mirror (seen in oras's argv), the tag is always
 * resolved at the origin, a stale mirror never picks the version, a corrupt mirror never
 * corrupts a pull, and with the mirror stopped reads fall back to the origin — reported, by the
 * API and by the CLI.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import { project, runCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe.skipIf(skip)('oci registry mirrors (real origin, real pull-through cache)', () => {
  let origin: TestRegistry;
  let mirror: TestRegistry;
  let stale: TestRegistry;
  let tmp: string;
  let k = 0;
  const argv: string[][] = [];
  const warnings: string[] = [];

  beforeAll(async () => {
    origin = await startRegistry(); // first: the cache pings its upstream at start-up
    mirror = await startRegistry({ proxy: `http://${origin.url}` });
    stale = await startRegistry();
    tmp = mkdtempSync(join(tmpdir(), 'hades-oci-mirrors-'));
  });
  afterAll(async () => {
    await mirror?.stop();
    await stale?.stop();
    await origin?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  function oci(url: string, over: Partial<OciRegistrySpec> = {}) {
    return openOciRegistry(
      { name: 'prod', type: 'oci', url, plainHttp: true, insecure: false, pos, ...over },
      { env: EPOCH, onSpawn: (a) => argv.push([...a]), onWarning: (m) => warnings.push(m) },
    );
  }
  function file(content: string | Buffer, name = 'app.bin'): string {
    const d = join(tmp, `src${k++}`);
    mkdirSync(d);
    writeFileSync(join(d, name), content);
    return join(d, name);
  }
  /** The reference each oras call of `calls` names (its last argument), with its subcommand. */
  const refs = (calls: string[][]) => calls.map((a) => `${a[1]} ${a[2]} ${a[a.length - 1]}`);

  it('a mirror whose ${VAR} is not set stops a plan before anything runs (exit 2, at the registry)', async () => {
    const dir = project({
      'hadesfile.yaml': `registries:
  prod:
    type: oci
    url: ${origin.url}/team
    plain_http: true
    mirrors: ["\${NO_SUCH_MIRROR}"]
hosts:
  h1: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: prod, name: app, tag: v1, to: /tmp/never-written-by-hades-mirror-test }
plans:
  release:
    steps:
      - { name: deploy, job: deploy, targets: h1 }
`,
    });
    const r = await runCli(['plan', 'release', '--output', 'plain'], { cwd: dir, env: { NO_SUCH_MIRROR: undefined } });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain(
      'hadesfile.yaml:2:3: error: registry "prod": mirror uses ${NO_SUCH_MIRROR}, which is not set in the environment',
    );
    expect(r.stderr).toContain('hint: export NO_SUCH_MIRROR=…');
    expect(r.stdout).not.toMatch(/action\.start|deploy/);
  });

  it('pulls go through the pull-through mirror; the tag is resolved at the origin', async () => {
    const payload = randomBytes(256 * 1024);
    const pushed = await oci(`${origin.url}/team`).push('app', 'v1', { path: file(payload) });
    const digest = pushed.descriptor.manifestDigest;
    const layer = pushed.descriptor.layer.digest;
    const m = oci(`${origin.url}/team`, { mirrors: [mirror.url] });
    const start = argv.length;
    warnings.length = 0;

    const d = await m.resolve('app', { tag: 'v1' });
    expect(d.manifestDigest).toBe(digest);
    expect(d.tag).toBe('v1');
    const out = join(tmp, `out${k++}`);
    await m.fetchTo(d, out);
    expect(readFileSync(out).equals(payload)).toBe(true);
    expect((await bytes(await m.open(d))).equals(payload)).toBe(true);
    expect((await bytes(await m.open(await m.resolve('app', { digest })))).equals(payload)).toBe(true);

    expect(warnings).toEqual([]);
    expect(refs(argv.slice(start))).toEqual([
      `manifest fetch ${origin.url}/team/app:v1`, // the tag: at the origin, always
      `manifest fetch ${mirror.url}/team/app@${digest}`,
      `blob fetch ${mirror.url}/team/app@${layer}`, // fetchTo
      `blob fetch ${mirror.url}/team/app@${layer}`, // open
      `manifest fetch ${mirror.url}/team/app@${digest}`, // by digest: no tag, so no origin call at all
      `blob fetch ${mirror.url}/team/app@${layer}`,
    ]);
    expect(argv[start]).toContain('--descriptor');

    // listing tags and pushing (the immutability check) talk to the origin only
    const again = argv.length;
    expect((await m.tags('app')).map((t) => [t.tag, t.manifestDigest])).toEqual([['v1', digest]]);
    expect((await m.push('app', 'v1', { path: file(payload) })).unchanged).toBe(true);
    const calls = argv.slice(again);
    expect(calls.length).toBeGreaterThan(0);
    for (const a of calls) expect(a[a.length - 1]).toMatch(new RegExp(`^${origin.url}/team/app([:@]|$)`));
    expect(warnings).toEqual([]);
  });

  it('a stale mirror never picks the version; what it lacks comes from the origin, reported', async () => {
    const fresh = await oci(`${origin.url}/team`).push('web', 'v2', { path: file('the real v2\n') });
    // the "mirror" holds other content under the same tag
    const old = await oci(`${stale.url}/team`).push('web', 'v2', { path: file('a stale v2\n') });
    expect(old.descriptor.manifestDigest).not.toBe(fresh.descriptor.manifestDigest);
    const digest = fresh.descriptor.manifestDigest;
    const m = oci(`${origin.url}/team`, { mirrors: [stale.url] });
    warnings.length = 0;
    const d = await m.resolve('web', { tag: 'v2' });
    expect(d.manifestDigest).toBe(digest);
    expect((await bytes(await m.open(d))).toString()).toBe('the real v2\n');
    expect(warnings).toEqual([
      `registry "prod": mirror ${stale.url} failed (manifest web@${digest}): artifact web@${digest} not found in registry "prod"; using origin ${origin.url}/team`,
      `registry "prod": mirror ${stale.url} failed (blob web@${d.layer.digest}): artifact web@${d.layer.digest} not found in registry "prod"; using origin ${origin.url}/team`,
    ]);
  });

  it('a corrupt mirror can slow a pull, never corrupt it: its bytes fail the digest check and the origin serves them', async () => {
    const payload = randomBytes(64 * 1024);
    const pushed = await oci(`${origin.url}/team`).push('lib', 'v1', { path: file(payload) });
    await oci(`${origin.url}/team`).copyTo(oci(`${stale.url}/team`), 'lib', 'v1');
    const layer = pushed.descriptor.layer.digest;
    const blob = stale.blobFile(layer);
    expect(statSync(blob).size).toBe(payload.length);
    writeFileSync(blob, randomBytes(payload.length)); // same size, other bytes
    const m = oci(`${origin.url}/team`, { mirrors: [stale.url] });
    const d = await m.resolve('lib', { tag: 'v1' });
    for (const read of [
      async () => {
        const out = join(tmp, `out${k++}`);
        await m.fetchTo(d, out);
        return readFileSync(out);
      },
      async () => bytes(await m.open(d)),
    ]) {
      warnings.length = 0;
      expect((await read()).equals(payload)).toBe(true);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        new RegExp(`^registry "prod": mirror ${stale.url} failed \\(blob lib@${layer}\\): .*${layer}.*; using origin ${origin.url}/team$`),
      );
      expect(warnings[0]).toMatch(/digest/);
    }
  });

  it("a mirror behind basic auth gets its own HADES_REGISTRY_AUTH entry (never the origin's password); without it: reported, origin used", async () => {
    const MPASS = `mirror-pw-${randomBytes(8).toString('hex')}`;
    const locked = await startRegistry({ proxy: `http://${origin.url}`, auth: { user: 'cache', password: MPASS } });
    try {
      const payload = randomBytes(16 * 1024);
      const pushed = await oci(`${origin.url}/team`).push('svc', 'v1', { path: file(payload) });
      const env = { ...EPOCH, HADES_REGISTRY_AUTH: JSON.stringify({ [locked.url]: { username: 'cache', password: MPASS } }) };
      const spec: OciRegistrySpec = {
        name: 'prod',
        type: 'oci',
        url: `${origin.url}/team`,
        plainHttp: true,
        insecure: false,
        pos,
        mirrors: [locked.url],
      };
      const start = argv.length;
      warnings.length = 0;
      const m = openOciRegistry(spec, { env, onSpawn: (a) => argv.push([...a]), onWarning: (w) => warnings.push(w) });
      const d = await m.resolve('svc', { tag: 'v1' });
      expect(d.manifestDigest).toBe(pushed.descriptor.manifestDigest);
      expect((await bytes(await m.open(d))).equals(payload)).toBe(true);
      expect(warnings).toEqual([]);
      const calls = argv.slice(start);
      const atMirror = calls.filter((a) => a[a.length - 1]!.startsWith(`${locked.url}/`));
      expect(atMirror.length).toBe(2);
      for (const a of atMirror) expect(a).toEqual(expect.arrayContaining(['-u', 'cache', '--password-stdin']));
      for (const a of calls.filter((a) => !atMirror.includes(a))) expect(a).not.toContain('--password-stdin');
      for (const a of calls) expect(a.join(' ')).not.toContain(MPASS);

      // no entry for the mirror: it refuses, that is reported, the origin serves
      warnings.length = 0;
      const anon = openOciRegistry(spec, { env: EPOCH, onWarning: (w) => warnings.push(w) });
      expect((await bytes(await anon.open(await anon.resolve('svc', { tag: 'v1' })))).equals(payload)).toBe(true);
      expect(warnings).toHaveLength(2);
      for (const w of warnings)
        expect(w).toMatch(
          new RegExp(
            `mirror ${locked.url} failed \\(.*\\): authentication failed for registry "prod" \\(mirror ${locked.url}\\): no credentials were accepted for mirror ${locked.url}: add ${locked.url} to \\$HADES_REGISTRY_AUTH, .*; using origin`,
          ),
        );
    } finally {
      await locked.stop();
    }
  });

  it('with the mirror stopped, reads fall back to the origin and say so (API and CLI); bad endpoints are named', async () => {
    const payload = randomBytes(32 * 1024);
    await oci(`${origin.url}/team`).push('tool', 'v1', { path: file(payload) });
    const dir = project({
      'hadesfile.yaml': `registries:
  prod:
    type: oci
    url: ${origin.url}/team
    plain_http: true
    mirrors: [${mirror.url}]
`,
    });
    // through the running mirror: no warning
    const up = await runCli(['registry', 'pull', 'prod', 'tool:v1', '-o', 'up.bin'], { cwd: dir });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).not.toMatch(/warning/);
    expect(readFileSync(join(dir, 'up.bin')).equals(payload)).toBe(true);

    await mirror.stop();
    const m = oci(`${origin.url}/team`, { mirrors: [mirror.url] });
    warnings.length = 0;
    const d = await m.resolve('tool', { tag: 'v1' });
    expect((await bytes(await m.open(d))).equals(payload)).toBe(true);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^registry "prod": mirror ${mirror.url} failed \\(manifest tool@sha256:[0-9a-f]{64}\\): cannot reach registry "prod" \\(mirror ${mirror.url}\\): .*connection refused.*; using origin ${origin.url}/team$`,
      ),
    );
    expect(warnings[1]).toMatch(
      new RegExp(`^registry "prod": mirror ${mirror.url} failed \\(blob tool@${d.layer.digest}\\): cannot reach`),
    );

    const down = await runCli(['registry', 'pull', 'prod', 'tool:v1', '-o', 'down.bin'], { cwd: dir });
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(join(dir, 'down.bin')).equals(payload)).toBe(true);
    expect(down.stderr).toMatch(
      new RegExp(
        `^warning: registry "prod": mirror ${mirror.url} failed \\(manifest tool@sha256:[0-9a-f]{64}\\): cannot reach .*; using origin`,
        'm',
      ),
    );
    expect(down.stderr).toMatch(new RegExp(`^warning: registry "prod": mirror ${mirror.url} failed \\(blob tool@sha256:`, 'm'));

    // a plan run: the fallback is a registry.warning event, in --output json and in the audit log alike
    const planDir = project({});
    writeFileSync(
      join(planDir, 'hadesfile.yaml'),
      `registries:
  prod:
    type: oci
    url: ${origin.url}/team
    plain_http: true
    mirrors: [${mirror.url}]
hosts:
  h1: { local: true }
jobs:
  deploy:
    actions:
      - pull: { registry: prod, name: tool, tag: v1, to: ${join(planDir, 'tool.bin')} }
plans:
  release:
    steps:
      - { name: deploy, job: deploy, targets: h1 }
`,
    );
    const warningsOf = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string; registry?: string; message?: string })
        .filter((e) => e.type === 'registry.warning');
    const run = await runCli(['plan', 'release', '--output', 'json', '--log-dir', 'logs', '--cache-dir', 'cache'], {
      cwd: planDir,
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(readFileSync(join(planDir, 'tool.bin')).equals(payload)).toBe(true);
    const events = warningsOf(run.stdout);
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]!.registry).toBe('prod');
    expect(events[0]!.message).toMatch(
      new RegExp(
        `^registry "prod": mirror ${mirror.url} failed \\(manifest tool@sha256:[0-9a-f]{64}\\): cannot reach .*; using origin ${origin.url}/team$`,
      ),
    );
    expect(run.stderr).not.toMatch(/warning/); // the event is the report, not a stray stderr line
    const logs = readdirSync(join(planDir, 'logs'));
    expect(logs).toHaveLength(1);
    expect(warningsOf(readFileSync(join(planDir, 'logs', logs[0]!), 'utf8'))).toEqual(events);

    // plain output shows the same warning; a secret's value in it is redacted like in every event
    const plain = await runCli(
      ['plan', 'release', '--output', 'plain', '--log-dir', 'logs2', '--cache-dir', 'cache2', '-e', `MIRROR_SECRET=${mirror.url}`],
      { cwd: planDir },
    );
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^warning: registry "prod": mirror \*\*\* failed \(manifest tool@sha256:/m);
    expect(plain.stdout + plain.stderr).not.toContain(mirror.url);
    const logs2 = readdirSync(join(planDir, 'logs2'));
    const audited = warningsOf(readFileSync(join(planDir, 'logs2', logs2[0]!), 'utf8'));
    expect(audited.length).toBeGreaterThan(0);
    for (const e of audited) expect(e.message).not.toContain(mirror.url);

    // both down: the origin's error is the error, and the mirror's failure was reported first
    const both = oci('127.0.0.1:9/team', { mirrors: [mirror.url] });
    warnings.length = 0;
    await expect(both.open(d)).rejects.toThrow(/^cannot reach registry "prod" \(127\.0\.0\.1:9\/team\)/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`mirror ${mirror.url} failed`);
  });
});
