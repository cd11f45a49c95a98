/**
 * Credentials the way CI systems hand them over, against real registries with htpasswd basic
 * auth, through the real CLI: a docker config whose `credHelpers` / `credsStore` name a
 * credential helper (a tiny `docker-credential-hadestest` script on PATH, which oras runs), and
 * $HADES_REGISTRY_AUTH giving several registries their credentials from one variable. Each time:
 * the secret is in no argv (sampled from /proc while the run goes), no oras environment, no
 * output and no audit log.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, startCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const USER = 'ci-user';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const USER2 = 'other-user';
const PASSWORD2 = `pw2-${randomBytes(12).toString('hex')}`;
const b64 = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');

interface Proc {
  pid: number;
  argv: string[];
  environ: string;
}
/** Samples /proc for oras and credential-helper processes (argv and environment) until stopped. */
function watchProcs(): { stop(): Promise<Proc[]> } {
  const seen = new Map<number, Proc>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p) || seen.has(Number(p))) continue;
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
          if (!argv.some((a) => /(^|\/)(oras|docker-credential-hadestest)$/.test(a))) continue;
          seen.set(Number(p), { pid: Number(p), argv, environ: readFileSync(`/proc/${p}/environ`, 'utf8') });
        } catch {
          /* gone already */
        }
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...seen.values()];
    },
  };
}

function audits(dir: string): string {
  return readdirSync(join(dir, '.hades/runs'))
    .map((f) => readFileSync(join(dir, '.hades/runs', f), 'utf8'))
    .join('\n');
}

describe.skipIf(skip)('oci credentials from credential helpers and the environment (real registries, real CLI)', () => {
  let reg: TestRegistry;
  let reg2: TestRegistry;
  let tmp: string;
  let bin: string;
  let helperLog: string;

  beforeAll(async () => {
    reg = await startRegistry({ auth: { user: USER, password: PASSWORD } });
    reg2 = await startRegistry({ auth: { user: USER2, password: PASSWORD2 } });
    tmp = mkdtempSync(join(tmpdir(), 'hades-oci-creds-'));
    bin = join(tmp, 'bin');
    mkdirSync(bin);
    helperLog = join(tmp, 'helper.log');
    // A docker credential helper: `get` reads the server on stdin and answers JSON on stdout.
    writeFileSync(
      join(bin, 'docker-credential-hadestest'),
      `#!/bin/sh
server=$(cat)
echo "$1 $server" >> '${helperLog}'
if [ "$1" = get ] && [ "$server" = '${reg.url}' ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" '${USER}' '${PASSWORD}'
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
`,
    );
    chmodSync(join(bin, 'docker-credential-hadestest'), 0o700);
  });
  afterAll(async () => {
    await reg?.stop();
    await reg2?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const path = () => `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  function publishAndDeploy(registry: string): string {
    return `hosts:
  h1: { local: true }
jobs:
  publish:
    artifacts: { app: { path: ./build/app.bin } }
    actions:
      - push: { registry: ${registry}, artifact: app, name: app, tag: v1.0.0 }
  deploy:
    actions:
      - pull: { registry: ${registry}, name: app, tag: v1.0.0, to: "DIR/deployed/app.bin" }
plans:
  release:
    steps:
      - { name: publish, job: publish, targets: localhost }
      - { name: deploy, job: deploy, targets: h1 }
`;
  }

  it('credHelpers in registry_config: oras asks the helper; push and pull work; the secret is in no argv, output or audit log', async () => {
    const dir = project({ 'build/app.bin': 'via credHelpers\n', 'deployed/.keep': '' });
    mkdirSync(join(dir, 'docker'));
    writeFileSync(join(dir, 'docker/config.json'), JSON.stringify({ credHelpers: { [reg.url]: 'hadestest' } }));
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  prod:
    type: oci
    url: ${reg.url}/helpers
    plain_http: true
    registry_config: ./docker/config.json
${publishAndDeploy('prod').replace('DIR', dir)}`,
    );
    writeFileSync(helperLog, '');
    const watch = watchProcs();
    const r = await startCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], {
      cwd: dir,
      env: { PATH: path() },
    }).done;
    const procs = await watch.stop();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'deployed/app.bin'), 'utf8')).toBe('via credHelpers\n');
    expect(readFileSync(helperLog, 'utf8')).toContain(`get ${reg.url}`);
    expect(procs.some((p) => p.argv.some((a) => a.endsWith('/oras')))).toBe(true);
    for (const text of [r.stdout, r.stderr, audits(dir), ...procs.map((p) => p.argv.join(' '))]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(b64(USER, PASSWORD));
    }
  });

  it('credsStore in $DOCKER_CONFIG/config.json (no credentials in the hadesfile): registry push and pull work', async () => {
    const dockerDir = join(tmp, 'docker-store');
    mkdirSync(dockerDir);
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ credsStore: 'hadestest' }));
    const dir = project({
      'build/tool.bin': 'via credsStore\n',
      'hadesfile.yaml': `registries:
  prod: { type: oci, url: ${reg.url}/store, plain_http: true }
`,
    });
    writeFileSync(helperLog, '');
    const env = { PATH: path(), DOCKER_CONFIG: dockerDir };
    const watch = watchProcs();
    const push = await startCli(['registry', 'push', 'prod', 'build/tool.bin', 'tool:v1'], { cwd: dir, env }).done;
    const pull = await startCli(['registry', 'pull', 'prod', 'tool:v1', '-o', 'got.bin'], { cwd: dir, env }).done;
    const procs = await watch.stop();
    expect(push.code, push.stderr).toBe(0);
    expect(pull.code, pull.stderr).toBe(0);
    expect(readFileSync(join(dir, 'got.bin'), 'utf8')).toBe('via credsStore\n');
    expect(readFileSync(helperLog, 'utf8')).toContain(`get ${reg.url}`);
    for (const text of [push.stdout, push.stderr, pull.stdout, pull.stderr, ...procs.map((p) => p.argv.join(' '))])
      expect(text).not.toContain(PASSWORD);
    // without the helper's config the same registry refuses: the helper was what authenticated
    const anon = await startCli(['registry', 'pull', 'prod', 'tool:v1', '-o', 'anon.bin'], {
      cwd: dir,
      env: { PATH: path(), DOCKER_CONFIG: join(tmp, 'no-such-docker-dir') },
    }).done;
    expect(anon.code).toBe(1);
    expect(anon.stderr).toMatch(/authentication failed for registry "prod"/);
  });

  it('HADES_REGISTRY_AUTH: two registries get their credentials from one variable (push, promote, pull); no secret in argv, oras environment, output or audit log; output is scrubbed', async () => {
    const dir = project({ 'build/app.bin': 'via HADES_REGISTRY_AUTH\n', 'deployed/.keep': '' });
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  staging: { type: oci, url: ${reg.url}/staging, plain_http: true }
  prod: { type: oci, url: ${reg2.url}/prod, plain_http: true }
hosts:
  h1: { local: true }
jobs:
  publish:
    artifacts: { app: { path: ./build/app.bin } }
    actions:
      - push: { registry: staging, artifact: app, name: app, tag: v1.0.0 }
      - promote: { from: staging, to: prod, name: app, tag: v1.0.0 }
  deploy:
    actions:
      - pull: { registry: prod, name: app, tag: v1.0.0, to: "${dir}/deployed/app.bin" }
      - run: echo "leak ${PASSWORD2} leak"
plans:
  release:
    steps:
      - { name: publish, job: publish, targets: localhost }
      - { name: deploy, job: deploy, targets: h1 }
`,
    );
    const AUTH = JSON.stringify({
      [reg.url]: { username: USER, password: PASSWORD },
      [reg2.url]: { username: USER2, password: PASSWORD2 },
    });
    const watch = watchProcs();
    const r = await startCli(['plan', 'release', '--output', 'json', '--cache-dir', join(dir, 'cache')], {
      cwd: dir,
      env: { HADES_REGISTRY_AUTH: AUTH },
    }).done;
    const procs = await watch.stop();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'deployed/app.bin'), 'utf8')).toBe('via HADES_REGISTRY_AUTH\n');
    expect(r.stdout).toContain('leak *** leak');
    const oras = procs.filter((p) => p.argv.some((a) => /(^|\/)oras$/.test(a)));
    expect(oras.length).toBeGreaterThan(0);
    for (const p of oras) expect(p.environ).not.toContain('HADES_REGISTRY_AUTH');
    for (const text of [r.stdout, r.stderr, audits(dir), ...procs.map((p) => p.argv.join(' ') + p.environ)])
      for (const secret of [PASSWORD, PASSWORD2, b64(USER, PASSWORD), b64(USER2, PASSWORD2)]) expect(text).not.toContain(secret);

    // one wrong entry: an auth error naming the variable and the host, the value never shown
    const wrong = JSON.stringify({
      [reg.url]: { username: USER, password: PASSWORD },
      [reg2.url]: { username: USER2, password: 'nope-nope' },
    });
    const bad = await startCli(['plan', 'release', '--output', 'plain', '--cache-dir', join(dir, 'cache2')], {
      cwd: dir,
      env: { HADES_REGISTRY_AUTH: wrong },
    }).done;
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain(
      `authentication failed for registry "prod" (${reg2.url}/prod): check the entry for ${reg2.url} in $HADES_REGISTRY_AUTH (username "${USER2}")`,
    );
    expect(bad.stdout + bad.stderr).not.toContain('nope-nope');

    // malformed: exit 2 before anything runs, the value never shown
    const broken = await startCli(['plan', 'release', '--cache-dir', join(dir, 'cache3')], {
      cwd: dir,
      env: { HADES_REGISTRY_AUTH: `{"${reg.url}": {"username": "u", "password": "${PASSWORD}"` },
    }).done;
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('HADES_REGISTRY_AUTH is not valid JSON');
    expect(broken.stderr).toContain(`hint: write HADES_REGISTRY_AUTH='{"host[:port]": {"username": "…", "password": "…"}, …}'`);
    expect(broken.stdout + broken.stderr).not.toContain(PASSWORD);
  });
});
