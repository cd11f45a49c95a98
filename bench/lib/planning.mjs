/**
 * Cold-process cost of the commands that touch no host: `hades validate` on the repo's
 * example, and validate / plan --dry-run on a generated hadesfile with many hosts.
 * Every measurement is a new `node` process (wall time from spawn to exit).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, run, stats } from './util.mjs';

export function bigHadesfile(n) {
  const lines = ['hosts:'];
  for (let i = 0; i < n; i++) lines.push(`  app-${i + 1}: { addr: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}, user: deploy }`);
  lines.push('targets:', `  web: [${Array.from({ length: n }, (_, i) => `app-${i + 1}`).join(', ')}]`);
  lines.push(
    'registries:',
    '  prod: { type: filesystem, path: /var/hades/artifacts }',
    'jobs:',
    '  deploy:',
    '    env:',
    '      VERSION:',
    '    guard:',
    '      if: test -d /opt',
    '    actions:',
    '      - mkdir: { path: "/opt/app/releases/${VERSION}", mode: 0755 }',
    '      - pull: { registry: prod, name: app, tag: "${VERSION}", to: "/opt/app/releases/${VERSION}/app", mode: 0755 }',
    '      - template: { src: app.conf.njk, dst: /opt/app/app.conf, mode: 0640 }',
    '      - name: restart',
    '        run: ln -sfn "/opt/app/releases/$VERSION" /opt/app/current && echo restarted',
    'plans:',
    '  release:',
    '    env: { VERSION: v1.2.3 }',
    '    steps:',
    '      - { name: canary, job: deploy, targets: web, limit: 1 }',
    '      - { name: rollout, job: deploy, targets: web, parallelism: "10%" }',
    '',
  );
  return lines.join('\n');
}

export async function planningBench({ hosts = 2000, runs = 5, cli = CLI, log = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hades-bench-plan-'));
  try {
    mkdirSync(join(dir, 'home'));
    const file = join(dir, 'hadesfile.yaml');
    writeFileSync(file, bigHadesfile(hosts));
    writeFileSync(join(dir, 'app.conf.njk'), 'host={{ host.name }} addr={{ host.addr }} version={{ env.VERSION }}\n');
    const env = { ...process.env, HOME: join(dir, 'home'), NO_COLOR: '1' };
    const cases = [
      {
        name: '`hades validate` (hadesfile.example.yaml)',
        args: ['validate', '-f', join(ROOT, 'hadesfile.example.yaml')],
        cwd: ROOT,
        target: 300,
      },
      { name: `\`hades validate\` (${hosts} hosts)`, args: ['validate', '-f', file], cwd: dir },
      { name: `\`hades validate release\` (${hosts} hosts: env + plan)`, args: ['validate', 'release', '-f', file], cwd: dir },
      {
        name: `\`hades plan release --dry-run\` (${hosts} hosts)`,
        args: ['plan', 'release', '--dry-run', '-f', file],
        cwd: dir,
        target: 1500,
      },
      {
        name: `\`hades plan release --dry-run -o json\` (${hosts} hosts)`,
        args: ['plan', 'release', '--dry-run', '-o', 'json', '-f', file],
        cwd: dir,
      },
    ];
    const out = [];
    for (const c of cases) {
      // One untimed run first (page cache), then `runs` cold processes.
      const warm = await run(process.execPath, [cli, ...c.args], { cwd: c.cwd, env });
      if (warm.code !== 0) throw new Error(`${c.args.join(' ')} exited ${warm.code}: ${warm.stderr}`);
      const ms = [];
      for (let i = 0; i < runs; i++) {
        const r = await run(process.execPath, [cli, ...c.args], { cwd: c.cwd, env });
        if (r.code !== 0) throw new Error(`${c.args.join(' ')} exited ${r.code}: ${r.stderr}`);
        ms.push(r.ms);
      }
      const s = stats(ms);
      log(`  ${c.name}: median ${Math.round(s.median)} ms (${Math.round(s.min)}–${Math.round(s.max)}), output ${warm.stdout.length} bytes`);
      out.push({ ...c, stats: s, outputBytes: warm.stdout.length });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
