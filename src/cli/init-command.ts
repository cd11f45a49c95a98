/** `hades init [dir]`: a working starter project (runs locally, no servers needed). */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadSchema } from '../config/load.js';
import { EXIT, UserError } from '../errors.js';

export function starterFiles(project: string): Record<string, string> {
  const root = `/tmp/hades-${project.replace(/[^A-Za-z0-9_.-]/g, '-') || 'starter'}`;
  return {
    'hadesfile.yaml': `# yaml-language-server: $schema=./hadesfile.schema.json
# A starter project. It runs on this machine alone: the hosts are \`local: true\`.
# Replace them with real servers ({addr, user, identity_file}) when you are ready.
#
#   hades plan deploy --dry-run     # exactly what will run
#   hades plan deploy --yes         # run it (--yes approves the gate)

hosts:
  web-1: { local: true }
  web-2: { local: true }

targets:
  web: [web-1, web-2]

jobs:
  deploy:
    env:
      VERSION:
    actions:
      - mkdir: { path: "${root}/\${HADES_HOST_NAME}", mode: 0755 }
      - template:
          src: files/app.conf.njk
          dst: "${root}/\${HADES_HOST_NAME}/app.conf"
          mode: 0644
      - run: echo "deployed $VERSION to $HADES_HOST_NAME"

  approve:
    actions:
      - wait: { message: "Canary done. Continue?" }

plans:
  deploy:
    env:
      VERSION: \${VERSION:-0.1.0}
    steps:
      - { name: canary, job: deploy, targets: web, limit: 1 }
      - { name: gate, job: approve, targets: localhost }
      - { name: rollout, job: deploy, targets: web, parallelism: 1 }
`,
    'files/app.conf.njk': `# {{ host.name }}: rendered by hades in step {{ step }}
version = {{ env.VERSION }}
`,
    '.gitignore': `.hades/\n`,
    'hadesfile.schema.json': `${JSON.stringify(loadSchema(), null, 2)}\n`,
  };
}

export async function initCommand(dir: string): Promise<number> {
  const target = resolve(process.cwd(), dir);
  const files = starterFiles(basename(target));
  const clashes = Object.keys(files).filter((f) => existsSync(join(target, f)));
  if (clashes.length)
    throw new UserError({
      message: `${target} already has ${clashes.join(', ')}`,
      hint: 'run hades init in an empty directory (nothing was written)',
    });
  for (const [name, content] of Object.entries(files)) {
    const p = join(target, name);
    mkdirSync(resolve(p, '..'), { recursive: true });
    writeFileSync(p, content, { flag: 'wx' });
  }
  process.stdout.write(`wrote ${Object.keys(files).join(', ')} in ${target}\nnext: cd ${dir} && hades plan deploy --dry-run\n`);
  return EXIT.ok;
}
