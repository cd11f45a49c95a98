/**
 * Signed artifacts end to end (issue 18 part 1), with real ssh-keygen, real oras, a real
 * docker-registry (no referrers API: oras's referrers tag schema) and filesystem registries,
 * delivering to a real sshd host: signed → deploys; unsigned, a key not in allowed_signers, a
 * signature over another digest or name → refused before the host gets a byte; signatures
 * survive promote staging → prod; signatures attached by hand (ssh-keygen -Y sign + oras attach,
 * also --oci-layout) verify, and ours are what `oras discover` lists.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { project, runCli } from '../helpers/cli.js';
import { requireLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const SIG_TYPE = 'application/vnd.hades.signature.v1';
const SIG_MEDIA = 'application/vnd.hades.signature.v1+sshsig';

describe.skipIf(skip)('signed artifacts (real ssh-keygen, oras, docker-registry, sshd)', () => {
  let reg: TestRegistry;
  let sshd: ExtraSshd;
  let dir: string;
  let url: string;
  let env: Record<string, string>;
  const keys = (name: string, passphrase = '') => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', join(dir, 'keys', name)]);
    return readFileSync(join(dir, 'keys', `${name}.pub`), 'utf8')
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(' ');
  };
  const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { cwd: dir, env: { ...env, ...extraEnv } });
  const hostFile = (p: string) => join(dir, 'hosts', p);
  const digestOf = async (registry: string, ref: string) =>
    JSON.parse((await cli(['registry', 'inspect', registry, ref, '--output', 'json'])).stdout).manifestDigest as string;

  beforeAll(async () => {
    const lab = requireLab();
    reg = await startRegistry();
    sshd = await startSshd(lab, { name: 'sign' });
    dir = project({ 'build/app': 'app v1\n' });
    url = `${reg.url}/sign`;
    mkdirSync(join(dir, 'keys'));
    const release = keys('release');
    keys('rogue');
    writeFileSync(join(dir, 'allowed_signers'), `release@example.com ${release}\n`);
    writeFileSync(join(dir, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  staging: { type: filesystem, path: ./reg/staging, sign_with: { key: ./keys/release } }
  prod: { type: oci, url: ${url}, plain_http: true, verify: { allowed_signers: ./allowed_signers } }
  fsprod: { type: filesystem, path: ./reg/fsprod, verify: { allowed_signers: ./allowed_signers } }
  open: { type: filesystem, path: ./reg/open }
hosts:
  build: { local: true }
  web: { addr: ${sshd.host.addr}, port: 22, user: ${lab.user}, identity_file: ${lab.clientKey} }
known_hosts: [./known_hosts]
jobs:
  publish:
    artifacts:
      app: { path: ./build/app }
    actions:
      - push: { registry: staging, artifact: app, name: app, tag: "\${VERSION}" }
  promote:
    actions:
      - promote: { from: staging, to: prod, name: app, tag: "\${VERSION}" }
      - promote: { from: staging, to: fsprod, name: app, tag: "\${VERSION}" }
  deploy:
    env: { VERSION: }
    actions:
      - pull: { registry: prod, name: app, tag: "\${VERSION}", to: "${dir}/hosts/oci-\${VERSION}" }
      - pull: { registry: fsprod, name: app, tag: "\${VERSION}", to: "${dir}/hosts/fs-\${VERSION}" }
  deploy-open:
    env: { VERSION: }
    actions:
      - pull: { registry: open, name: app, tag: "\${VERSION}", to: "${dir}/hosts/open-\${VERSION}", verify: { allowed_signers: ./allowed_signers } }
plans:
  release:
    env: { VERSION: "\${VERSION:-v1}" }
    steps:
      - { name: publish, job: publish, targets: build }
      - { name: promote, job: promote, targets: build }
      - { name: deploy, job: deploy, targets: web }
  deploy:
    env: { VERSION: "\${VERSION:-v1}" }
    steps:
      - { name: deploy, job: deploy, targets: web }
  deploy-open:
    env: { VERSION: "\${VERSION:-v1}" }
    steps:
      - { name: deploy, job: deploy-open, targets: web }
`,
    );
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'hosts'));
    execFileSync('chown', [lab.user, join(dir, 'hosts')]);
    mkdirSync(join(dir, 'home'));
    env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '', SOURCE_DATE_EPOCH: '1700000000' };
  });
  afterAll(async () => {
    await sshd?.stop();
    await reg?.stop();
  });

  it('push signs (sign_with), promote carries the signature to oci and filesystem prod, the host gets the bytes; dry-run says it verifies', async () => {
    const dry = await cli(['plan', 'release', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`sign app:v1 with ${join(dir, 'keys/release')} (registry "staging" sign_with:)`);
    expect(dry.stdout).toContain(`verify signature (allowed_signers ${join(dir, 'allowed_signers')}, registry "prod" verify:)`);
    expect(dry.stdout).toContain('its signatures (OCI referrers) are copied with it');

    const r = await cli(['plan', 'release']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(hostFile('oci-v1'), 'utf8')).toBe('app v1\n');
    expect(readFileSync(hostFile('fs-v1'), 'utf8')).toBe('app v1\n');
    const d = await digestOf('staging', 'app:v1');
    expect(await digestOf('prod', 'app:v1')).toBe(d);
    for (const registry of ['prod', 'fsprod']) {
      const v = await cli(['registry', 'verify', registry, 'app:v1']);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toMatch(new RegExp(`^good signature: app:v1 \\(${d}\\) signed by release@example.com \\(ED25519 key SHA256:`));
    }
    const insp = await cli(['registry', 'inspect', 'prod', 'app:v1']);
    expect(insp.stdout).toMatch(/signed by: +release@example\.com \(ED25519 key SHA256:\S+, verified\)/);
    // The referrers tag oras keeps on this registry (sha256-<hex>) is not listed as an artifact tag.
    const prodLs = await cli(['registry', 'ls', 'prod', 'app']);
    expect(prodLs.code, prodLs.stderr).toBe(0);
    expect(prodLs.stdout).toMatch(/^v1\tsha256:\S+\t7\t\S+\tsigned by release@example\.com \(ED25519 key SHA256:\S+, verified\)\n$/);
    const ls = await cli(['registry', 'ls', 'staging', 'app']);
    expect(ls.stdout).toMatch(/^v1\tsha256:\S+\t7\t\S+\tsigned by ED25519 key SHA256:\S+ \(not checked: no verify\.allowed_signers\)$/m);

    // Interoperates: oras discover lists our referrers, in the registry and in the layout.
    const oci = JSON.parse(execFileSync('oras', ['discover', '--plain-http', '--format', 'json', `${url}/app:v1`], { encoding: 'utf8' }));
    expect(oci.manifests.map((m: { artifactType: string }) => m.artifactType)).toEqual([SIG_TYPE]);
    const fs = JSON.parse(
      execFileSync('oras', ['discover', '--oci-layout', '--format', 'json', `${join(dir, 'reg/staging/app')}:v1`], { encoding: 'utf8' }),
    );
    expect(fs.manifests.map((m: { artifactType: string }) => m.artifactType)).toEqual([SIG_TYPE]);
    // The same referrer (same bytes, same digest) in all three registries.
    expect(oci.manifests[0].digest).toBe(fs.manifests[0].digest);

    // A second run: nothing new to sign or copy.
    const again = await cli(['plan', 'release', '--output', 'json']);
    expect(again.code).toBe(0);
    const ends = again.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'action.end' && (e.kind === 'push' || e.kind === 'promote'));
    expect(ends.map((e) => e.status)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('unsigned → refused before the host gets a byte (oci and filesystem), naming artifact, digest and "no signature"', async () => {
    writeFileSync(join(dir, 'v2.bin'), 'app v2\n');
    for (const registry of ['prod', 'fsprod']) expect((await cli(['registry', 'push', registry, 'v2.bin', 'app:v2'])).code).toBe(0);
    const d = await digestOf('prod', 'app:v2');
    const r = await cli(['plan', 'deploy'], { VERSION: 'v2' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refusing app:v2 (${d}) from registry "prod": no signature`);
    // Refused before the run: no lock taken, no step started, nothing sent to the host.
    expect(r.stderr).toContain('no action was run');
    expect(r.stdout).not.toContain('lock web');
    expect(r.stdout).not.toContain('step deploy');
    expect(existsSync(hostFile('oci-v2'))).toBe(false);
    expect(existsSync(hostFile('fs-v2'))).toBe(false);
    const v = await cli(['registry', 'verify', 'fsprod', 'app:v2']);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain('no signature');
    // registry pull from a verify: registry refuses too, writing nothing.
    const pulled = await cli(['registry', 'pull', 'fsprod', 'app:v2', '-o', 'out/app']);
    expect(pulled.code).toBe(1);
    expect(pulled.stderr).toContain(`refusing app:v2 (${d}) from registry "fsprod": no signature`);
    expect(existsSync(join(dir, 'out/app'))).toBe(false);
    // registry push to a registry with sign_with signs, like the push action.
    const pushed = await cli(['registry', 'push', 'staging', 'v2.bin', 'app:v2']);
    expect(pushed.stdout).toContain(`(signed with ${join(dir, 'keys/release')})`);
    expect((await cli(['registry', 'verify', 'staging', 'app:v2', '--allowed-signers', 'allowed_signers'])).code).toBe(0);
  });

  it('signed by a key not in allowed_signers → refused ("unknown key"); then signed by the release key → deploys', async () => {
    writeFileSync(join(dir, 'v3.bin'), 'app v3\n');
    expect((await cli(['registry', 'push', 'prod', 'v3.bin', 'app:v3'])).code).toBe(0);
    const s = await cli(['registry', 'sign', 'prod', 'app:v3', '--key', 'keys/rogue']);
    expect(s.code, s.stderr).toBe(0);
    const v = await cli(['registry', 'verify', 'prod', 'app:v3']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(
      /refusing app:v3 \(sha256:\S+\) from registry "prod": unknown key \(ED25519 key SHA256:\S+ is not in allowed_signers\)/,
    );
    const pr = await cli(['registry', 'promote', 'prod', 'open', 'app:v3']);
    expect(pr.stdout).toMatch(/^promoted app:v3 in "open" = sha256:\S+ \(\+ 1 signature\(s\)\)$/m);
    const r = await cli(['plan', 'deploy-open'], { VERSION: 'v3' });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('unknown key');
    expect(existsSync(hostFile('open-v3'))).toBe(false);
    // The rogue signature came along with the promote; the release key's is added: now it deploys.
    expect((await cli(['registry', 'sign', 'open', 'app:v3', '--key', 'keys/release'])).code).toBe(0);
    const ok = await cli(['plan', 'deploy-open'], { VERSION: 'v3' });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(readFileSync(hostFile('open-v3'), 'utf8')).toBe('app v3\n');
  });

  it('a signature over another digest or another name is refused; one made by hand over the documented payload verifies', async () => {
    writeFileSync(join(dir, 'v4.bin'), 'app v4\n');
    expect((await cli(['registry', 'push', 'prod', 'v4.bin', 'app:v4'])).code).toBe(0);
    expect((await cli(['registry', 'push', 'fsprod', 'v4.bin', 'app:v4'])).code).toBe(0);
    const d4 = await digestOf('prod', 'app:v4');
    const d1 = await digestOf('prod', 'app:v1');
    const handSign = (name: string, digest: string, file: string) => {
      writeFileSync(join(dir, file), `hades-artifact-signature v1\nname: ${name}\ndigest: ${digest}\n`);
      execFileSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', join(dir, 'keys/release'), '-n', 'hades-artifact', join(dir, file)]);
      return `${file}.sig`;
    };
    // A release-key signature of v1's digest, attached to v4 (oci), and one for another name (layout).
    const attachOci = (sig: string) =>
      execFileSync('oras', ['attach', '--plain-http', '--artifact-type', SIG_TYPE, `${url}/app:v4`, `${sig}:${SIG_MEDIA}`], { cwd: dir });
    const attachFs = (sig: string) =>
      execFileSync('oras', ['attach', '--oci-layout', '--artifact-type', SIG_TYPE, `reg/fsprod/app:v4`, `${sig}:${SIG_MEDIA}`], {
        cwd: dir,
      });
    attachOci(handSign('app', d1, 'other-digest'));
    attachFs(handSign('other', d4, 'other-name'));
    const r = await cli(['plan', 'deploy'], { VERSION: 'v4' });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(
      /refusing app:v4 \(sha256:\S+\) from registry "prod": bad signature \(by release@example\.com, but not over this name and digest/,
    );
    expect(existsSync(hostFile('oci-v4'))).toBe(false);
    const fsv = await cli(['registry', 'verify', 'fsprod', 'app:v4']);
    expect(fsv.code).toBe(1);
    expect(fsv.stderr).toContain('bad signature');

    // By hand, over the right payload: ssh-keygen -Y sign + oras attach (registry and layout).
    const good = handSign('app', d4, 'good');
    attachOci(good);
    attachFs(good);
    const ok = await cli(['plan', 'deploy'], { VERSION: 'v4' });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(readFileSync(hostFile('oci-v4'), 'utf8')).toBe('app v4\n');
    expect(readFileSync(hostFile('fs-v4'), 'utf8')).toBe('app v4\n');
  });

  it('an allowed_signers line past its valid-before → "expired"; a key with a passphrase signs with --passphrase-env', async () => {
    const release = readFileSync(join(dir, 'keys/release.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(join(dir, 'allowed_expired'), `release@example.com valid-before="20200101" ${release}\n`);
    const v = await cli(['registry', 'verify', 'prod', 'app:v1', '--allowed-signers', 'allowed_expired']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/: expired \(key has expired/);

    const locked = keys('locked', 'open sesame');
    writeFileSync(join(dir, 'allowed_locked'), `ops@example.com ${locked}\n`);
    const noPw = await cli(['registry', 'sign', 'prod', 'app:v2', '--key', 'keys/locked']);
    expect(noPw.code).toBe(2);
    expect(noPw.stderr).toContain('passphrase_env');
    const s = await cli(['registry', 'sign', 'prod', 'app:v2', '--key', 'keys/locked', '--passphrase-env', 'SIGN_PW'], {
      SIGN_PW: 'open sesame',
    });
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout + s.stderr).not.toContain('open sesame');
    const ok = await cli(['registry', 'verify', 'prod', 'app:v2', '--allowed-signers', 'allowed_locked']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('signed by ops@example.com');
  });

  it('--offline verifies the signatures an online run kept in the cache (registry stopped); none kept → refused, the host untouched', async () => {
    const online = await cli(['plan', 'deploy'], { VERSION: 'v1' });
    expect(online.code, online.stdout + online.stderr).toBe(0);
    const kept = join(dir, 'home', '.cache', 'hades', 'signatures');
    expect(readdirSync(kept, { recursive: true }).some((n) => String(n).endsWith('.sshsig'))).toBe(true);
    await reg.stop();
    rmSync(hostFile('oci-v1'));
    rmSync(hostFile('fs-v1'));
    const off = await cli(['plan', 'deploy', '--replay', 'last', '--offline']);
    expect(off.code, off.stdout + off.stderr).toBe(0);
    expect(readFileSync(hostFile('oci-v1'), 'utf8')).toBe('app v1\n');
    expect(readFileSync(hostFile('fs-v1'), 'utf8')).toBe('app v1\n');

    rmSync(kept, { recursive: true });
    rmSync(hostFile('oci-v1'));
    const refused = await cli(['plan', 'deploy', '--replay', 'last', '--offline']);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain('no signature in the cache');
    expect(existsSync(hostFile('oci-v1'))).toBe(false);
  });
});
