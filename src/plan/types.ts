/**
 * The RunPlan: a plain, serialisable object — steps → batches → hosts → actions — with
 * every generated command already built and quoted. `--dry-run` prints it; the engine
 * executes the very same object. Nothing here is computed at run time except the
 * documented remote checks (e.g. "skip if sha256 = …").
 */
import type { Position } from '../errors.js';

export type ByteSource =
  /** An orchestrator file: its digest is taken when the step runs (an earlier step may build it). */
  | { type: 'file'; path: string }
  /** `uses`: the env vars a template's render read (a render that read a secret is never shown, nor its digest). */
  | { type: 'inline'; content: string; sha256: string; size: number; origin: string; uses?: string[] };

interface BaseEntry {
  index: number; // position in the job's action list (0-based)
  /** Display name: the action's `name`, else a short summary. */
  title: string;
  become?: string;
  pos: Position;
}

export interface RunEntry extends BaseEntry {
  kind: 'run';
  command: string; // the user's command, as written (the shell expands $VARS)
  exec: string; // exactly what the transport runs; env arrives on stdin
}

export interface MkdirEntry extends BaseEntry {
  kind: 'mkdir';
  path: string;
  mode: number;
  owner?: string;
  group?: string;
  exec: string; // prints "unchanged" or "changed"
}

/** copy and template: a file delivered atomically, skipped when identical. */
export interface FileEntry extends BaseEntry {
  kind: 'copy' | 'template';
  source: ByteSource;
  dst: string;
  mode: number;
  owner?: string;
  group?: string;
  /** Temp file beside dst that the bytes land in before the verified rename. */
  tmp: string;
  /**
   * The check (prints "unchanged"/"changed"; exit 3: parent dir missing) and the write
   * (stdin → tmp, fsync, sha256 verified on the host, chmod/chown, rename) are built by
   * fileCheckCommand/fileWriteCommand from these fields and the source's sha256 — at plan
   * time for inline content, when the step runs for orchestrator files.
   */
}

export interface WaitEntry extends BaseEntry {
  kind: 'wait';
  message?: string;
  timeoutMs?: number;
  durationMs?: number;
}

/** push: publish a job artifact (file or directory on the orchestrator) to a registry. */
export interface PushEntry extends BaseEntry {
  kind: 'push';
  registry: string;
  artifact: string; // the job artifact's name
  path: string; // absolute, on the orchestrator
  name: string;
  tag: string;
  tags: string[]; // extra tags
  semverAliases: boolean;
  artifactType?: string;
}

/** pull: deliver an artifact from a registry to the step's hosts. */
export interface PullEntry extends BaseEntry {
  kind: 'pull';
  registry: string;
  name: string;
  tag?: string;
  digest?: string;
  to: string;
  mode: number;
  owner?: string;
  group?: string;
  /** Extract a tar (or tar.gz) file artifact into `to`; directory artifacts always extract. */
  extract: boolean;
  tmp: string;
}

/** promote: copy name:tag between registries by digest; no host involved. */
export interface PromoteEntry extends BaseEntry {
  kind: 'promote';
  from: string;
  to: string;
  name: string;
  tag: string;
  asTag?: string;
}

export type ActionEntry = RunEntry | MkdirEntry | FileEntry | WaitEntry | PushEntry | PullEntry | PromoteEntry;

export interface PlannedCommand {
  command: string;
  exec: string;
}

export interface PlannedHost {
  host: string;
  addr: string;
  user?: string;
  port?: number;
  transport: 'ssh' | 'local';
  /** The env the job's commands get on this host (step env + HADES_* built-ins). */
  env: Record<string, string>;
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
  parallelism?: string; // as written: "2", "50%"
  batchSize: number;
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
  steps: PlannedStep[];
  /** Names of variables treated as secrets (values redacted in every output). */
  secretNames: string[];
}
