/**
 * pull `via: host`: the Authorization header the orchestrator obtains for the hosts
 * (src/registry/oci/blob-url.ts), against a tiny real HTTP registry front + token server on
 * 127.0.0.1 started here: Bearer challenge → token for repository:<repo>:pull (asked with
 * the registry's Basic credentials), reuse while valid, Basic challenge → the credentials,
 * anonymous → no header. (The real docker-registry speaks Basic only: the Basic path runs
 * against it in test/integration/pull-via-host.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';
import type { ArtifactDescriptor } from '../../src/registry/types.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const DIGEST = `sha256:${'c'.repeat(64)}`;

function desc(name: string): ArtifactDescriptor {
  return {
    registry: 'prod',
    name,
    manifestDigest: `sha256:${'d'.repeat(64)}`,
    artifactType: 'x',
    annotations: {},
    layer: { digest: DIGEST, size: 5, mediaType: 'application/octet-stream', title: 'app', directory: false },
  };
}

describe('the Authorization header for hosts (real HTTP on 127.0.0.1)', () => {
  let srv: http.Server;
  let base = '';
  let mode: 'bearer' | 'basic' | 'open' = 'bearer';
  let expiresIn: number | undefined = 300;
  const tokenRequests: Array<{ query: Record<string, string>; auth?: string }> = [];
  let tmp: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hades-host-auth-'));
    srv = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', base);
      if (u.pathname === '/v2/') {
        if (mode === 'open') return void res.writeHead(200).end('{}');
        const challenge = mode === 'bearer' ? `Bearer realm="${base}/token",service="test-registry"` : 'Basic realm="test"';
        return void res.writeHead(401, { 'www-authenticate': challenge }).end();
      }
      if (u.pathname === '/token') {
        tokenRequests.push({
          query: Object.fromEntries(u.searchParams),
          ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
        });
        if (req.headers.authorization === `Basic ${Buffer.from('alice:wrong').toString('base64')}`) return void res.writeHead(401).end();
        const n = tokenRequests.length;
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ token: `tok-${n}.sig`, ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}) }));
      }
      res.writeHead(404).end();
    });
    srv.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => srv.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });

  const reg = (over: Partial<OciRegistrySpec> = {}, env: Record<string, string> = {}) =>
    openOciRegistry(
      { name: 'prod', type: 'oci', url: `${base.replace('http://', '')}/team`, plainHttp: true, insecure: false, pos, ...over },
      { env: { HOME: tmp, ...env } },
    );

  it('the blob URL follows plain_http and the url prefix', () => {
    expect(reg().hostFetch(desc('app')).url).toBe(`${base}/v2/team/app/blobs/${DIGEST}`);
    expect(reg({ plainHttp: false }).hostFetch(desc('app')).url).toBe(`${base.replace('http:', 'https:')}/v2/team/app/blobs/${DIGEST}`);
  });

  it('Bearer challenge: a pull token for repository:<repo>:pull, asked with the Basic credentials, reused while valid', async () => {
    mode = 'bearer';
    expiresIn = 300;
    tokenRequests.length = 0;
    const r = reg({ username: 'alice', passwordEnv: 'PW' }, { PW: 's3cret' });
    const [a, b] = await Promise.all([r.hostFetch(desc('app')).authorization(), r.hostFetch(desc('app')).authorization()]);
    expect(a).toBe('Bearer tok-1.sig');
    expect(b).toBe('Bearer tok-1.sig');
    expect(await r.hostFetch(desc('app')).authorization()).toBe('Bearer tok-1.sig');
    expect(tokenRequests).toEqual([
      {
        query: { service: 'test-registry', scope: 'repository:team/app:pull' },
        auth: `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
      },
    ]);
    // another name: its own scope
    expect(await r.hostFetch(desc('web/site')).authorization()).toBe('Bearer tok-2.sig');
    expect(tokenRequests[1]!.query.scope).toBe('repository:team/web/site:pull');
  });

  it('a token about to expire (or without expires_in: 60 s, the spec default) is asked for again', async () => {
    mode = 'bearer';
    expiresIn = 10; // less than the 15 s margin: never reused
    tokenRequests.length = 0;
    const r = reg();
    expect(await r.hostFetch(desc('app')).authorization()).toBe('Bearer tok-1.sig');
    expect(await r.hostFetch(desc('app')).authorization()).toBe('Bearer tok-2.sig');
    expect(tokenRequests.map((t) => t.auth)).toEqual([undefined, undefined]); // no credentials: anonymous token
    expiresIn = undefined;
    expect(await r.hostFetch(desc('app')).authorization()).toBe('Bearer tok-3.sig');
    expect(await r.hostFetch(desc('app')).authorization()).toBe('Bearer tok-3.sig');
  });

  it('refused credentials at the token server: an error without the secret', async () => {
    mode = 'bearer';
    const e = await reg({ username: 'alice', passwordEnv: 'PW' }, { PW: 'wrong' })
      .hostFetch(desc('app'))
      .authorization()
      .then(
        () => null,
        (x: Error) => x,
      );
    expect(e?.message).toBe(
      `registry "prod": token for repository:team/app:pull: the token server ${base} refused the credentials (HTTP 401)`,
    );
    expect(e?.message).not.toContain(Buffer.from('alice:wrong').toString('base64'));
  });

  it('Basic challenge: the registry credentials (username + password_env, or registry_config auths); none → a clear error', async () => {
    mode = 'basic';
    expect(await reg({ username: 'alice', passwordEnv: 'PW' }, { PW: 's3cret' }).hostFetch(desc('app')).authorization()).toBe(
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
    );
    const cfg = join(tmp, 'config.json');
    const host = base.replace('http://', '');
    writeFileSync(cfg, JSON.stringify({ auths: { [host]: { auth: Buffer.from('bob:pw2').toString('base64') } } }));
    expect(await reg({ registryConfig: cfg }).hostFetch(desc('app')).authorization()).toBe(
      `Basic ${Buffer.from('bob:pw2').toString('base64')}`,
    );
    writeFileSync(cfg, JSON.stringify({ credHelpers: { [host]: 'pass' } }));
    await expect(reg({ registryConfig: cfg }).hostFetch(desc('app')).authorization()).rejects.toThrow(
      `registry "prod": the credentials for ${host} in ${cfg} are kept by a credential helper, which pull via: host cannot use`,
    );
    await expect(reg().hostFetch(desc('app')).authorization()).rejects.toThrow(
      `registry "prod": ${base} needs credentials (Basic auth) and none are configured`,
    );
  });

  it('an open registry: no header', async () => {
    mode = 'open';
    expect(await reg({ username: 'alice', passwordEnv: 'PW' }, { PW: 's3cret' }).hostFetch(desc('app')).authorization()).toBeUndefined();
  });
});
