/**
 * Reads the audit logs (`.hades/runs/<run-id>.jsonl`, written by ./audit.ts) back: one
 * record per run — who, when, plan, status, hosts, the artifact digests it resolved or
 * published, its env per step and plan fingerprint. Tolerant: an empty, truncated (a run
 * killed mid-write) or corrupt log is a record that says so, never an exception.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunSummary } from '../engine/events.js';
import { UserError } from '../errors.js';
import { pairKey, type ShapeStep } from '../plan/select.js';

export interface HeaderStep {
  name: string;
  job?: string;
  env: Record<string, string>;
  /** Names of the step's secret vars: their values are never in the log. */
  secrets: string[];
  hosts: string[];
}

export interface RunArtifact {
  registry: string;
  name: string;
  tag?: string;
  digest: string;
  kind?: string;
}

export interface RunRecord {
  runId: string;
  file: string;
  plan?: string;
  /** A log of a command, not a plan run (`lock release --force`, `registry rm|gc`): its header's `command`. */
  command?: string;
  user?: string;
  startedAt?: string;
  /** The run's own status, or: 'incomplete' (no end recorded: killed, or still running), 'corrupt', 'empty'. */
  status: string;
  durationMs?: number;
  /** What is wrong with the log itself (truncated last line, corrupt lines, no header). */
  problems: string[];
  /** Final status per host (failed in any step → failed). */
  hosts: Record<string, string>;
  artifacts: RunArtifact[];
  fingerprint?: string;
  shape?: ShapeStep[];
  steps: HeaderStep[];
  /** `step\0host` pairs that ended ok (for --resume: inherited from the run it resumed, too). */
  done: Set<string>;
  /** This run was a replay/resume/rollback of another one. */
  origin?: { mode: string; runId: string };
  argv?: string[];
  envFiles?: string[];
  /** The run.end summary, when the run ended. */
  summary?: RunSummary;
}

// biome-ignore lint/suspicious/noExplicitAny: audit-log lines are untrusted JSON, read field by field and checked where each is used
type Json = Record<string, any>;

export function readRun(file: string, runId = file.replace(/^.*\//, '').replace(/\.jsonl$/, '')): RunRecord {
  const rec: RunRecord = { runId, file, status: 'empty', problems: [], hosts: {}, artifacts: [], steps: [], done: new Set() };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    rec.status = 'corrupt';
    rec.problems.push(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return rec;
  }
  if (!text.trim()) {
    rec.problems.push('the log is empty');
    return rec;
  }
  const lines = text.split('\n');
  const endsWhole = text.endsWith('\n');
  if (endsWhole) lines.pop();
  let corrupt = 0;
  let lastTs: string | undefined;
  const artifacts = new Map<string, RunArtifact>();
  const addArtifact = (a: RunArtifact) => {
    if (typeof a?.registry !== 'string' || typeof a.name !== 'string' || typeof a.digest !== 'string') return;
    const k = `${a.registry}\0${a.name}\0${a.tag ?? ''}\0${a.digest}`;
    if (!artifacts.has(k) || (artifacts.get(k)!.kind === 'pinned' && a.kind !== 'pinned'))
      artifacts.set(k, {
        registry: a.registry,
        name: a.name,
        ...(a.tag !== undefined ? { tag: a.tag } : {}),
        digest: a.digest,
        ...(a.kind ? { kind: a.kind } : {}),
      });
  };
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: Json;
    try {
      o = JSON.parse(line);
      if (!o || typeof o !== 'object') throw new Error('not an object');
    } catch {
      if (i === lines.length - 1 && !endsWhole) rec.problems.push(`line ${i + 1} is truncated (the run was killed mid-write?)`);
      else corrupt++;
      return;
    }
    if (i === 0) {
      if (o.type !== 'run.meta') return;
      readHeader(rec, o, addArtifact);
      return;
    }
    if (typeof o.ts === 'string') lastTs = o.ts;
    if (o.type === 'artifact') addArtifact(o as RunArtifact);
    else if (o.type === 'host.end' && typeof o.host === 'string') {
      if (o.status === 'ok' && typeof o.step === 'string') rec.done.add(pairKey(o.step, o.host));
      if (rec.hosts[o.host] !== 'failed') rec.hosts[o.host] = String(o.status);
    } else if (o.type === 'run.end') {
      rec.status = String(o.status);
      if (typeof o.durationMs === 'number') rec.durationMs = o.durationMs;
      if (o.summary && Array.isArray(o.summary.steps)) rec.summary = o.summary as RunSummary;
    }
  });
  if (corrupt) rec.problems.push(`${corrupt} corrupt line(s) skipped`);
  if (rec.plan === undefined && rec.command !== undefined) {
    rec.status = 'command'; // a record of what one command did: no run to end
  } else if (rec.plan === undefined) {
    rec.status = 'corrupt';
    rec.problems.unshift('no run header (first line): not a Hades audit log, or corrupt');
  } else if (rec.status === 'empty') {
    rec.status = 'incomplete';
    rec.problems.push('no end recorded (the run was killed, or is still running)');
    if (rec.startedAt && lastTs) rec.durationMs = Date.parse(lastTs) - Date.parse(rec.startedAt);
  }
  rec.artifacts = [...artifacts.values()];
  return rec;
}

function readHeader(rec: RunRecord, o: Json, addArtifact: (a: RunArtifact) => void): void {
  if (typeof o.runId === 'string') rec.runId = o.runId;
  if (typeof o.plan === 'string') rec.plan = o.plan;
  if (typeof o.command === 'string') rec.command = o.command;
  if (typeof o.user === 'string') rec.user = o.user;
  if (typeof o.ts === 'string') rec.startedAt = o.ts;
  if (typeof o.fingerprint === 'string') rec.fingerprint = o.fingerprint;
  if (Array.isArray(o.shape)) rec.shape = o.shape;
  if (Array.isArray(o.argv)) rec.argv = o.argv;
  if (Array.isArray(o.envFiles)) rec.envFiles = o.envFiles;
  if (Array.isArray(o.steps))
    rec.steps = o.steps.map((s: Json) => ({
      name: String(s.name),
      ...(s.job ? { job: String(s.job) } : {}),
      env: s.env ?? {},
      secrets: Array.isArray(s.secrets) ? s.secrets : [],
      hosts: Array.isArray(s.hosts) ? s.hosts : [],
    }));
  const origin = o.origin as Json | undefined;
  if (origin && typeof origin.runId === 'string') {
    rec.origin = { mode: String(origin.mode), runId: origin.runId };
    // A resume's own log carries what it skipped and the digests it pinned: chains keep them.
    if (Array.isArray(origin.done)) for (const p of origin.done) if (Array.isArray(p)) rec.done.add(pairKey(String(p[0]), String(p[1])));
    if (Array.isArray(origin.pins)) for (const a of origin.pins) addArtifact({ ...a, kind: 'pinned' });
  }
}

/**
 * Every run in `dir`, oldest first: by start time (the header's, to the millisecond — run
 * ids are to the second), then id. A missing directory has none.
 */
export function listRuns(dir: string): RunRecord[] {
  if (!existsSync(dir)) return [];
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => readRun(join(dir, f)));
  // A log without a header still has its id's time (YYYYMMDDTHHMMSSZ).
  const at = (r: RunRecord) => r.startedAt ?? r.runId.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z.*$/, '$1-$2-$3T$4:$5:$6.000Z');
  return runs.sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
}

/**
 * The run `ref` names (a run id, or `last`: the latest run of `plan`), usable for a
 * resume or replay of `plan`: exit 2 naming the problem otherwise.
 */
export function findRun(dir: string, ref: string, plan: string, flag: string): RunRecord {
  const runs = listRuns(dir);
  let rec: RunRecord | undefined;
  if (ref === 'last') {
    rec = runs.filter((r) => r.plan === plan).pop();
    if (!rec)
      throw new UserError({
        message: `${flag} last: no run of plan "${plan}" in ${dir}`,
        hint: 'hades history lists the runs recorded there (--log-dir if they are elsewhere)',
      });
  } else {
    rec = runs.find((r) => r.runId === ref);
    if (!rec) {
      const recent = runs.slice(-5).map((r) => r.runId);
      throw new UserError({
        message: `${flag} ${ref}: no such run in ${dir}`,
        hint: recent.length
          ? `recent runs: ${recent.join(', ')} (hades history lists them)`
          : 'no runs are recorded there yet (--log-dir if they are elsewhere)',
      });
    }
  }
  usable(rec, plan, flag);
  return rec;
}

export function usable(rec: RunRecord, plan: string, flag: string): void {
  if (rec.status === 'corrupt' || rec.status === 'empty' || !rec.steps.length)
    throw new UserError({
      message: `${flag} ${rec.runId}: its audit log cannot be used (${rec.problems.join('; ') || 'no env recorded'})`,
      hint: `look at ${rec.file}; pick another run with hades history`,
    });
  if (rec.plan !== plan)
    throw new UserError({
      message: `${flag} ${rec.runId}: that run is of plan "${rec.plan}", not "${plan}"`,
      hint: `hades plan ${rec.plan} ${flag} ${rec.runId}, or pick a run of "${plan}" with hades history ${plan}`,
    });
}
