/**
 * A planted `.hades-artifact` marker: a hostile user who owns the parent of a directory pull's
 * destination fills the destination with their own files and a marker naming the artifact's
 * (public) manifest digest. The delivery itself refuses to write under a directory another
 * user controls; the "is it already there?" check that runs before it must refuse as well,
 * never report "unchanged" for the attacker's tree. Real sshd host (its own mount namespace),
 * real attacker user, a real filesystem registry, the built CLI as hades-sudo with `become`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jsonEvents, runCli } from '../helpers/cli.js';
import { writeDirectoryArtifact } from '../helpers/raw-artifact.js';
import { describeLab } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';

describeLab('a planted artifact marker under a hostile parent directory (real sshd, real attacker)', (lab) => {
  let sshd: ExtraSshd;
  let pid: string;
  let dir: string;
  let digest: string;
  const attacker = lab.nosudoUser;
  const asRoot = (s: string) => execFileSync('nsenter', ['-t', pid, '-m', '--', 'sh', '-c', s], { encoding: 'utf8' });
  const asAttacker = (s: string) =>
    execFileSync('nsenter', ['-t', pid, '-m', '--', 'runuser', '-u', attacker, '--', 'sh', '-c', s], { encoding: 'utf8' });

  beforeAll(async () => {
    sshd = await startSshd(lab, { name: 'hostile-marker' });
    pid = readFileSync(sshd.host.pidFile, 'utf8').trim();
    dir = mkdtempSync(join(tmpdir(), 'hades-hostile-marker-'));
    mkdirSync(join(dir, 'home'));
    mkdirSync(join(dir, 'src', 'site'), { recursive: true });
    writeFileSync(join(dir, 'src', 'site', 'index.html'), '<h1>the real site</h1>\n');
    const tar = execFileSync('tar', ['-cf', '-', '-C', join(dir, 'src'), 'site']);
    digest = await writeDirectoryArtifact(join(dir, 'reg'), 'site', 'v1', 'site', tar);
    writeFileSync(join(dir, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `registries:
  r: { type: filesystem, path: ./reg }
hosts:
  box: { addr: ${sshd.host.addr}, port: ${sshd.host.port}, user: ${lab.sudoUser}, identity_file: ${lab.clientKey} }
known_hosts: [${join(dir, 'known_hosts')}]
jobs:
  deploy:
    become: true
    actions:
      - pull: { registry: r, name: site, tag: v1, to: /srv/app/current }
plans:
  p:
    steps:
      - { name: s, job: deploy, targets: box }
`,
    );
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('the attacker owns /srv/app and plants /srv/app/current with a marker naming the digest: refused, not "unchanged"', async () => {
    asRoot(`rm -rf /srv/* && mkdir /srv/app && chown ${attacker}: /srv/app`);
    asAttacker(
      `mkdir /srv/app/current && echo '<h1>the attacker</h1>' > /srv/app/current/index.html && printf '%s\\n' ${digest} > /srv/app/current/.hades-artifact`,
    );
    const r = await runCli(['plan', 'p', '--output', 'json', '--no-lock', '--cache-dir', join(dir, 'cache')], {
      cwd: dir,
      env: { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' },
    });
    const ends = jsonEvents(r.stdout).filter((e) => e.type === 'action.end');
    expect(ends.map((e) => e.status)).toEqual(['failed']);
    expect(ends[0]!.message).toContain('refusing to write under /srv/app');
    expect(r.code).not.toBe(0);
    expect(asRoot('cat /srv/app/current/index.html')).toBe('<h1>the attacker</h1>\n');
  });
});
