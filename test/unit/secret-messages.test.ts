/**
 * Secrets in error messages: a docker config that is not valid JSON must be reported without
 * quoting it — Node's JSON.parse messages show a slice of the text around the error, which
 * can be the base64 user:password of an `auths` entry (pull via: host reads that file).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registryCredentials } from '../../src/registry/oci/blob-url.js';
import { openOciRegistry } from '../../src/registry/oci/registry.js';

const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const tmp = mkdtempSync(join(tmpdir(), 'hades-secret-msg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('credential files in error messages', () => {
  it('a malformed registry_config is named, its content (a credential) is not quoted', () => {
    const secret = Buffer.from('deploy:hunter2-very-secret').toString('base64');
    const file = join(tmp, 'config.json');
    // An unquoted value: Node 20 says `Unexpected token 'Z', ..."{"auth":ZGVwbG95On"... is not valid JSON`.
    writeFileSync(file, `{"auths":{"reg.example:5000":{"auth":${secret}}}}`);
    const reg = openOciRegistry(
      { name: 'prod', type: 'oci', url: 'reg.example:5000/team', plainHttp: true, insecure: false, registryConfig: file, pos },
      { env: { HOME: tmp } },
    );
    let message = '';
    try {
      registryCredentials(reg);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(`cannot read ${file}`);
    expect(message).toContain('not valid JSON');
    expect(message).not.toContain(secret.slice(0, 8));
  });
});
