/**
 * Mirrors and environment credentials of `oci` registries, without a registry: the repository
 * mapping (mirror prefix + the origin's repository path), which credentials each endpoint gets,
 * and $HADES_REGISTRY_AUTH parsing (errors never echo the value).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { UserError } from '../../src/errors.js';
import { mirrorAuth, resolveOciAuth } from '../../src/registry/oci/auth.js';
import { registryAuthFromEnv, registryAuthSecrets } from '../../src/registry/oci/env-auth.js';
import { mirrorRepo, viaMirrors, type OciEndpoint } from '../../src/registry/oci/mirrors.js';
import { OciSettings } from '../../src/registry/oci/settings.js';
import { loadHadesfile } from '../helpers/load.js';

const pos = { file: 'hadesfile.yaml', line: 3, col: 5 };
const spec = (over: Partial<OciRegistrySpec> = {}): OciRegistrySpec => ({
  name: 'prod',
  type: 'oci',
  url: 'reg.example.com:5000/team',
  plainHttp: true,
  insecure: false,
  pos,
  ...over,
});
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('mirror repository mapping', () => {
  it('the loader reads mirrors in order (absent: none)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-mirrors-'));
    try {
      writeFileSync(
        join(dir, 'hadesfile.yaml'),
        'registries:\n  prod: {type: oci, url: reg:5000/team, mirrors: [m1:5001, "${M}/proxy"]}\n  plain: {type: oci, url: reg:5000/x}\n',
      );
      const hf = loadHadesfile({ cwd: dir });
      expect(hf.registries.get('prod')).toMatchObject({ type: 'oci', mirrors: ['m1:5001', '${M}/proxy'] });
      expect(hf.registries.get('plain')).not.toHaveProperty('mirrors');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('appends the origin repository path (prefix + name) below the mirror prefix', () => {
    expect(mirrorRepo('cache:5001', 'reg:5000/team', 'app')).toBe('cache:5001/team/app');
    expect(mirrorRepo('cache:5001/proxy', 'reg:5000/team', 'app')).toBe('cache:5001/proxy/team/app');
    expect(mirrorRepo('cache:5001/proxy/hub', 'reg:5000/team/sub', 'web/app')).toBe('cache:5001/proxy/hub/team/sub/web/app');
    expect(mirrorRepo('cache:5001', 'reg:5000', 'app')).toBe('cache:5001/app');
    expect(mirrorRepo('cache:5001/proxy', 'reg:5000', 'app')).toBe('cache:5001/proxy/app');
  });

  it('settings build one endpoint per mirror, in order, with the registry connection flags, then the origin', () => {
    const s = new OciSettings(spec({ mirrors: ['${MIRROR}/proxy', 'm2.example.com'], insecure: true }), { env: { MIRROR: 'm1:5001' } });
    expect(s.mirrors.map((m) => m.label)).toEqual(['mirror m1:5001/proxy', 'mirror m2.example.com']);
    expect(s.mirrors.map((m) => m.repo('app'))).toEqual(['m1:5001/proxy/team/app', 'm2.example.com/team/app']);
    expect(s.origin.repo('app')).toBe('reg.example.com:5000/team/app');
    expect(s.mirrors[0]!.call(['blob', 'fetch'], ['X'], { what: 'w' }).args).toEqual([
      'blob',
      'fetch',
      '--no-tty',
      '--plain-http',
      '--insecure',
      'X',
    ]);
  });

  it('a mirror with an unset ${VAR} or an invalid url is a user error at the registry', () => {
    const e = thrown(() => new OciSettings(spec({ mirrors: ['${NOPE}'] }), { env: {} }));
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).problems[0]).toEqual({
      message: 'registry "prod": mirror uses ${NOPE}, which is not set in the environment',
      pos,
      hint: 'export NOPE=…',
    });
    const e2 = thrown(() => new OciSettings(spec({ mirrors: ['${M}'] }), { env: { M: 'http://m:1' } }));
    expect((e2 as UserError).problems[0]!.message).toBe(
      'registry "prod": invalid mirror "http://m:1": it must not include a scheme (like https://)',
    );
  });

  it('viaMirrors: mirrors in order, each failure reported with the next endpoint, the origin last; its error is the error', async () => {
    const ep = (label: string) => ({ label }) as OciEndpoint;
    const warnings: string[] = [];
    const chain = {
      name: 'prod',
      mirrors: [ep('mirror a'), ep('mirror b')],
      origin: ep('origin o'),
      warn: (m: string) => warnings.push(m),
    };
    const tried: string[] = [];
    const got = await viaMirrors(chain, 'blob x', async (e) => {
      tried.push(e.label);
      if (e.label !== 'mirror b') throw new Error(`${e.label} is down`);
      return 42;
    });
    expect(got).toBe(42);
    expect(tried).toEqual(['mirror a', 'mirror b']);
    expect(warnings).toEqual(['registry "prod": mirror a failed (blob x): mirror a is down; using mirror b']);
    warnings.length = 0;
    await expect(
      viaMirrors(chain, 'blob x', async (e) => {
        throw new Error(`${e.label} is down`);
      }),
    ).rejects.toThrow('origin o is down');
    expect(warnings).toEqual([
      'registry "prod": mirror a failed (blob x): mirror a is down; using mirror b',
      'registry "prod": mirror b failed (blob x): mirror b is down; using origin o',
    ]);
  });
});

describe('credentials of mirrors and from $HADES_REGISTRY_AUTH', () => {
  const AUTH = JSON.stringify({
    'reg.example.com:5000': { username: 'ci', password: 'origin-secret' },
    'm1:5001': { username: 'cache', password: 'mirror-secret' },
  });

  it('an entry for the host is used when the registry declares no credentials; declared ones win', () => {
    const env = { HADES_REGISTRY_AUTH: AUTH, TOKEN: 'declared-secret' };
    expect(resolveOciAuth(spec(), env)).toEqual({
      kind: 'password',
      username: 'ci',
      password: 'origin-secret',
      passwordEnv: 'HADES_REGISTRY_AUTH',
      fromMap: { host: 'reg.example.com:5000' },
    });
    expect(resolveOciAuth(spec({ username: 'me', passwordEnv: 'TOKEN' }), env)).toMatchObject({
      username: 'me',
      password: 'declared-secret',
    });
    expect(resolveOciAuth(spec({ url: 'other:5000/team' }), env)).toEqual({ kind: 'default' });
  });

  it("a mirror never gets the origin's password: its own entry, else the docker config, else the defaults", () => {
    const env = { HADES_REGISTRY_AUTH: AUTH };
    const origin = { kind: 'password' as const, username: 'me', password: 'p', passwordEnv: 'TOKEN' };
    expect(mirrorAuth('m1:5001', origin, env)).toMatchObject({ kind: 'password', username: 'cache', password: 'mirror-secret' });
    expect(mirrorAuth('m2:5001', origin, env)).toEqual({ kind: 'default' });
    expect(mirrorAuth('m2:5001', { kind: 'config', path: '/x/config.json' }, env)).toEqual({ kind: 'config', path: '/x/config.json' });
    const s = new OciSettings(spec({ username: 'me', passwordEnv: 'TOKEN', mirrors: ['m2:5001', 'm1:5001/proxy'] }), {
      env: { ...env, TOKEN: 'origin-pw' },
    });
    expect(s.mirrors[0]!.call(['manifest', 'fetch'], ['X'], { what: 'w' })).toEqual({
      args: ['manifest', 'fetch', '--no-tty', '--plain-http', 'X'],
      timeoutMs: s.timeoutMs,
      what: 'w',
    });
    expect(s.mirrors[1]!.call(['manifest', 'fetch'], ['X'], { what: 'w' })).toMatchObject({
      args: ['manifest', 'fetch', '--no-tty', '--plain-http', '-u', 'cache', '--password-stdin', 'X'],
      input: 'mirror-secret',
    });
    expect(s.origin.call(['manifest', 'fetch'], ['X'], { what: 'w' })).toMatchObject({ input: 'origin-pw' });
  });

  it('a malformed value is a user error with a hint that never shows the value', () => {
    const cases: Array<[string, string]> = [
      ['{"reg:5000": {"username": "u", "password": "s3cr3t-x"', 'HADES_REGISTRY_AUTH is not valid JSON'],
      ['["s3cr3t-x"]', 'HADES_REGISTRY_AUTH must be a JSON object keyed by registry host[:port]'],
      [
        '{"https://reg": {"username": "u", "password": "s3cr3t-x"}}',
        'HADES_REGISTRY_AUTH has an invalid key "https://reg": has a path (give host[:port] only)',
      ],
      [
        '{"reg:5000/team": {"username": "u", "password": "s3cr3t-x"}}',
        'HADES_REGISTRY_AUTH has an invalid key "reg:5000/team": has a path (give host[:port] only)',
      ],
      [
        '{"reg_x": {"username": "u", "password": "s3cr3t-x"}}',
        'HADES_REGISTRY_AUTH has an invalid key "reg_x": "reg_x" is not a valid registry host[:port]',
      ],
      ['{"reg:5000": "s3cr3t-x"}', 'HADES_REGISTRY_AUTH entry "reg:5000" must be an object'],
      ['{"reg:5000": {"user": "u", "password": "s3cr3t-x"}}', 'HADES_REGISTRY_AUTH entry "reg:5000" has an unknown key "user"'],
      ['{"reg:5000": {"password": "s3cr3t-x"}}', 'HADES_REGISTRY_AUTH entry "reg:5000" needs a non-empty "username"'],
      ['{"reg:5000": {"username": "u", "password": ""}}', 'HADES_REGISTRY_AUTH entry "reg:5000" needs a non-empty "password"'],
    ];
    for (const [value, message] of cases) {
      const e = thrown(() => registryAuthFromEnv({ HADES_REGISTRY_AUTH: value }));
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).problems[0]!.message).toBe(message);
      expect((e as UserError).problems[0]!.hint).toBe(
        `write HADES_REGISTRY_AUTH='{"host[:port]": {"username": "…", "password": "…"}, …}' (JSON; one entry per registry host)`,
      );
      expect(JSON.stringify((e as UserError).problems)).not.toContain('s3cr3t-x');
    }
    expect(registryAuthFromEnv({}).size).toBe(0);
    expect(registryAuthFromEnv({ HADES_REGISTRY_AUTH: '' }).size).toBe(0);
  });

  it('its secrets for the Redactor: the whole value, each password and its base64 user:password', () => {
    expect(registryAuthSecrets({ HADES_REGISTRY_AUTH: AUTH })).toEqual([
      AUTH,
      'origin-secret',
      Buffer.from('ci:origin-secret').toString('base64'),
      'mirror-secret',
      Buffer.from('cache:mirror-secret').toString('base64'),
    ]);
    expect(registryAuthSecrets({ HADES_REGISTRY_AUTH: 'not json' })).toEqual(['not json']);
    expect(registryAuthSecrets({})).toEqual([]);
  });
});
