/** Every example loads and validates; the local-only ones also plan (dry-run) and run. */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';

const dir = join(ROOT, 'examples');
const entries = readdirSync(dir)
  .filter((f) => !f.startsWith('.') && (f.endsWith('.yaml') || (statSync(join(dir, f)).isDirectory() && f !== 'files')))
  .map((f) => join('examples', f));

describe('examples', () => {
  it('there are several', () => {
    expect(entries.length).toBeGreaterThanOrEqual(6);
  });

  it.each(entries)('%s validates', async (f) => {
    const r = await runCli(['validate', '-f', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.each([
    ['examples/canary-rollout.yaml', 'release', ['-e', 'VERSION=1.4.2']],
    ['examples/guards-and-become.yaml', 'tune', []],
    ['examples/jump-hosts.yaml', 'hello', []],
    ['examples/split-inventory', 'check', []],
  ])('%s plans (dry-run)', async (f, plan, extra) => {
    const r = await runCli(['plan', plan, '-f', f, '--dry-run', ...extra]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.each([
    ['examples/local-basics.yaml', 'basics', []],
    ['examples/env-contracts.yaml', 'ship', ['-e', 'API_TOKEN=abc123xyz']],
  ])('%s runs', async (f, plan, extra) => {
    const r = await runCli(['plan', plan, '-f', f, '--output', 'plain', '--log-dir', mkdtempSync(join(tmpdir(), 'hades-log-')), ...extra]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toContain('abc123xyz');
  });
});
