/**
 * The pure parts of the oci registry: classifying oras's error text (the messages below are the
 * real ones of oras 1.2.0 against Debian's docker-registry 2.8, captured on the test machine),
 * redaction, version checks, and the checks done when an `oci` registry is opened.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { UserError } from '../../src/errors.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import { authArgs, resolveOciAuth } from '../../src/registry/oci/auth.js';
import {
  classifyOrasError,
  compareVersions,
  isOrasOwnFailure,
  isReadOnlyCall,
  OciRegistryError,
  orasMessage,
  orasVersion,
  OrasRunner,
  redact,
} from '../../src/registry/oci/oras.js';
import { ArtifactNotFound } from '../../src/registry/types.js';
import { IntegrityError } from '../../src/registry/digest.js';
import { RunError } from '../../src/errors.js';

const REAL: Array<[string, ReturnType<typeof classifyOrasError>]> = [
  // absent tag / repository / digest
  [
    'Error response from registry: failed to fetch the content of "127.0.0.1:5099/t/a:nope": 127.0.0.1:5099/t/a:nope: not found',
    'not-found',
  ],
  ['Error response from registry: failed to resolve digest: 127.0.0.1:5099/t/a:nope: not found', 'not-found'],
  ['Error response from registry: name unknown: repository name not known to registry: map[name:t/zzz]', 'not-found'],
  [
    'Error response from registry: 127.0.0.1:5099/t/a@sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be04: not found',
    'not-found',
  ],
  // authentication
  [
    'Error: failed to fetch the content of "127.0.0.1:5098/t/a:v1": basic credential not found\nPlease check whether the registry credential stored in the authentication file at "/root/.docker/config.json" is correct',
    'auth',
  ],
  [
    'Error response from registry: failed to fetch the content of "127.0.0.1:5098/t/a:nope": unauthorized: authentication required: [map[Action:pull Class: Name:t/a Type:repository]]',
    'auth',
  ],
  ['Error response from registry: failed to validate the credentials for 127.0.0.1:5098: unauthorized: authentication required', 'auth'],
  ['Error: could not list repositories for "127.0.0.1:5098" with prefix "t/"\nbasic credential not found', 'auth'],
  ['Error response from registry: denied: requested access to the resource is denied', 'auth'],
  // network
  [
    'Error: failed to fetch the content of "127.0.0.1:5097/t/a:v1": Get "http://127.0.0.1:5097/v2/t/a/manifests/v1": dial tcp 127.0.0.1:5097: connect: connection refused',
    'network',
  ],
  [
    'Error: failed to fetch the content of "127.0.0.1:5099/t/a:v1": Get "https://127.0.0.1:5099/v2/t/a/manifests/v1": http: server gave HTTP response to HTTPS client',
    'network',
  ],
  [
    'Error: failed to fetch the content of "nonexistent.invalid/t/a:v1": Get "http://nonexistent.invalid/v2/t/a/manifests/v1": dial tcp: lookup nonexistent.invalid on 10.255.255.53:53: no such host',
    'network',
  ],
  [
    'Error: failed to fetch the content of "127.0.0.1:5096/t/a:v1": Get "https://127.0.0.1:5096/v2/t/a/manifests/v1": tls: failed to verify certificate: x509: certificate signed by unknown authority',
    'network',
  ],
  [
    'Error response from registry: recognizable error message not found: GET "http://127.0.0.1:5096/v2/t/a/manifests/v1": response status code 400: Bad Request',
    'network',
  ],
  // integrity
  ['Error: mismatched digest', 'integrity'],
  [
    'Error: GET "http://127.0.0.1:5099/v2/t/big/blobs/sha256:928656bd5499b8ed2bf754c3b6f3490fa1d05fd8c1fa71d33ff879f57080cc56": mismatch Content-Length',
    'integrity',
  ],
  // anything else
  ['Error: --format, --descriptor cannot be used at the same time', 'other'],
];

describe('classifyOrasError', () => {
  it.each(REAL)('%s → %s', (stderr, kind) => {
    expect(classifyOrasError(stderr)).toBe(kind);
  });

  it('orasMessage drops the "Error:" prefixes and the advice about ~/.docker', () => {
    expect(orasMessage(REAL[4]![0])).toBe('failed to fetch the content of "127.0.0.1:5098/t/a:v1": basic credential not found');
    expect(orasMessage('Error response from registry: x\n\n')).toBe('x');
  });

  it('redact replaces every occurrence of each secret', () => {
    expect(redact('pw=hunter2 and hunter2; aHVudGVyMg==', ['hunter2', 'aHVudGVyMg=='])).toBe('pw=*** and ***; ***');
    expect(redact('nothing', [''])).toBe('nothing');
  });
});

describe('isOrasOwnFailure: whose error a failed read reports', () => {
  const D = `sha256:${'a'.repeat(64)}`;
  it.each<[string, unknown, boolean]>([
    ['not found', new ArtifactNotFound('r', 'app:v1'), true],
    ['auth', new OciRegistryError('x', 'auth', 'r'), true],
    ['network', new OciRegistryError('x', 'network', 'r'), true],
    ['timeout', new OciRegistryError('x', 'timeout', 'r'), true],
    ['oras saw a digest mismatch', new OciRegistryError('x', 'integrity', 'r'), false],
    ['unclassified oras failure', new OciRegistryError('x', 'other', 'r'), false],
    ['our own integrity error', new IntegrityError('x', { digest: D }, { digest: D, size: 0 }), false],
    ['another run error', new RunError('x'), false],
    ['oras succeeded', null, false],
  ])('%s → %s', (_what, e, expected) => {
    expect(isOrasOwnFailure(e)).toBe(expected);
  });
});

describe('oras version checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hades-oras-version-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compares dotted versions', () => {
    expect(compareVersions('1.2.0', '1.1.0')).toBe(1);
    expect(compareVersions('1.1.0', '1.1.0')).toBe(0);
    expect(compareVersions('1.0.9', '1.1.0')).toBe(-1);
    expect(compareVersions('1.10.0', '1.9.3')).toBe(1);
  });

  it('a missing oras says how to install it', async () => {
    const r = await orasVersion(join(dir, 'no-such-oras'));
    expect('error' in r && r.error).toMatch(/oras CLI was not found at .*no-such-oras: install oras 1\.2\.0 or newer/);
  });

  it('an oras older than 1.2.0 is refused, naming the version and path', async () => {
    const old = join(dir, 'oras-old');
    writeFileSync(old, '#!/bin/sh\necho "Version:    1.1.0"\necho "Go version: go1.20"\n');
    chmodSync(old, 0o755);
    const r = await orasVersion(old);
    expect(r).toMatchObject({ version: '1.1.0', path: old });
    expect('error' in r && r.error).toMatch(/oras 1\.1\.0 at .* is older than the minimum 1\.2\.0: install/);
  });

  it('a binary that prints no version is refused', async () => {
    const bad = join(dir, 'oras-bad');
    writeFileSync(bad, '#!/bin/sh\necho boom >&2\nexit 3\n');
    chmodSync(bad, 0o755);
    const r = await orasVersion(bad);
    expect('error' in r && r.error).toMatch(/did not report a version \(exit 3: boom\)/);
  });
});

describe('the oras version check overlaps read-only calls, never writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hades-oras-overlap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * A fake oras: `version` takes 0.4 s (then says `version`) — or, with `waitForCall`, lasts
   * until another call has started (30 s at most); every other call logs when it starts and
   * ends, writes its shell's pid to LOG.pid and its sleep's to LOG.sleep.
   */
  function fake(name: string, version: string, callSeconds: number, waitForCall = false): { bin: string; log: string } {
    const bin = join(dir, name);
    const log = join(dir, `${name}.log`);
    const wait = waitForCall
      ? `i=0; while ! grep -v '^version-' '${log}' | grep -q -- '-start$' && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done`
      : 'sleep 0.4';
    writeFileSync(
      bin,
      `#!/bin/sh
if [ "$1" = version ]; then echo "version-start" >> '${log}'; ${wait}; echo "version-end" >> '${log}'; echo "Version:    ${version}"; exit 0; fi
echo $$ > '${log}.pid'; echo "$1-$2-start" >> '${log}'; sleep ${callSeconds} & echo $! > '${log}.sleep'; wait $!; echo "$1-$2-end" >> '${log}'; echo '{}'
`,
    );
    chmodSync(bin, 0o755);
    return { bin, log };
  }
  const runner = (bin: string) =>
    new OrasRunner({
      bin,
      registry: 'r',
      where: 'example.com',
      env: { PATH: process.env.PATH },
      secrets: [],
      authHint: '',
      plainHttp: false,
      insecure: false,
    });
  const events = (log: string) => readFileSync(log, 'utf8').trim().split('\n');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('classifies the read-only subcommands', () => {
    expect(['manifest fetch', 'repo tags', 'repo ls', 'blob fetch'].map((c) => isReadOnlyCall(c.split(' ')))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['cp', 'push', 'tag', 'manifest push', 'blob push', 'manifest delete'].map((c) => isReadOnlyCall(c.split(' ')))).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('a manifest fetch starts while `oras version` runs; its result comes after the check', async () => {
    // `oras version` ends only once the fetch has started (or after 30 s): a fetch that
    // waited for the check would start after version-end.
    const { bin, log } = fake('oras-ok', '1.2.0', 0, true);
    const out = await runner(bin).run({ args: ['manifest', 'fetch', 'x'], timeoutMs: 60_000, what: 'fetch' });
    expect(out.trim()).toBe('{}');
    const ev = events(log);
    expect(ev.indexOf('manifest-fetch-start')).toBeLessThan(ev.indexOf('version-end'));
  });

  it('a write (cp) starts only after the check passed', async () => {
    const { bin, log } = fake('oras-ok-cp', '1.2.0', 0);
    await runner(bin).run({ args: ['cp', 'a', 'b'], timeoutMs: 10_000, what: 'copy' });
    expect(events(log)).toEqual(['version-start', 'version-end', 'cp-a-start', 'cp-a-end']);
  });

  it('a too-old oras fails the overlapped call with the version error and kills it', async () => {
    // The call would last 300 s, beyond the test's timeout: the error must not wait for it.
    const { bin, log } = fake('oras-old-overlap', '1.1.0', 300);
    try {
      const e = await runner(bin)
        .run({ args: ['manifest', 'fetch', 'x'], timeoutMs: 600_000, what: 'fetch' })
        .then(
          () => null,
          (err: Error) => err,
        );
      expect(e?.message).toMatch(/oras 1\.1\.0 at .* is older than the minimum 1\.2\.0/);
      expect(events(log)).toContain('manifest-fetch-start');
      expect(events(log)).not.toContain('manifest-fetch-end');
      // ...and the call's process is gone (killed, not left running).
      const pid = Number(readFileSync(`${log}.pid`, 'utf8'));
      while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
      expect(events(log)).not.toContain('manifest-fetch-end');
    } finally {
      try {
        process.kill(Number(readFileSync(`${log}.sleep`, 'utf8')), 'SIGKILL'); // its orphaned sleep
      } catch {
        /* gone */
      }
    }
  });
});

describe('opening an oci registry', () => {
  const pos = { file: '/p/hadesfile.yaml', line: 4, col: 3 };
  const spec = (over: Partial<OciRegistrySpec> = {}): OciRegistrySpec => ({
    name: 'prod',
    type: 'oci',
    url: 'registry.example.com/team',
    plainHttp: false,
    insecure: false,
    pos,
    ...over,
  });
  const userError = (fn: () => unknown): UserError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error('expected a UserError');
  };

  it('expands ${VAR} in username from the environment; the password comes from password_env', () => {
    const auth = resolveOciAuth(spec({ username: '${REG_USER}', passwordEnv: 'REG_TOKEN' }), { REG_USER: 'alice', REG_TOKEN: 's3cret' });
    expect(auth).toEqual({ kind: 'password', username: 'alice', password: 's3cret', passwordEnv: 'REG_TOKEN' });
    // the password goes to stdin, never into argv
    expect(authArgs(auth)).toEqual({ args: ['-u', 'alice', '--password-stdin'], input: 's3cret' });
  });

  it.each([
    [{ username: '${REG_USER}', passwordEnv: 'REG_TOKEN' }, { REG_TOKEN: 'x' }, /username uses \$\{REG_USER\}, which is not set/],
    [{ username: 'alice', passwordEnv: 'REG_TOKEN' }, {}, /password_env REG_TOKEN is not set \(or empty\)/],
    [{ username: 'alice', passwordEnv: 'REG_TOKEN' }, { REG_TOKEN: '' }, /password_env REG_TOKEN is not set/],
    [{ username: 'alice' }, {}, /username is set but password_env is not/],
    [{ passwordEnv: 'REG_TOKEN' }, { REG_TOKEN: 'x' }, /password_env is set but username is not/],
    [
      { username: 'alice', passwordEnv: 'REG_TOKEN', registryConfig: '/nonexistent/config.json' },
      { REG_TOKEN: 'x' },
      /either username \+ password_env or registry_config/,
    ],
    [{ registryConfig: '/nonexistent/config.json' }, {}, /registry_config \/nonexistent\/config\.json does not exist/],
    [{ url: '${REG_HOST}/team' }, {}, /url uses \$\{REG_HOST\}, which is not set/],
    [
      { url: '${REG_HOST}/Team' },
      { REG_HOST: 'r.example.com' },
      /invalid url "r\.example\.com\/Team": path component "Team" must be lowercase/,
    ],
  ])('%j with env %j → %s', (over, env, re) => {
    const e = userError(() => openOciRegistry(spec(over as Partial<OciRegistrySpec>), { env }));
    expect(e.message).toMatch(re);
    expect(e.problems[0]!.pos).toEqual(pos);
    expect(e.message).toContain('registry "prod"');
  });

  it('no credentials → oras defaults (docker config); url may use ${VAR}', () => {
    const r = openOciRegistry(spec({ url: '${REG_HOST}/team' }), { env: { REG_HOST: '127.0.0.1:5000' } });
    expect(r.url).toBe('127.0.0.1:5000/team');
    expect(r.repo('app')).toBe('127.0.0.1:5000/team/app');
    expect(resolveOciAuth(spec(), {})).toEqual({ kind: 'default' });
  });

  it('bad timeouts from the environment are user errors', () => {
    expect(userError(() => openOciRegistry(spec(), { env: { HADES_OCI_TIMEOUT: 'soon' } })).message).toMatch(
      /HADES_OCI_TIMEOUT="soon" is not a duration/,
    );
  });
});
