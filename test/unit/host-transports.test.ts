/**
 * HostTransports: the one place that picks local vs SSH for a host (the CLI and the pool
 * both go through it), with local commands run in the hadesfile's directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HostSpec } from '../../src/config/model.js';
import { HostTransports } from '../../src/transport/hosts.js';
import { LocalTransport } from '../../src/transport/local.js';
import { TransportPool } from '../../src/transport/pool.js';
import type { Transport } from '../../src/transport/types.js';

const spec = (name: string, local: boolean): HostSpec => ({
  name,
  addr: local ? 'localhost' : '10.0.0.9',
  local,
  order: 0,
  pos: { file: 'x', line: 1, col: 1 },
});

describe('HostTransports', () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'hades-hosts-')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a local host, and a name the inventory does not know, run locally in localCwd, one transport per name', async () => {
    const hosts = new HostTransports(dir);
    const t = hosts.get('here', spec('here', true));
    expect(t).toBeInstanceOf(LocalTransport);
    expect(hosts.get('here', spec('here', true))).toBe(t);
    expect((await t.exec('pwd')).stdout).toBe(`${dir}\n`);
    const unknown = hosts.get('nowhere', undefined);
    expect(unknown).toBeInstanceOf(LocalTransport);
    expect(unknown).not.toBe(t);
    expect((await unknown.exec('pwd')).stdout).toBe(`${dir}\n`);
  });

  it('an SSH host goes to the SSH side; without one it is an error, not a local run', () => {
    const seen: string[] = [];
    const fake = { name: 'web' } as Transport;
    const hosts = new HostTransports(dir, (s) => {
      seen.push(s.name);
      return fake;
    });
    expect(hosts.get('web', spec('web', false))).toBe(fake);
    expect(seen).toEqual(['web']);
    expect(() => new HostTransports(dir).get('web', spec('web', false))).toThrow('web: an SSH host, but this run opened no SSH pool');
  });

  it("the pool's local hosts run in its localCwd (the CLI passes the hadesfile's directory)", async () => {
    const pool = new TransportPool({ hosts: new Map(), knownHostsFiles: [], sshConfigPath: path.join(dir, 'no-config'), localCwd: dir });
    const t = pool.get(spec('here', true));
    expect(t).toBe(pool.hosts.get('here', spec('here', true)));
    expect((await t.exec('pwd')).stdout).toBe(`${dir}\n`);
    await pool.closeAll();
  });
});
