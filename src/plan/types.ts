/**
 * The RunPlan: a plain, serialisable object — steps → batches → hosts → actions — with
 * every generated command already built and quoted. `--dry-run` prints it; the engine
 * executes the very same object. Nothing here is computed at run time except the
 * documented remote checks (e.g. "skip if sha256 = …").
 */
import type { ActionEntry } from '../actions/index.js';
import type { HostFacts } from '../actions/types.js';
import type { Position } from '../errors.js';
import type { Selection } from '../inventory/selection.js';

export type { ActionEntry } from '../actions/index.js';
export type { BaseEntry, ByteSource } from '../actions/types.js';
export type { FileEntry } from '../actions/deliver.js';
export type { MkdirEntry } from '../actions/mkdir.js';
export type { PromoteEntry } from '../actions/promote.js';
export type { PullEntry } from '../actions/pull.js';
export type { PushEntry } from '../actions/push.js';
export type { RunEntry } from '../actions/run.js';
export type { WaitEntry } from '../actions/wait.js';

export interface PlannedCommand {
  command: string;
  exec: string;
}

export interface PlannedHost extends HostFacts {
  guard?: PlannedCommand;
  actions: ActionEntry[];
}

export interface PlannedBatch {
  index: number;
  hosts: PlannedHost[];
}

export interface PlannedStep {
  index: number;
  name: string;
  job: string;
  targets: string[];
  /** 'orchestrator': once per step on the orchestrator (local job, or a job with wait/push/promote). */
  runsOn: 'hosts' | 'orchestrator';
  runsOnReason?: string;
  limit?: number;
  parallelism?: string; // as written: "2", "50%", a list as "1, 10%, 100%"
  batchSize: number;
  /** Progressive batches (a parallelism list): each batch's size, in order. */
  batchSizes?: number[];
  /** `max_failures` as a number of hosts (of this step's hosts), and as written. Absent = 0. */
  maxFailures?: number;
  maxFailuresAsWritten?: string;
  /** Why the step has no hosts to run on (e.g. `--limit` selects none of them): reported as skipped. */
  skipped?: string;
  /** Hosts the targets resolve to, before `limit`, in inventory order. */
  candidates: string[];
  batches: PlannedBatch[];
  /** The env the job receives in this step (without the per-host built-ins). */
  env: Record<string, string>;
  pos: Position;
}

export interface RunPlan {
  version: 1;
  runId: string;
  plan: string;
  files: string[];
  /** `--limit`: the patterns given and the hosts they select (inventory order). */
  selection?: Selection;
  steps: PlannedStep[];
  /** Names of variables treated as secrets (values redacted in every output). */
  secretNames: string[];
  /** `--resume` / `--replay` / `hades rollback`: the earlier run this one continues or replays. */
  origin?: RunOrigin;
  /** `--offline`: no registry is contacted; the artifacts (this many digests) come from this cache, checked before the run. */
  offline?: { cacheDir: string; artifacts: number };
  /** `--steps` / `--from-step` as given: the other steps are skipped. */
  stepSelection?: { steps?: string[]; fromStep?: string };
  /** The host locks the run takes (absent with --no-lock). */
  locks?: PlannedLock[];
  /** The plan's hooks, when it has any. */
  hooks?: PlannedHooks;
}

export interface RunOrigin {
  mode: 'resume' | 'replay' | 'rollback';
  runId: string;
  /** That run's status (as its audit log says). */
  status: string;
  startedAt?: string;
  /** The digests its pulls/promotes are pinned to (registry, name, tag → digest). */
  pins: Array<{ registry: string; name: string; tag: string; digest: string }>;
  /** `registry/name:tag` that run never resolved: looked up now. */
  unpinned: string[];
  /** Secret vars whose values come from the current environment (the log keeps names only). */
  secretsFromEnv: string[];
  /** Steps that run did not have: their env is today's. */
  newSteps?: string[];
  /** `--resume`: the (step, host) pairs left out, because they ended ok in that run. */
  done: Array<[string, string]>;
  /** What differs from that run's plan shape (a resume needs --force for it). */
  shapeChanged?: string[];
}

/** A host's deploy lock (src/engine/lock.ts): taken before step 1, released at the end. */
export interface PlannedLock {
  host: string;
  transport: 'ssh' | 'local';
  /** The lock directory as configured (`~/…` is the login user's home on the host). */
  dir: string;
  /** The lock itself: `<dir>/<host>.lock`. */
  path: string;
  /** Takes it (run after `HADES_LOCK_RECORD=<the run's lock record>; `, see shell/lock.ts lockRecordPrefix). */
  acquire: string;
  /** Makes a lock taken in the parallel phase final (`state: trying` → `held`; run after the record prefix too). */
  confirm: string;
  /** Gives it back (only if it is still this run's). */
  release: string;
}

/** Plan-level hooks (local commands on the orchestrator, the run summary as JSON on stdin). */
export interface PlannedHooks {
  /** The hadesfile's directory: where the hooks run. */
  cwd: string;
  on_start: string[];
  on_success: string[];
  on_failure: string[];
}
