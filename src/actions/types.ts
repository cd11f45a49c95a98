/**
 * The small interface every action kind implements:
 *  - plan(): pure — from the job's action spec and the host's env to a fully built entry
 *    (every structured field expanded, validated and quoted into commands);
 *  - describe(): the dry-run lines for an entry;
 *  - run(): executes the entry against a transport (never schedules, never reports directly).
 */
import type { ActionSpec, HostSpec, JobSpec } from '../config/model.js';
import type { Problem, Problems, Position } from '../errors.js';
import type { ActionEntry, PlannedHost } from '../plan/types.js';
import type { Transport } from '../transport/types.js';
import type { ArtifactDescriptor, Registry } from '../registry/types.js';

/** A template source read before planning (planning itself does no I/O). */
export interface FileFact {
  path: string;
  /** Why the file cannot be used (missing, unreadable, a directory); `text` is then absent. */
  error?: string;
  text?: string;
}

export interface Sources {
  get(path: string): FileFact | undefined;
  /** Paths the planner asked for but did not have (the CLI reads them and plans again). */
  need(path: string): void;
  /** True when the planner asked for sources it did not have: its result is incomplete. */
  pending(): boolean;
}

export interface PlanContext {
  plan: string;
  runId: string;
  step: { name: string; index: number };
  targets: string[];
  job: JobSpec;
  action: ActionSpec;
  host: HostSpec;
  /** The env of the job on this host, built-ins included: structured fields expand from it. */
  env: Record<string, string>;
  become?: string;
  sources: Sources;
  problems: Problems;
  /** `${VAR}`-expand a structured field; missing vars become problems at `pos`. */
  expand(value: string, field: string): string;
  fieldPos(field: string): Position;
}

export type ActionStatus = 'ok' | 'changed' | 'unchanged';

export interface ActionOutcome {
  status: ActionStatus;
  /** Extra detail for reports, e.g. "sent 1.2 MB". */
  detail?: string;
  /** Variables the job's later actions receive (e.g. HADES_ARTIFACT_DIGEST after push/pull). */
  env?: Record<string, string>;
}

/** Registries during a run: tags resolved once, payloads read and verified once. */
export interface ArtifactAccess {
  registry(name: string): Registry;
  resolve(registry: string, name: string, ref: { tag?: string; digest?: string }): Promise<ArtifactDescriptor>;
  /** A local, verified copy of the artifact's payload layer (read once per run, cached by digest). */
  materialize(desc: ArtifactDescriptor): Promise<string>;
  /** Checks an archive payload's entries before extraction (once per digest per run). */
  inspectArchive(desc: ArtifactDescriptor, localPath: string): Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }>;
}

export type GateAnswer = 'approved' | 'declined' | 'timeout' | 'no-tty';
export interface Gatekeeper {
  approve(req: { step: string; message: string; timeoutMs?: number; signal: AbortSignal }): Promise<GateAnswer>;
}

export interface ActionRuntime {
  transport: Transport;
  host: PlannedHost;
  step: string;
  /** Aborted on the second Ctrl-C (or an immediate abort): kill what runs. */
  signal: AbortSignal;
  /** Aborted on the first Ctrl-C: long waits (timed pauses) end early. */
  stopSignal: AbortSignal;
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  gate: Gatekeeper;
  /** Orchestrator files: digest taken once per run (cached), and streams of their bytes. */
  files: SourceFiles;
  artifacts: ArtifactAccess;
  /** The env commands get now: the host's env plus what earlier actions of the job added. */
  env: Record<string, string>;
}

export interface SourceFiles {
  digest(path: string): Promise<{ sha256: string; size: number }>;
  open(path: string): NodeJS.ReadableStream;
}

export interface ActionModule<E extends ActionEntry = ActionEntry> {
  kind: E['kind'];
  plan(spec: unknown, ctx: PlanContext): E | undefined;
  describe(entry: E): string[];
  run(entry: E, rt: ActionRuntime): Promise<ActionOutcome>;
}

/** An action failed for a reason worth one clear line. */
export class ActionFailure extends Error {
  constructor(
    message: string,
    readonly exitCode?: number | null,
  ) {
    super(message);
    this.name = 'ActionFailure';
  }
}

/** A gate was declined (exit code 3). */
export class GateDeclined extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GateDeclined';
  }
}
