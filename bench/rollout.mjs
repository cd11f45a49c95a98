#!/usr/bin/env node
/**
 * The rollout benchmark (issue 6). Starts its own lab of real sshd hosts behind delay
 * proxies, then runs the same "release" workload with Hades, tuned Ansible and a raw-ssh
 * lower bound — alternating, several runs each — and writes bench/RESULTS.md.
 *
 *   npm install && npm run build
 *   sudo node bench/rollout.mjs [--hosts 16,64,256] [--runs 5] [--delay 15] [--size 20]
 *                               [--tools hades,hades-tty,hades-via-host,ansible,raw] [--cases fresh,noop]
 *                               [--ansible-max-hosts 64] [--plan-hosts 2000]
 *                               [--out bench/RESULTS.md | --no-write] [--cli dist/bin/hades.js]
 *
 * Root only (the lab uses namespaces and sshd). Needs ansible-core for the Ansible column
 * (apt-get install -y ansible-core) and GNU time for peak RSS (apt-get install -y time).
 * `hades-via-host` pulls from a docker-registry on loopback with `via: host` (each host downloads
 * the artifact itself); for every tool the bytes sent towards the hosts are counted at the proxies.
 * Beside RESULTS.md it writes RESULTS.json (every run's numbers) and RESULTS-growth.svg.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLab, loadRegistry } from './lib/lab.mjs';
import { growthSvg, growthTable } from './lib/growth.mjs';
import { planningBench } from './lib/planning.mjs';
import { CLI, ROOT, fmtStats, secs, stats } from './lib/util.mjs';
import {
  ANSIBLE_TUNING,
  AnsibleWorkload,
  HadesWorkload,
  RAW_DESCRIPTION,
  RawSshWorkload,
  fileDigests,
  prepareHosts,
  verifyHosts,
  wipeHosts,
} from './lib/workloads.mjs';

const { values: flags } = parseArgs({
  options: {
    hosts: { type: 'string', default: '16,64,256' },
    runs: { type: 'string', default: '5' },
    delay: { type: 'string', default: '15' },
    size: { type: 'string', default: '20' },
    tools: { type: 'string', default: 'hades,hades-tty,ansible,raw' },
    cases: { type: 'string', default: 'fresh,noop' },
    'plan-hosts': { type: 'string', default: '2000' },
    'ansible-max-hosts': { type: 'string', default: '64' },
    cli: { type: 'string', default: CLI },
    out: { type: 'string', default: join(ROOT, 'bench/RESULTS.md') },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    `${readFileSync(new URL(import.meta.url), 'utf8')
      .split('\n')
      .slice(2, 15)
      .join('\n')
      .replace(/^ \* ?/gm, '')}\n`,
  );
  process.exit(0);
}

const sizes = flags.hosts.split(',').map(Number);
const runs = Number(flags.runs);
const delayMs = Number(flags.delay);
const sizeMb = Number(flags.size);
const tools = flags.tools.split(',');
const cases = flags.cases.split(',');
const planHosts = Number(flags['plan-hosts']);
const ansibleMax = Number(flags['ansible-max-hosts']);
/** The lab holds up to 990 hosts (one sshd per address, 99 per 127.X.Y); 512 is where this benchmark stops. */
const MAX_HOSTS = 512;
for (const n of sizes)
  if (!Number.isInteger(n) || n < 2 || n > MAX_HOSTS) throw new Error(`--hosts: each size must be 2..${MAX_HOSTS}, got ${n}`);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
for (const t of tools)
  if (!['hades', 'hades-tty', 'hades-via-host', 'ansible', 'raw'].includes(t)) throw new Error(`--tools: unknown tool ${t}`);
for (const c of cases) if (!['fresh', 'noop'].includes(c)) throw new Error(`--cases: unknown case ${c}`);

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

function preflight() {
  const missing = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync(flags.cli)) missing.push(`${flags.cli} (run npm run build)`);
  if (tools.includes('ansible')) {
    try {
      execFileSync('ansible-playbook', ['--version'], { stdio: 'ignore' });
    } catch {
      missing.push('ansible-playbook (apt-get install -y ansible-core)');
    }
  }
  if (tools.some((t) => t.startsWith('hades')) && !existsSync('/usr/bin/time')) missing.push('/usr/bin/time (apt-get install -y time)');
  if (tools.includes('hades-tty') && !existsSync('/usr/bin/script')) missing.push('/usr/bin/script (apt-get install -y bsdutils)');
  if (missing.length) throw new Error(`cannot run the benchmark: missing ${missing.join(', ')}`);
  // This process holds every delay proxy: a listener per host plus two sockets per proxied
  // connection (Hades' N, raw ssh's N, Ansible's N control masters) — about 8 per host.
  const need = 8 * Math.max(...sizes) + 256;
  const nofile = openFilesLimit();
  if (nofile !== undefined && nofile < need)
    throw new Error(
      `cannot run the benchmark: the open-files limit is ${nofile}, ${Math.max(...sizes)} hosts need about ${need}: run it under \`ulimit -n 65536\``,
    );
}

/** This process's soft open-files limit (RLIMIT_NOFILE), from /proc/self/limits. */
function openFilesLimit() {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return `(${cmd}: ${e.message.split('\n')[0]})`;
  }
}

/** What every `node` process costs here before any of our code: context for the absolute times. */
function nodeStartMs() {
  const ms = [];
  for (let i = 0; i < 9; i++) {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', '0']);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return Math.round(ms.sort((a, b) => a - b)[4]);
}

function machine() {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: sh('nproc', []),
    cpu,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    os: sh('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    node: process.version,
    openssh: sh('sh', ['-c', 'ssh -V 2>&1']),
    ansible: tools.includes('ansible') ? sh('sh', ['-c', 'ansible-playbook --version | head -n1']) : '-',
    'bare node start (`node -e 0`, median of 9)': `${nodeStartMs()} ms${process.env.NODE_EXTRA_CA_CERTS ? ' (NODE_EXTRA_CA_CERTS is set here: every node start also loads that CA bundle)' : ''}`,
    loadStart: loadavg()[0].toFixed(1),
    commit:
      sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) +
      (sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) ? ' (+ uncommitted changes in src/)' : ''),
  };
}

async function main() {
  preflight();
  const lab0 = await loadLab();
  const mach = machine();
  const maxN = Math.max(...sizes);
  // Cold-process planning first, on a machine the lab and the rollouts have not loaded yet.
  let planning = [];
  if (planHosts > 0) {
    log(`planning: cold processes on a generated ${planHosts}-host hadesfile...`);
    planning = await planningBench({ hosts: planHosts, runs, cli: resolve(flags.cli), log });
  }
  log(`starting a lab of ${maxN} sshd hosts behind ${delayMs} ms-each-way delay proxies...`);
  const lab = await lab0.startLab({ hosts: maxN, jump: false, proxyDelayMs: delayMs, logLevel: 'ERROR' });
  log(
    `lab up in ${lab.info.startMs} ms: ${maxN} hosts from ${lab.info.hosts[0].addr} (99 per 127.X.Y; each proxy at .100+i of its host's)`,
  );
  const work = mkdtempSync(join(tmpdir(), 'hades-bench-'));
  const results = []; // {n, case, tool, ms[], rssKb[], sent[]}
  // The docker-registry the `via: host` hosts download from (loopback, not behind the delay proxies).
  const registry = tools.includes('hades-via-host') ? await (await loadRegistry()).startRegistry() : undefined;
  /** Bytes the proxies carried towards these hosts so far: what the orchestrator sent them. */
  const sentTo = (hosts) =>
    lab.proxies.filter((p) => hosts.some((h) => h.proxyAddr === p.listen.host)).reduce((n, p) => n + p.bytes.toTarget, 0);
  let stopping = false;
  const cleanup = async () => {
    await registry?.stop().catch(() => undefined);
    await lab.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  };
  const bail = (why, code) => {
    if (stopping) return;
    stopping = true;
    log(`${why}: stopping the lab`);
    cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => bail('interrupted', 130));
  process.once('SIGTERM', () => bail('terminated', 143));
  process.once('uncaughtException', (e) => bail(`bench failed: ${e.stack ?? e}`, 1));
  try {
    const artifact = join(work, 'artifact.bin');
    writeFileSync(artifact, randomBytes(sizeMb * 2 ** 20));
    const { sha256 } = fileDigests(artifact);
    await prepareHosts(lab, lab.info.hosts);

    for (const n of sizes) {
      const hosts = lab.info.hosts.slice(0, n);
      const dir = mkdtempSync(join(work, `n${n}-`));
      const impl = {
        hades: new HadesWorkload(lab, hosts, dir, artifact, { cli: resolve(flags.cli) }),
        'hades-tty': new HadesWorkload(lab, hosts, dir, artifact, { cli: resolve(flags.cli), tag: 'hades-tty', tty: true }),
        'hades-via-host':
          registry &&
          new HadesWorkload(lab, hosts, dir, artifact, { cli: resolve(flags.cli), tag: 'hades-via-host', viaHost: registry.url }),
        ansible: new AnsibleWorkload(lab, hosts, dir, artifact),
        raw: new RawSshWorkload(lab, hosts, dir, artifact),
      };
      // Ansible with forks = N: optional at the largest sizes (--ansible-max-hosts).
      const here = tools.filter((t) => t !== 'ansible' || n <= ansibleMax);
      for (const t of here) await impl[t].setup();
      log(`N=${n}: ${hosts.length} hosts${here.length < tools.length ? ' (no Ansible at this size: --ansible-max-hosts)' : ''}`);
      // Warm-up (untimed): one fresh run per tool, each checked on every host.
      for (const t of here) {
        await wipeHosts(hosts);
        await impl[t].run('changed');
        await verifyHosts(hosts, sha256);
        log(`  N=${n}: warm-up ${t} ok (artifact verified on ${n} hosts)`);
      }
      for (const c of cases) {
        const expect = c === 'fresh' ? 'changed' : 'unchanged';
        const rec = Object.fromEntries(here.map((t) => [t, { n, case: c, tool: t, ms: [], rssKb: [], sent: [] }]));
        for (let i = 0; i < runs; i++) {
          // Alternate: rotate the tool order every round.
          const order = here.map((_, k) => here[(k + i) % here.length]);
          for (const t of order) {
            if (c === 'fresh') await wipeHosts(hosts);
            const before = sentTo(hosts);
            const r = await impl[t].run(expect);
            rec[t].sent.push(sentTo(hosts) - before);
            rec[t].ms.push(r.ms);
            if (r.rssKb) rec[t].rssKb.push(r.rssKb);
            log(
              `  N=${n} ${c} run ${i + 1}/${runs} ${t}: ${secs(r.ms)}${r.rssKb ? `, peak RSS ${(r.rssKb / 1024).toFixed(0)} MB` : ''}, sent ${mib(rec[t].sent.at(-1))}`,
            );
          }
        }
        if (c === 'fresh') await verifyHosts(hosts, sha256);
        results.push(...Object.values(rec));
      }
    }
  } finally {
    await cleanup();
  }

  mach['load average (1 min) at start → end'] = `${mach.loadStart} → ${loadavg()[0].toFixed(1)} (other work on the machine adds noise)`;
  delete mach.loadStart;
  const md = report(mach, results, planning);
  process.stdout.write(md);
  if (!flags['no-write']) {
    const out = resolve(flags.out);
    writeFileSync(out, md);
    const base = out.replace(/\.md$/, '');
    writeFileSync(`${base}.json`, `${JSON.stringify({ machine: mach, flags, results, planning }, null, 1)}\n`);
    writeFileSync(`${base}-growth.svg`, growthSvg(results));
    log(`written: ${out}, ${base}.json, ${base}-growth.svg`);
  }
}

function report(mach, results, planning) {
  const get = (n, c, t) => results.find((r) => r.n === n && r.case === c && r.tool === t);
  const L = [];
  L.push('# Rollout benchmark results', '');
  L.push(
    `Generated by \`node bench/rollout.mjs --hosts ${sizes.join(',')} --runs ${runs} --delay ${delayMs} --size ${sizeMb}\` (see bench/README.md).`,
    '',
  );
  L.push('## Machine', '');
  L.push('| | |', '|---|---|');
  for (const [k, v] of Object.entries(mach)) L.push(`| ${k} | ${String(v).replace(/\|/g, '\\|')} |`);
  L.push('');
  L.push('## Setup', '');
  L.push(
    `- Lab: ${Math.max(...sizes)} real OpenSSH sshd hosts on loopback, each in its own mount namespace (private tmpfs /opt), each behind a userspace TCP proxy adding ${delayMs} ms per direction (${2 * delayMs} ms RTT), with TCP_NODELAY (test/lab/lab.ts startDelayProxy). Everything — hosts, proxies, orchestrator — shares this machine's ${mach.nproc} cores, so every byte is encrypted, decrypted and hashed on the same 2 CPUs.`,
  );
  L.push(
    `- Artifact: ${sizeMb} MiB of random bytes. Workload "release": canary on 1 host, then the other N-1 in one batch; per host \`mkdir /opt/app\` (0755), the artifact delivered atomically with a sha256 check to /opt/app/app.bin (0644), one command (\`stat -c %s /opt/app/app.bin\`).`,
  );
  L.push('- **fresh**: /opt/app wiped on every host before each run. **no-op**: a re-run with nothing changed.');
  L.push(
    `- Runs: ${runs} timed runs per tool and case, tools alternating (order rotated every round), after one untimed warm-up run per tool whose result is verified on every host (sha256 + mode). Times are wall clock of the whole command, from spawn to exit. Median (min–max).`,
  );
  L.push(
    "- **Hades**: the real CLI as a child process, `node dist/bin/hades.js plan release --output plain --yes` (artifact pushed once to a filesystem registry before timing; delivered with `pull`). Every run's events (its audit log) are checked: fresh = mkdir/pull `changed`, no-op = `unchanged`. Peak RSS of the orchestrator from GNU time (`%M`). **Hades, TTY view**: the same with `--output tty` in a pseudo-terminal (`script`, 120×50): the live frame must not slow the run.",
  );
  L.push(`- **Ansible (tuned)**: ${ANSIBLE_TUNING}. Every run's PLAY RECAP is checked.`);
  L.push(`- **raw ssh**: ${RAW_DESCRIPTION}`);
  if (tools.includes('hades-via-host'))
    L.push(
      '- **Hades, via: host**: the same plan, the artifact published to a real docker-registry on loopback (not behind the delay proxies) and pulled with `via: host`: each host downloads it itself with curl and verifies it; the orchestrator sends commands only.',
    );
  L.push('');
  for (const c of ['fresh', 'noop']) {
    if (!results.some((r) => r.case === c)) continue;
    L.push(`## ${c === 'fresh' ? 'Fresh release' : 'No-op re-run'}`, '');
    const cols = ['hades', 'hades-tty', 'hades-via-host', 'ansible', 'raw'].filter((t) => tools.includes(t));
    const head = {
      hades: 'Hades',
      'hades-tty': 'Hades, TTY view',
      'hades-via-host': 'Hades, via: host',
      ansible: 'Ansible (tuned)',
      raw: 'raw ssh (lower bound)',
    };
    L.push(`| hosts | ${cols.map((t) => head[t]).join(' | ')} | Hades ÷ raw | Ansible ÷ Hades | Hades peak RSS (median, max) |`);
    L.push(`|---:|${cols.map(() => '---').join('|')}|---:|---:|---|`);
    for (const n of sizes) {
      const st = Object.fromEntries(cols.map((t) => [t, get(n, c, t) && stats(get(n, c, t).ms)]));
      const h = get(n, c, 'hades');
      const hs = st.hades;
      const rss = h?.rssKb.length ? `${(stats(h.rssKb).median / 1024).toFixed(0)} MB, ${(Math.max(...h.rssKb) / 1024).toFixed(0)} MB` : '-';
      L.push(
        `| ${n} | ${cols.map((t) => (st[t] ? fmtStats(st[t]) : '-')).join(' | ')} | ${hs && st.raw ? `${(hs.median / st.raw.median).toFixed(2)}×` : '-'} | ${hs && st.ansible ? `${(st.ansible.median / hs.median).toFixed(1)}×` : '-'} | ${rss} |`,
      );
    }
    L.push('');
    // Growth: time per host relative to the smallest size.
    const hs0 = get(sizes[0], c, 'hades');
    if (hs0 && sizes.length > 1) {
      const base = stats(hs0.ms).median;
      const row = sizes.map((n) => {
        const h = get(n, c, 'hades');
        return h
          ? `${n} hosts: ${(stats(h.ms).median / base).toFixed(2)}× the time of ${sizes[0]} (hosts ×${(n / sizes[0]).toFixed(0)})`
          : '';
      });
      L.push(`Hades growth: ${row.filter(Boolean).join('; ')}.`, '');
    }
  }
  L.push(...bytesSent(get));
  if (sizes.length > 1) {
    const svg = `${basename(resolve(flags.out)).replace(/\.md$/, '')}-growth.svg`;
    L.push('## Growth with the number of hosts', '', ...growthTable(results), '', `![time and peak RSS against hosts](${svg})`, '');
  }
  L.push(...targets(results, planning, get));
  if (planning.length) {
    L.push('## Commands that touch no host (cold process each time)', '');
    L.push('| command | median | min–max | output |', '|---|---:|---|---:|');
    for (const p of planning)
      L.push(
        `| ${p.name} | ${Math.round(p.stats.median)} ms | ${Math.round(p.stats.min)}–${Math.round(p.stats.max)} ms | ${p.outputBytes} bytes |`,
      );
    L.push('');
  }
  return `${L.join('\n')}\n`;
}

const mib = (b) => `${(b / 2 ** 20).toFixed(2)} MiB`;

/** Bytes the orchestrator sent towards the hosts per run (counted at the delay proxies), median. */
function bytesSent(get) {
  const cols = ['hades', 'hades-tty', 'hades-via-host', 'ansible', 'raw'].filter((t) => tools.includes(t));
  const L = ['## Bytes the orchestrator sent to the hosts (counted at the delay proxies, median per run)', ''];
  L.push(`| hosts | case | ${cols.join(' | ')} |`, `|---:|---|${cols.map(() => '---:').join('|')}|`);
  for (const n of sizes)
    for (const c of cases)
      L.push(`| ${n} | ${c} | ${cols.map((t) => (get(n, c, t)?.sent.length ? mib(stats(get(n, c, t).sent).median) : '-')).join(' | ')} |`);
  return [...L, ''];
}

/** The issue's targets, checked against these results (only those this run measured). */
function targets(results, planning, get) {
  const med = (n, c, t) => (get(n, c, t) ? stats(get(n, c, t).ms).median : undefined);
  const rows = [];
  const row = (what, target, value, ok) => rows.push(`| ${what} | ${target} | ${value} | ${ok ? 'met' : '**not met**'} |`);
  if (sizes.includes(16)) {
    const h = med(16, 'fresh', 'hades');
    const r = med(16, 'fresh', 'raw');
    const a = med(16, 'fresh', 'ansible');
    if (h && r) row('fresh release, 16 hosts: Hades ÷ raw ssh', '≤ 1.3×', `${(h / r).toFixed(2)}×`, h / r <= 1.3);
    if (h && a) row('fresh release, 16 hosts: Ansible ÷ Hades', '≥ 4×', `${(a / h).toFixed(1)}×`, a / h >= 4);
    const n = med(16, 'noop', 'hades');
    if (n) row('no-op re-run, 16 hosts: Hades wall time', '≤ 1.5 s', secs(n), n <= 1500);
    const v = get(16, 'fresh', 'hades-via-host');
    if (v?.sent.length) {
      const most = Math.max(...v.sent);
      row('fresh release, 16 hosts, via: host: bytes the orchestrator sent (max of runs)', '≤ 1 MiB', mib(most), most <= 2 ** 20);
    }
  }
  if (sizes.includes(256)) {
    const h = med(256, 'fresh', 'hades');
    const r = med(256, 'fresh', 'raw');
    if (h && r) row('fresh release, 256 hosts: Hades ÷ raw ssh', '≤ 1.3×', `${(h / r).toFixed(2)}×`, h / r <= 1.3);
    const n = med(256, 'noop', 'hades');
    if (n) row('no-op re-run, 256 hosts: Hades wall time', '≤ 4 s', secs(n), n <= 4000);
  }
  // Peak RSS: ≤ 200 MB up to 64 hosts (issue 6), ≤ 300 MB at 256 (issue 16).
  for (const n of sizes.filter((x) => x === 64 || x === 256 || x === Math.max(...sizes))) {
    const rss = results.filter((x) => x.n === n && x.tool.startsWith('hades')).flatMap((x) => x.rssKb);
    const limit = n >= 256 ? 300 : 200;
    if (rss.length)
      row(
        `peak RSS of the orchestrator, ${n} hosts (max of all runs)`,
        `≤ ${limit} MB`,
        `${(Math.max(...rss) / 1024).toFixed(0)} MB`,
        Math.max(...rss) / 1024 <= limit,
      );
  }
  for (const p of planning)
    if (p.target)
      row(
        p.name,
        `≤ ${p.target >= 1000 ? `${p.target / 1000} s` : `${p.target} ms`}`,
        `${Math.round(p.stats.median)} ms`,
        p.stats.median <= p.target,
      );
  return rows.length ? ['## Targets (medians)', '', '| what | target | measured | |', '|---|---|---|---|', ...rows, ''] : [];
}

main().catch((e) => {
  log(`bench failed: ${e.stack ?? e}`);
  process.exit(1);
});
