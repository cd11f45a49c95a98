import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHadesfile } from '../helpers/load.js';

describe('artifact specs: platforms and config', () => {
  it('normalises platforms in order, reads a config file as bytes, stores an inline map as its JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hades-artspec-'));
    writeFileSync(join(dir, 'cfg.json'), '{ "a": 1 }\n');
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `jobs:
  build:
    artifacts:
      multi:
        platforms: { linux/arm64: ./b, linux/amd64: ./a }
        config: ./cfg.json
        config_media_type: application/vnd.acme.v1+json
      inline:
        path: ./c
        config: { replicas: 3, name: web }
    actions:
      - run: "true"
`,
    );
    const hf = loadHadesfile({ cwd: dir, files: ['hadesfile.yaml'] });
    const a = hf.jobs.get('build')!.artifacts;
    expect(a.multi!.path).toBe('');
    expect(a.multi!.platforms).toEqual([
      { platform: 'linux/arm64', path: join(dir, 'b') },
      { platform: 'linux/amd64', path: join(dir, 'a') },
    ]);
    expect(a.multi!.config!.data.toString()).toBe('{ "a": 1 }\n');
    expect(a.multi!.configMediaType).toBe('application/vnd.acme.v1+json');
    expect(a.inline!.config!.data.toString()).toBe('{"replicas":3,"name":"web"}');
    expect(a.inline!.configMediaType).toBeUndefined();
  });
});
