/**
 * Credentials for `oci` registries against a real registry with htpasswd basic auth (and one
 * with TLS): username + password_env, a docker config written by `oras login`, wrong and
 * missing credentials (a clear auth error, never "not found"), and proof that the password is
 * in no oras argv or environment (spawn hook AND /proc of the running oras processes), no
 * output and no audit log.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { OciRegistryError, openOciRegistry, type OciRegistryOptions } from '../../src/registry/oci/registry.js';
import { ArtifactNotFound } from '../../src/registry/types.js';
import { project, startCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const USER = 'alice';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const B64 = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** Watches /proc for oras processes (argv and environment) until stopped. */
function watchOras(): { stop(): Promise<Array<{ pid: number; argv: string[]; environ: string }>> } {
  const seen = new Map<number, { pid: number; argv: string[]; environ: string }>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p) || seen.has(Number(p))) continue;
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
          if (!argv[0] || !/(^|\/)oras$/.test(argv[0])) continue;
          const environ = readFileSync(`/proc/${p}/environ`, 'utf8');
          seen.set(Number(p), { pid: Number(p), argv, environ });
        } catch {
          /* gone already */
        }
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...seen.values()];
    },
  };
}

describe.skipIf(skip)('oci registry credentials (real registry with basic auth)', () => {
  let reg: TestRegistry;
  let tmp: string;
  let k = 0;
  const argv: string[][] = [];

  beforeAll(async () => {
    reg = await startRegistry({ auth: { user: USER, password: PASSWORD } });
    tmp = mkdtempSync(join(tmpdir(), 'hades-oci-auth-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  function oci(
    over: Partial<OciRegistrySpec>,
    env: Record<string, string | undefined>,
    opts: OciRegistryOptions = {},
    url = `${reg.url}/team`,
  ) {
    return openOciRegistry(
      { name: 'prod', type: 'oci', url, plainHttp: true, insecure: false, pos, ...over },
      { env, onSpawn: (a) => argv.push([...a]), ...opts },
    );
  }
  function file(content: string | Buffer, name = 'app.bin'): string {
    const d = join(tmp, `src${k++}`);
    mkdirSync(d);
    writeFileSync(join(d, name), content);
    return join(d, name);
  }

  it('username + password_env: push, pull, list and a registry-to-registry copy work; the password is in no argv, no child environment, no leftover file', async () => {
    const authTmp = join(tmp, 'private-tmp');
    mkdirSync(authTmp);
    const env = { REG_USER: USER, REG_TOKEN: PASSWORD };
    const r = oci({ username: '${REG_USER}', passwordEnv: 'REG_TOKEN' }, env, { tmpDir: authTmp });
    const other = oci({ username: '${REG_USER}', passwordEnv: 'REG_TOKEN' }, env, { tmpDir: authTmp }, `${reg.url}/other`);
    const payload = randomBytes(48 * 1024 * 1024); // big enough that `oras cp` runs for a while
    const start = argv.length;
    const watch = watchOras();
    let procs: Array<{ pid: number; argv: string[]; environ: string }>;
    try {
      const pushed = await r.push('app', 'v1.0.0', { path: file(payload) }, { semverAliases: true });
      const d = await r.resolve('app', { tag: 'v1' });
      expect(d.manifestDigest).toBe(pushed.descriptor.manifestDigest);
      expect((await bytes(await r.open(d))).equals(payload)).toBe(true);
      expect((await r.tags('app')).map((t) => t.tag)).toEqual(['latest', 'v1', 'v1.0', 'v1.0.0']);
      expect(await r.names()).toEqual(['app']);
      const copied = await r.copyTo(other, 'app', 'v1.0.0');
      expect(copied.descriptor.manifestDigest).toBe(pushed.descriptor.manifestDigest);
    } finally {
      procs = await watch.stop();
    }
    const mine = argv.slice(start);
    expect(mine.map((a) => a[1])).toEqual(expect.arrayContaining(['cp', 'login', 'blob', 'manifest', 'repo', 'tag']));
    for (const a of mine) {
      expect(a.join(' ')).not.toContain(PASSWORD);
      expect(a.join(' ')).not.toContain(B64);
    }
    // every call that needs credentials gets them via stdin (-u USER --password-stdin) or an auth file
    for (const a of mine) {
      if (a[1] === 'cp') expect(a).toContain('--to-registry-config');
      else expect(a).toContain('--password-stdin');
    }
    // what really ran, seen from /proc: the long copy at least, and no password anywhere
    expect(procs.some((p) => p.argv[1] === 'cp')).toBe(true);
    for (const p of procs) {
      expect(p.argv.join(' ')).not.toContain(PASSWORD);
      expect(p.environ).not.toContain(PASSWORD);
      expect(p.environ).not.toContain('REG_TOKEN');
    }
    // the temporary auth files of the copies are gone
    expect(readdirSync(authTmp)).toEqual([]);
  });

  it('registry_config: a docker config written by `oras login --password-stdin` is used as is', async () => {
    const config = join(tmp, 'docker-config.json');
    const login = spawnSync('oras', ['login', '--plain-http', '--registry-config', config, '-u', USER, '--password-stdin', reg.url], {
      input: PASSWORD,
      encoding: 'utf8',
    });
    expect(login.status, login.stderr).toBe(0);
    const r = oci({ registryConfig: config }, {});
    const pushed = await r.push('cfg', 'v1', { path: file('via docker config\n') });
    const again = await r.push('cfg', 'v1', { path: file('via docker config\n') });
    expect(again.unchanged).toBe(true);
    expect((await bytes(await r.open(await r.resolve('cfg', { digest: pushed.descriptor.manifestDigest })))).toString()).toBe(
      'via docker config\n',
    );
  });

  it('a wrong password is an authentication error — also for a tag that does not exist — and never shows the password', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const r = oci({ username: USER, passwordEnv: 'REG_TOKEN' }, { REG_TOKEN: wrong });
    const attempts = [
      () => r.resolve('app', { tag: 'v1.0.0' }),
      () => r.resolve('app', { tag: 'no-such-tag' }),
      () => r.tags('app'),
      () => r.push('x', 'v1', { path: file('x') }),
    ];
    for (const attempt of attempts) {
      const e = await rejection(attempt());
      expect(e).not.toBeInstanceOf(ArtifactNotFound);
      expect(e).toBeInstanceOf(OciRegistryError);
      expect((e as OciRegistryError).kind).toBe('auth');
      expect(e.message).toMatch(
        new RegExp(
          `^authentication failed for registry "prod" \\(${reg.url}/team\\): check username \\("alice"\\) and the password in \\$REG_TOKEN \\(password_env\\)`,
        ),
      );
      expect(e.message).not.toContain(wrong);
    }
    // no credentials at all
    const anon = oci({}, {}, {}, `${reg.url}/team`);
    const e = await rejection(anon.resolve('app', { tag: 'v1.0.0' }));
    expect((e as OciRegistryError).kind).toBe('auth');
    expect(e.message).toContain(
      `set username + password_env or registry_config, add ${reg.url} to $HADES_REGISTRY_AUTH, or log in with \`oras login ${reg.url}\``,
    );
  });

  it('a plan run through the CLI: the password is in no output, no audit log and no oras process; a wrong one fails the run with an auth error', async () => {
    const dir = project({ 'build/app.bin': 'app from plan\n', 'deployed/.keep': '' });
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  prod:
    type: oci
    url: ${reg.url}/cli
    plain_http: true
    username: \${REG_USER}
    password_env: REG_TOKEN
hosts:
  h1: { local: true }
jobs:
  publish:
    artifacts: { app: { path: ./build/app.bin } }
    actions:
      - push: { registry: prod, artifact: app, name: app, tag: v1.0.0 }
  deploy:
    actions:
      - pull: { registry: prod, name: app, tag: v1.0.0, to: "${dir}/deployed/app.bin" }
plans:
  release:
    steps:
      - { name: publish, job: publish, targets: localhost }
      - { name: deploy, job: deploy, targets: h1 }
`,
    );
    const watch = watchOras();
    const run = startCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], {
      cwd: dir,
      env: { REG_USER: USER, REG_TOKEN: PASSWORD },
    });
    const r = await run.done;
    const procs = await watch.stop();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'deployed/app.bin'), 'utf8')).toBe('app from plan\n');
    expect(procs.length).toBeGreaterThan(0);
    const audit = readdirSync(join(dir, '.hades/runs'))
      .map((f) => readFileSync(join(dir, '.hades/runs', f), 'utf8'))
      .join('\n');
    for (const text of [r.stdout, r.stderr, audit, ...procs.map((p) => p.argv.join(' ') + p.environ)]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(B64);
    }

    const bad = await startCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache2')], {
      cwd: dir,
      env: { REG_USER: USER, REG_TOKEN: 'not-the-password' },
    }).done;
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toMatch(/authentication failed for registry "prod"/);
    expect(bad.stdout + bad.stderr).not.toContain('not-the-password');
    expect(bad.stdout + bad.stderr).not.toMatch(/not found/);
    const audits = readdirSync(join(dir, '.hades/runs'))
      .map((f) => readFileSync(join(dir, '.hades/runs', f), 'utf8'))
      .join('\n');
    expect(audits).not.toContain('not-the-password');
    expect(existsSync(join(dir, 'cache2/blobs'))).toBe(false);
  });

  it('TLS: a self-signed registry works with insecure: true and fails clearly with insecure: false', async () => {
    const tls = await startRegistry({ tls: true, auth: { user: USER, password: PASSWORD } });
    try {
      const env = { REG_TOKEN: PASSWORD };
      const ok = oci({ plainHttp: false, insecure: true, username: USER, passwordEnv: 'REG_TOKEN' }, env, {}, `${tls.url}/secure`);
      const pushed = await ok.push('app', 'v1', { path: file('over tls\n') });
      expect((await bytes(await ok.open(await ok.resolve('app', { tag: 'v1' })))).toString()).toBe('over tls\n');
      const copy = oci({ plainHttp: false, insecure: true, username: USER, passwordEnv: 'REG_TOKEN' }, env, {}, `${tls.url}/copy`);
      expect((await ok.copyTo(copy, 'app', 'v1')).descriptor.manifestDigest).toBe(pushed.descriptor.manifestDigest);

      const strict = oci({ plainHttp: false, insecure: false, username: USER, passwordEnv: 'REG_TOKEN' }, env, {}, `${tls.url}/secure`);
      const e = await rejection(strict.resolve('app', { tag: 'v1' }));
      expect((e as OciRegistryError).kind).toBe('network');
      expect(e.message).toMatch(/x509: certificate signed by unknown authority/);
      expect(e.message).toContain("its TLS certificate does not verify: install the registry's CA");
    } finally {
      await tls.stop();
    }
  });
});
