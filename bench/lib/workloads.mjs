/**
 * The "release" workload, three ways: Hades (the real CLI), tuned Ansible, and a raw-ssh
 * lower bound. Per host: mkdir /opt/app, the artifact delivered atomically with a
 * checksum to /opt/app/app.bin (mode 0644), one command. Canary on the first host, then
 * every other host in one batch.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, mapLimit, must, run } from './util.mjs';

export const DST_DIR = '/opt/app';
export const DST = '/opt/app/app.bin';
export const RUN_CMD = `stat -c %s ${DST}`;

export function fileDigests(path) {
  const data = readFileSync(path);
  return {
    sha256: createHash('sha256').update(data).digest('hex'),
    sha1: createHash('sha1').update(data).digest('hex'),
    size: data.length,
  };
}

/** Runs a shell snippet inside a lab host's private mount namespace (its own /opt). */
export function onHost(h, script) {
  return must('nsenter', ['-t', String(h.pid), '-m', '--', 'sh', '-c', script]);
}

/** Every host: the lab user owns /opt (like a real app user); nothing deployed. */
export async function prepareHosts(lab, hosts) {
  await mapLimit(hosts, 8, (h) => onHost(h, `chown ${lab.info.user} /opt && rm -rf /opt/app /opt/.ansible-tmp`));
}

export async function wipeHosts(hosts) {
  await mapLimit(hosts, 8, (h) => onHost(h, 'rm -rf /opt/app /opt/.ansible-tmp'));
}

/** Checks on every host that the artifact landed intact with the right mode. */
export async function verifyHosts(hosts, sha256) {
  const bad = [];
  await mapLimit(hosts, 4, async (h) => {
    const r = await run('nsenter', ['-t', String(h.pid), '-m', '--', 'sh', '-c', `sha256sum ${DST} | cut -d ' ' -f 1; stat -c %a ${DST}`]);
    if (r.stdout !== `${sha256}\n644\n`) bad.push(`${h.name}: ${JSON.stringify(r.stdout + r.stderr)}`);
  });
  if (bad.length) throw new Error(`artifact not delivered correctly on ${bad.length} host(s): ${bad.slice(0, 3).join('; ')}`);
}

// ---------------------------------------------------------------------------------------
// Hades

const shq = (v) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

export class HadesWorkload {
  /**
   * `cli`: the built CLI to run (default dist/bin/hades.js; another build for before/after
   * comparisons). `tty`: run with `--output tty` inside a pseudo-terminal (util-linux
   * `script`), to show that the live view does not slow the run; else `--output plain`.
   * `viaHost`: `host:port` of an OCI registry (docker-registry) — the artifact is published
   * there and pulled with `via: host` (each host downloads it itself) instead of from a
   * filesystem registry streamed by the orchestrator.
   */
  constructor(lab, hosts, dir, artifact, { cli = CLI, tag = 'hades', tty = false, viaHost } = {}) {
    this.cli = cli;
    this.viaHost = viaHost;
    this.tty = tty;
    this.lab = lab;
    this.hosts = hosts;
    this.dir = join(dir, tag);
    this.artifact = artifact;
    this.file = join(this.dir, 'hadesfile.yaml');
    this.rssFile = join(this.dir, 'rss');
    this.runsDir = join(this.dir, 'runs');
    mkdirSync(join(this.dir, 'home'), { recursive: true });
    writeFileSync(this.file, this.hadesfile());
    this.env = { ...process.env, HOME: join(this.dir, 'home'), SSH_AUTH_SOCK: '', NO_COLOR: '1' };
    delete this.env.CI;
  }

  hadesfile() {
    const { info } = this.lab;
    const hs = this.hosts;
    return [
      'hosts:',
      ...hs.map((h) => `  ${h.name}: { addr: ${h.proxyAddr ?? h.addr}, port: 22, user: ${info.user}, identity_file: ${info.clientKey} }`),
      'targets:',
      `  canary: [${hs[0].name}]`,
      `  rest: [${hs
        .slice(1)
        .map((h) => h.name)
        .join(', ')}]`,
      `known_hosts: [${info.knownHosts}]`,
      'registries:',
      this.viaHost
        ? `  bench: { type: oci, url: ${this.viaHost}/bench, plain_http: true }`
        : `  bench: { type: filesystem, path: ${join(this.dir, 'registry')} }`,
      'jobs:',
      '  deploy:',
      '    actions:',
      `      - mkdir: { path: ${DST_DIR}, mode: 0755 }`,
      `      - pull: { registry: bench, name: app, tag: v1, to: ${DST}, mode: 0644${this.viaHost ? ', via: host' : ''} }`,
      `      - run: ${RUN_CMD}`,
      'plans:',
      '  release:',
      '    steps:',
      '      - { name: canary, job: deploy, targets: canary }',
      '      - { name: rest, job: deploy, targets: rest }',
      '',
    ].join('\n');
  }

  /** Publishes the artifact once (before any timing). */
  async setup() {
    await must(process.execPath, [this.cli, 'registry', 'push', '-f', this.file, 'bench', this.artifact, 'app:v1'], {
      env: this.env,
      cwd: this.dir,
    });
  }

  args() {
    return [
      this.cli,
      'plan',
      'release',
      '-f',
      this.file,
      '--output',
      this.tty ? 'tty' : 'plain',
      '--yes',
      '--cache-dir',
      join(this.dir, 'cache'),
      '--log-dir',
      this.runsDir,
    ];
  }

  /** One timed run; returns {ms, rssKb}. `expect`: 'changed' (fresh) or 'unchanged' (no-op). */
  async run(expect) {
    rmSync(this.runsDir, { recursive: true, force: true });
    const argv = ['/usr/bin/time', '-f', '%M', '-o', this.rssFile, process.execPath, ...this.args()];
    const r = this.tty
      ? await run('script', ['-qec', `stty cols 120 rows 50; exec ${argv.map(shq).join(' ')}`, '/dev/null'], {
          env: this.env,
          cwd: this.dir,
        })
      : await run(argv[0], argv.slice(1), { env: this.env, cwd: this.dir });
    if (r.code !== 0) throw new Error(`hades exited ${r.code}: ${r.stderr.slice(-2000)}\n${r.stdout.slice(-2000)}`);
    // The audit log holds every event, whatever the output mode.
    const logs = readdirSync(this.runsDir).filter((f) => f.endsWith('.jsonl'));
    if (logs.length !== 1) throw new Error(`hades: expected one audit log in ${this.runsDir}, found ${logs.length}`);
    const ends = readFileSync(join(this.runsDir, logs[0]), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'action.end');
    const want = { mkdir: expect, pull: expect, run: 'ok' };
    const wrong = ends.filter((e) => e.status !== want[e.kind]);
    if (ends.length !== this.hosts.length * 3 || wrong.length)
      throw new Error(
        `hades: expected ${this.hosts.length * 3} actions all ${expect}; got ${ends.length}, wrong: ${JSON.stringify(wrong.slice(0, 3))}`,
      );
    return { ms: r.ms, rssKb: Number(readFileSync(this.rssFile, 'utf8').trim().split('\n').pop()) };
  }
}

// ---------------------------------------------------------------------------------------
// Ansible (tuned)

export const ANSIBLE_TUNING =
  'gather_facts: false, serial: [1, "100%"], forks = N, pipelining = True, ssh ControlMaster=auto + ControlPersist=60s ' +
  '(a fresh ControlPath dir per run, so every run opens its own connections like Hades), interpreter_python fixed ' +
  '(no discovery), remote_tmp on the target filesystem (copy is a rename), copy with checksum (sha1), file for mkdir, command for run';

export class AnsibleWorkload {
  constructor(lab, hosts, dir, artifact) {
    this.lab = lab;
    this.hosts = hosts;
    this.dir = join(dir, 'ansible');
    this.artifact = artifact;
    mkdirSync(join(this.dir, 'home'), { recursive: true });
    const { info } = lab;
    const sha1 = fileDigests(artifact).sha1;
    this.cpRoot = join(this.dir, 'cp');
    writeFileSync(
      join(this.dir, 'inventory.ini'),
      [
        '[web]',
        ...hosts.map((h) => `${h.name} ansible_host=${h.proxyAddr ?? h.addr}`),
        '',
        '[web:vars]',
        `ansible_user=${info.user}`,
        `ansible_ssh_private_key_file=${info.clientKey}`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(this.dir, 'playbook.yml'),
      [
        '- hosts: web',
        '  gather_facts: false',
        '  serial: [1, "100%"]',
        '  tasks:',
        `    - file: { path: ${DST_DIR}, state: directory, mode: "0755" }`,
        `    - copy: { src: ${artifact}, dest: ${DST}, mode: "0644", checksum: ${sha1} }`,
        `    - command: ${RUN_CMD}`,
        '',
      ].join('\n'),
    );
    this.cfg = join(this.dir, 'ansible.cfg');
    this.runNo = 0;
    this.env = { ...process.env, HOME: join(this.dir, 'home'), ANSIBLE_CONFIG: this.cfg, SSH_AUTH_SOCK: '', ANSIBLE_NOCOLOR: '1' };
    delete this.env.CI;
  }

  writeConfig(cpDir) {
    const { info } = this.lab;
    writeFileSync(
      this.cfg,
      [
        '[defaults]',
        `inventory = ${join(this.dir, 'inventory.ini')}`,
        `forks = ${this.hosts.length}`,
        'host_key_checking = True',
        'gathering = explicit',
        'interpreter_python = /usr/bin/python3',
        'retry_files_enabled = False',
        'deprecation_warnings = False',
        `local_tmp = ${join(this.dir, 'local-tmp')}`,
        'remote_tmp = /opt/.ansible-tmp',
        '',
        '[ssh_connection]',
        'pipelining = True',
        `ssh_args = -F /dev/null -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${info.knownHosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes`,
        `control_path_dir = ${cpDir}`,
        'control_path = %(directory)s/%%C',
        '',
      ].join('\n'),
    );
  }

  async setup() {}

  /** Ends the run's ControlMasters (ControlPersist keeps them after ansible-playbook exits). */
  async closeMasters(cpDir) {
    let socks = [];
    try {
      socks = readdirSync(cpDir);
    } catch {
      return;
    }
    await Promise.all(socks.map((s) => run('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(cpDir, s)}`, '-O', 'exit', 'dummy'])));
    rmSync(cpDir, { recursive: true, force: true });
  }

  async run(expect) {
    const cpDir = join(this.cpRoot, String(++this.runNo));
    mkdirSync(cpDir, { recursive: true });
    this.writeConfig(cpDir);
    let r;
    try {
      r = await run('ansible-playbook', [join(this.dir, 'playbook.yml')], { env: this.env, cwd: this.dir });
    } finally {
      await this.closeMasters(cpDir);
    }
    if (r.code !== 0) throw new Error(`ansible-playbook exited ${r.code}: ${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    // PLAY RECAP: every host ok=3; changed=3 on a fresh host, changed=1 (the command) on a no-op run.
    const recap = [...r.stdout.matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    const wantChanged = expect === 'changed' ? 3 : 1;
    const bad = recap.filter((m) => m[2] !== '3' || Number(m[3]) !== wantChanged);
    if (recap.length !== this.hosts.length || bad.length)
      throw new Error(
        `ansible: unexpected recap: ${
          bad
            .map((m) => m[0])
            .slice(0, 3)
            .join('; ') || `${recap.length} hosts`
        }`,
      );
    return { ms: r.ms };
  }
}

// ---------------------------------------------------------------------------------------
// Raw ssh: the lower bound

/** The host-side sha256 Hades uses (OpenSSL when present: SHA instructions; else sha256sum) — the bound uses the same. */
const HASH = (f) => `{ openssl dgst -sha256 -r ${f} 2>/dev/null || sha256sum ${f}; } | cut -d ' ' -f 1`;

export const RAW_DESCRIPTION =
  'one OpenSSH `ssh` process per host (no ControlMaster), one command each: fresh = `mkdir -p && chmod && cat > tmp && sync && sha256 check && chmod && mv && run` ' +
  'with the artifact on stdin; no-op = `mkdir -p && sha256 check && run` with no bytes sent (it knows the answer in advance: an oracle). ' +
  'The sha256 is computed on the host the way Hades does it (openssl if present, else sha256sum). ' +
  'Canary host first, then all other hosts in parallel.';

export class RawSshWorkload {
  constructor(lab, hosts, _dir, artifact) {
    this.lab = lab;
    this.hosts = hosts;
    this.artifact = artifact;
    this.sha256 = fileDigests(artifact).sha256;
  }

  async setup() {}

  sshArgs(h, script) {
    const { info } = this.lab;
    return [
      '-F',
      '/dev/null',
      '-i',
      info.clientKey,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${info.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'ControlMaster=no',
      '-o',
      'ControlPath=none',
      `${info.user}@${h.proxyAddr ?? h.addr}`,
      script,
    ];
  }

  async one(h, expect) {
    const t = `${DST_DIR}/.app.bin.tmp`;
    const check = `[ "$(${HASH(DST)})" = ${this.sha256} ]`;
    const script =
      expect === 'changed'
        ? `mkdir -p ${DST_DIR} && chmod 0755 ${DST_DIR} && cat > ${t} && sync ${t} && [ "$(${HASH(t)})" = ${this.sha256} ] && chmod 0644 ${t} && mv -f ${t} ${DST} && ${RUN_CMD}`
        : `mkdir -p ${DST_DIR} && ${check} && ${RUN_CMD}`;
    let fd;
    if (expect === 'changed') fd = openSync(this.artifact, 'r');
    try {
      const r = await run('ssh', this.sshArgs(h, script), fd !== undefined ? { stdinFd: fd } : {});
      if (r.code !== 0) throw new Error(`raw ssh to ${h.name} exited ${r.code}: ${r.stderr}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  async run(expect) {
    const t0 = performance.now();
    await this.one(this.hosts[0], expect);
    await Promise.all(this.hosts.slice(1).map((h) => this.one(h, expect)));
    return { ms: performance.now() - t0 };
  }
}

export { ROOT };
