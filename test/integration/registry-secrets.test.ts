/**
 * Secrets never leave through the registry commands, nor into a registry (real docker-registry
 * with htpasswd auth, real oras, the built CLI):
 *   - what oras echoes when it fails (here: a docker credential helper's error text, which oras
 *     repeats verbatim) is scrubbed of every secret Hades knows — secret-named vars of the OS
 *     environment, the `.env` beside the hadesfile and --env-file, the hadesfile's
 *     secret_patterns, every registry's password_env, sign_with passphrase_env and
 *     $HADES_REGISTRY_AUTH — on stderr and in --output json;
 *   - what a registry holds (an annotation someone else pushed) is scrubbed on stdout;
 *   - a push whose annotations or config would carry a secret is refused before anything is
 *     pushed (exit 2, file:line:col or the flag, a hint), and the secret is not in the message.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const USER = 'alice';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const secret = (what: string) => `${what}-${randomBytes(10).toString('hex')}`;

describe.skipIf(skip)('secrets and the registry commands (real registry with basic auth)', () => {
  let reg: TestRegistry;
  let n = 0;
  beforeAll(async () => {
    reg = await startRegistry({ auth: { user: USER, password: PASSWORD } });
  });
  afterAll(async () => {
    await reg?.stop();
  });
  const prefix = () => `${reg.url}/sec${n++}`;
  /** The repositories under a prefix, asked of the registry itself. */
  const repos = (url: string): string[] => {
    const r = spawnSync('oras', ['repo', 'ls', '--plain-http', '-u', USER, '--password-stdin', url], { input: PASSWORD, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').filter(Boolean);
  };

  it('oras failure output that repeats secrets is scrubbed on stderr and in --output json, whichever source made them secret', async () => {
    const s = {
      os: secret('os-token'), // DEPLOY_TOKEN in the OS environment (default pattern)
      pattern: secret('vault-cred'), // VAULT_CRED: secret only by the hadesfile's secret_patterns
      dotenv: secret('dotenv-token'), // DOTENV_TOKEN in the .env beside the hadesfile
      envFile: secret('envfile-key'), // FILE_KEY in --env-file
      password: secret('other-pass'), // password_env OTHER_PASS of another registry (no pattern matches the name)
      passphrase: secret('phrase'), // sign_with passphrase_env SIGN_PHRASE
      mapped: secret('mapped'), // a password in $HADES_REGISTRY_AUTH
    };
    const url = prefix();
    const dir = project({
      'hadesfile.yaml': `secret_patterns: ["*_CRED"]
registries:
  prod: { type: oci, url: ${url}, plain_http: true, registry_config: ./docker.json }
  other: { type: oci, url: ${reg.url}/other, plain_http: true, username: bob, password_env: OTHER_PASS }
  signed: { type: filesystem, path: ./reg, sign_with: { key: ./keys/release, passphrase_env: SIGN_PHRASE } }
`,
      '.env': `DOTENV_TOKEN=${s.dotenv}\n`,
      'more.env': `FILE_KEY=${s.envFile}\n`,
      'docker.json': JSON.stringify({ credHelpers: { [reg.url]: 'leaky' } }),
      'bin/docker-credential-leaky': `#!/bin/sh\necho "vault said: ${Object.values(s).join(' ')} (denied)"\nexit 1\n`,
    });
    chmodSync(join(dir, 'bin/docker-credential-leaky'), 0o755);
    mkdirSync(join(dir, 'keys'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', s.passphrase, '-C', 'release', '-f', join(dir, 'keys/release')]);
    const env = {
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      DEPLOY_TOKEN: s.os,
      VAULT_CRED: s.pattern,
      OTHER_PASS: s.password,
      SIGN_PHRASE: s.passphrase,
      HADES_REGISTRY_AUTH: JSON.stringify({ 'mirror.invalid:5000': { username: 'ci', password: s.mapped } }),
    };
    const runs = [
      ['ls', 'prod', 'app'],
      ['inspect', 'prod', 'app:v1', '--output', 'json'],
      ['exists', 'prod', 'app:v1', '--output', 'json'],
      ['pull', 'prod', 'app:v1', '-o', 'out.bin'],
    ];
    for (const args of runs) {
      const r = await runCli(['registry', ...args, '--env-file', 'more.env'], { cwd: dir, env });
      const out = r.stdout + r.stderr;
      expect(r.code, out).not.toBe(0);
      // the failure is reported (oras's own words, the helper's text with it) …
      expect(r.stderr, args.join(' ')).toContain('failed to resolve credential: vault said:');
      expect(r.stderr).toContain('*** *** *** *** *** *** *** (denied)');
      // … and no secret is in it
      for (const [what, v] of Object.entries(s)) expect(out, `${args.join(' ')}: ${what}`).not.toContain(v);
    }
  });

  it('what the registry holds is scrubbed on stdout: an annotation carrying a secret (pushed by another tool) is shown as ***', async () => {
    const token = secret('deploy-token');
    const url = prefix();
    const dir = project({
      'hadesfile.yaml': `registries:\n  prod: { type: oci, url: ${url}, plain_http: true, username: ${USER}, password_env: REG_PASS }\n`,
      'app.bin': 'app\n',
    });
    const pushed = spawnSync(
      'oras',
      ['push', '--plain-http', '-u', USER, '--password-stdin', `${url}/app:v1`, '--annotation', `com.acme.ci=${token}`, 'app.bin'],
      { input: PASSWORD, cwd: dir, encoding: 'utf8' },
    );
    expect(pushed.status, pushed.stderr).toBe(0);
    const env = { REG_PASS: PASSWORD, DEPLOY_TOKEN: token };
    const plain = await runCli(['registry', 'inspect', 'prod', 'app:v1'], { cwd: dir, env });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('  com.acme.ci: ***');
    const json = await runCli(['registry', 'inspect', 'prod', 'app:v1', '--output', 'json'], { cwd: dir, env });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).annotations['com.acme.ci']).toBe('***');
    for (const r of [plain, json]) expect(r.stdout + r.stderr).not.toContain(token);
  });

  it('a plan push whose annotations or config carry a secret is refused at plan time (exit 2, file:line:col, hint); nothing reaches the registry', async () => {
    const token = secret('deploy-token');
    const apiKey = secret('api-key');
    const url = prefix();
    const hadesfile = `registries:
  prod: { type: oci, url: ${url}, plain_http: true, username: ${USER}, password_env: REG_PASS }
jobs:
  publish:
    artifacts:
      app: { path: ./app.bin }
      conf: { path: ./app.bin, config: { build: "${apiKey}" } }
    actions:
      - push:
          registry: prod
          artifact: app
          name: app
          tag: v1
          annotations:
            com.acme.ci: "\${DEPLOY_TOKEN}"
            com.acme.url: "\${BUILD_URL}"
            com.acme.key: "key ${apiKey}"
            com.acme.fine: "build 42"
      - push: { registry: prod, artifact: conf, name: conf, tag: v1 }
plans:
  release:
    env: { DEPLOY_TOKEN: "\${DEPLOY_TOKEN}", BUILD_URL: "https://ci/?t=\${DEPLOY_TOKEN}" }
    steps:
      - { name: publish, job: publish, targets: localhost }
`;
    const dir = project({ 'hadesfile.yaml': hadesfile, 'app.bin': 'app\n' });
    const env = { REG_PASS: PASSWORD, DEPLOY_TOKEN: token };
    for (const extra of [['--dry-run'], []]) {
      const r = await runCli(['plan', 'release', '-e', `API_KEY=${apiKey}`, ...extra], { cwd: dir, env });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toContain(
        'hadesfile.yaml:15:26: error: push.annotations.com.acme.ci: uses ${DEPLOY_TOKEN}, a secret: annotations are stored in the registry, readable by anyone who can pull',
      );
      expect(r.stderr).toContain('hadesfile.yaml:16:27: error: push.annotations.com.acme.url: uses ${BUILD_URL}, a secret');
      expect(r.stderr).toContain('hadesfile.yaml:17:27: error: push.annotations.com.acme.key: holds the value of API_KEY, a secret');
      expect(r.stderr).toContain('hadesfile.yaml:7:40: error: push: the config of artifact "conf" holds the value of API_KEY, a secret');
      expect(r.stderr).toContain('hint: ');
      expect(r.stderr).not.toContain('com.acme.fine');
      expect(r.stdout + r.stderr).not.toContain(token);
      expect(r.stdout + r.stderr).not.toContain(apiKey);
    }
    expect(repos(url)).toEqual([]);
  });

  it('registry push --annotation / --config carrying a secret is refused (exit 2, with a hint) before anything is pushed', async () => {
    const token = secret('deploy-token');
    const url = prefix();
    const dir = project({
      'hadesfile.yaml': `registries:\n  prod: { type: oci, url: ${url}, plain_http: true, username: ${USER}, password_env: REG_PASS }\n`,
      'app.bin': 'app\n',
      'config.json': JSON.stringify({ token }),
    });
    const env = { REG_PASS: PASSWORD, DEPLOY_TOKEN: token };
    const ann = await runCli(['registry', 'push', 'prod', 'app.bin', 'app:v1', '--annotation', `com.acme.ci=ci ${token}`], {
      cwd: dir,
      env,
    });
    expect(ann.code, ann.stdout + ann.stderr).toBe(2);
    expect(ann.stderr).toContain('error: --annotation com.acme.ci: holds the value of DEPLOY_TOKEN, a secret');
    expect(ann.stderr).toContain('hint: ');
    const pw = await runCli(['registry', 'push', 'prod', 'app.bin', 'app:v1', '--annotation', `x=${PASSWORD}`], { cwd: dir, env });
    expect(pw.code).toBe(2);
    expect(pw.stderr).toContain('error: --annotation x: holds the value of REG_PASS, a secret');
    const cfg = await runCli(['registry', 'push', 'prod', 'app.bin', 'app:v1', '--config', 'config.json'], { cwd: dir, env });
    expect(cfg.code, cfg.stdout + cfg.stderr).toBe(2);
    expect(cfg.stderr).toContain('error: --config config.json holds the value of DEPLOY_TOKEN, a secret');
    for (const r of [ann, pw, cfg]) {
      expect(r.stdout + r.stderr).not.toContain(token);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
    expect(repos(url)).toEqual([]);
  });
});
