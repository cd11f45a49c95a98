/**
 * `plan --check` and the run agree on a destination in a sticky world-writable directory that
 * another user created first with the right bytes: the check says "would replace" (not
 * "unchanged"), without reading the file's bytes, and the run replaces it with a file of its
 * own. The built CLI on a local host (root), the other user is uid 65534.
 */
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { jsonEvents, project, runCli } from '../helpers/cli.js';

it("a file another user planted in a sticky directory: --check would replace it, the run replaces it (it is root's after)", async () => {
  const dir = project({ 'files/app.conf': 'a=1\n' });
  const tmp = join(dir, 'sticky');
  mkdirSync(tmp);
  chmodSync(dir, 0o755);
  chmodSync(tmp, 0o1777);
  const dst = join(tmp, 'app.conf');
  writeFileSync(dst, 'a=1\n');
  chmodSync(dst, 0o644);
  chownSync(dst, 65534, 65534);
  writeFileSync(
    join(dir, 'hadesfile.yaml'),
    `hosts:
  h: { local: true }
jobs:
  j:
    actions:
      - copy: { src: files/app.conf, dst: "${dst}", mode: 0644 }
plans:
  p:
    steps:
      - { name: s, job: j, targets: h }
`,
  );
  const check = await runCli(['plan', 'p', '--check', '--output', 'json'], { cwd: dir });
  const change = jsonEvents(check.stdout).find((e) => e.type === 'check.change');
  expect(change?.status, check.stdout + check.stderr).toBe('replace');
  expect(change?.message).toContain('world-writable directory');
  expect(statSync(dst).uid).toBe(65534);
  const run = await runCli(['plan', 'p', '--no-lock', '--output', 'json'], { cwd: dir });
  expect(
    jsonEvents(run.stdout)
      .filter((e) => e.type === 'action.end')
      .map((e) => e.status),
  ).toEqual(['changed']);
  expect(statSync(dst).uid).toBe(0);
});
