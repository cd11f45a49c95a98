/**
 * `hades history [plan] [--host H]`: one line per recorded run (when, who, plan, status,
 * duration, hosts ok/failed, artifacts → digests); `hades history show <run-id|last>`: one
 * run's summary and resolved env (as the log holds it: secrets masked). Read from the audit
 * logs; a damaged log is listed as such.
 */
import { terminalSafe } from '../terminal.js';
import { formatDuration } from '../config/duration.js';
import { EXIT, UserError } from '../errors.js';
import { listRuns, type RunArtifact, type RunRecord } from '../report/history.js';
import { formatSummary } from '../report/summary.js';
import { loadFiles } from './files.js';
import type { CommonOptions } from './options.js';
import { logDirFor } from './replay.js';

export interface HistoryOptions extends Pick<CommonOptions, 'file' | 'inventory'> {
  host?: string;
  output: 'plain' | 'json';
  logDir?: string;
}

function logDir(opts: HistoryOptions): string {
  // With --log-dir no hadesfile is needed (the logs outlive the plans they ran).
  if (opts.logDir) return logDirFor({ baseDir: process.cwd() } as never, opts.logDir);
  return logDirFor(loadFiles({ ...opts, env: [], envFile: [], secretPattern: [] }), undefined);
}

const artifactText = (a: RunArtifact, short: boolean) =>
  `${a.registry}/${a.name}${a.tag !== undefined ? `:${a.tag}` : ''}@${short ? a.digest.slice(0, 'sha256:'.length + 12) : a.digest}`;

function counts(r: RunRecord): { ok: number; failed: number } {
  const v = Object.values(r.hosts);
  return { ok: v.filter((s) => s === 'ok').length, failed: v.filter((s) => s === 'failed').length };
}

function json(r: RunRecord): Record<string, unknown> {
  const { done, file, ...rest } = r;
  return { ...rest, log: file, hostsOk: counts(r).ok, hostsFailed: counts(r).failed };
}

function line(r: RunRecord, host: string | undefined): string {
  const c = counts(r);
  const when = r.startedAt ? r.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
  const parts = [
    r.runId,
    when,
    r.user ?? '-',
    r.plan ?? (r.command !== undefined ? `(${r.command})` : '-'),
    r.status,
    r.durationMs !== undefined ? formatDuration(r.durationMs) : '-',
    `hosts ok ${c.ok} failed ${c.failed}`,
  ];
  if (host) parts.push(`${host}: ${r.hosts[host] ?? 'planned, not reached'}`);
  if (r.origin) parts.push(`${r.origin.mode} of ${r.origin.runId}`);
  const deployed = r.artifacts.filter((a) => a.kind !== 'pinned');
  if (deployed.length) parts.push(`artifacts: ${deployed.map((a) => artifactText(a, true)).join(', ')}`);
  if (r.problems.length) parts.push(`[log: ${r.problems.join('; ')}]`);
  return parts.join('  ');
}

export async function historyCommand(plan: string | undefined, opts: HistoryOptions): Promise<number> {
  const dir = logDir(opts);
  let runs = listRuns(dir);
  if (plan !== undefined) runs = runs.filter((r) => r.plan === plan);
  if (opts.host !== undefined) runs = runs.filter((r) => opts.host! in r.hosts || r.steps.some((s) => s.hosts.includes(opts.host!)));
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify({ logDir: dir, runs: runs.map(json) })}\n`);
    return EXIT.ok;
  }
  if (!runs.length) {
    const what = [plan !== undefined && `of plan "${plan}"`, opts.host !== undefined && `on host ${opts.host}`].filter(Boolean).join(' ');
    process.stdout.write(`no runs${what ? ` ${what}` : ''} recorded in ${dir}\n`);
    return EXIT.ok;
  }
  for (const r of runs) process.stdout.write(`${terminalSafe(line(r, opts.host))}\n`);
  return EXIT.ok;
}

export async function historyShowCommand(ref: string, opts: HistoryOptions): Promise<number> {
  const dir = logDir(opts);
  const runs = listRuns(dir);
  const r = ref === 'last' ? runs[runs.length - 1] : runs.find((x) => x.runId === ref);
  if (!r) {
    const recent = runs.slice(-5).map((x) => x.runId);
    throw new UserError({
      message: `history show ${ref}: no such run in ${dir}`,
      hint: recent.length ? `recent runs: ${recent.join(', ')}` : 'no runs are recorded there (--log-dir if they are elsewhere)',
    });
  }
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify({ ...json(r), done: [...r.done].map((k) => k.split('\0')) })}\n`);
    return EXIT.ok;
  }
  const out: string[] = [];
  out.push(`run ${r.runId}: plan ${r.plan ?? '?'}, ${r.status}${r.durationMs !== undefined ? ` in ${formatDuration(r.durationMs)}` : ''}`);
  out.push(`started ${r.startedAt ?? '?'} by ${r.user ?? '?'}${r.argv ? `: hades ${r.argv.join(' ')}` : ''}`);
  if (r.origin) out.push(`${r.origin.mode} of run ${r.origin.runId}`);
  out.push(`log ${r.file}`);
  for (const p of r.problems) out.push(`log problem: ${p}`);
  if (r.envFiles?.length) out.push(`env files: ${r.envFiles.join(', ')}`);
  for (const s of r.steps) {
    out.push(`step ${s.name}${s.job ? ` (job ${s.job})` : ''} on ${s.hosts.join(', ') || 'no hosts'}`);
    for (const [k, v] of Object.entries(s.env))
      out.push(`  ${k}=${JSON.stringify(v)}${s.secrets.includes(k) ? ' (secret: not recorded)' : ''}`);
  }
  if (r.artifacts.length) {
    out.push('artifacts:');
    for (const a of r.artifacts) out.push(`  ${artifactText(a, false)}${a.kind ? ` (${a.kind})` : ''}`);
  }
  if (r.summary) out.push(formatSummary(r.summary));
  process.stdout.write(`${terminalSafe(out.join('\n'))}\n`);
  return EXIT.ok;
}
