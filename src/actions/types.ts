/**
 * The small interface every action kind implements:
 *  - plan(): pure — from the job's action spec and the host's env to a fully built entry
 *    (every structured field expanded, validated and quoted into commands);
 *  - describe(): the dry-run lines for an entry;
 *  - run(): executes the entry against a transport (never schedules, never reports directly).
 */
import type { ActionCheck } from '../config/action-kinds.js';
import type { RetryPolicy } from '../config/attempts.js';
import type { VisibleArtifact } from '../config/artifact-refs.js';
import type { ActionSpec, HostSpec, JobSpec, RegistrySpec } from '../config/model.js';
import type { Problem, Problems, Position } from '../errors.js';
import type { Transport } from '../transport/types.js';
import type { ArtifactDescriptor, Registry } from '../registry/types.js';
import type { CheckChange } from './inspect.js';

/** Where a delivered file's bytes come from. */
export type ByteSource =
  /** An orchestrator file: its digest is taken when the step runs (an earlier step may build it). */
  | { type: 'file'; path: string /** An artifact of an earlier step: where it is declared (shown in dry-run). */; from?: string }
  /** `uses`: the env vars a template's render read (a render that read a secret is never shown, nor its digest). */
  | { type: 'inline'; content: string; sha256: string; size: number; origin: string; uses?: string[] };

/** What every planned action entry carries; each kind's module declares its own entry on top. */
export interface BaseEntry {
  kind: string;
  index: number; // position in the job's action list (0-based)
  /** Display name: the action's `name`, else a short summary. */
  title: string;
  become?: string;
  pos: Position;
  /** Each attempt is killed on the host after this long (the action's `timeout`, else the job's or plan's `default_timeout`). */
  attemptTimeoutMs?: number;
  /** `retries: N` (+ delay, backoff): a failed attempt is tried again, up to `attempts` in all. */
  retry?: RetryPolicy;
}

/** What an action sees of the planned host it runs on. */
export interface HostFacts {
  host: string;
  addr: string;
  user?: string;
  port?: number;
  transport: 'ssh' | 'local';
  /** The env the job's commands get on this host (step env + HADES_* built-ins). */
  env: Record<string, string>;
}

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
  /** Artifacts declared by the jobs of earlier steps of the plan (the job's own are in job.artifacts). */
  artifacts?: Map<string, VisibleArtifact>;
  /** The hadesfile's registries (their `sign_with:` / `verify:` defaults). */
  registries?: Map<string, RegistrySpec>;
  problems: Problems;
  /** `${VAR}`-expand a structured field; missing vars become problems at `pos`. */
  expand(value: string, field: string): string;
  fieldPos(field: string): Position;
  /**
   * Why a value that is stored for good (a push's annotations, its config blob) would carry a
   * secret — `raw` as written uses a secret `${NAME}`, or `text` holds a secret var's value —
   * else undefined (plan/secret-refs.ts).
   */
  secretIn?(raw: string | undefined, text: string | undefined): string | undefined;
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
  /**
   * With `platform`: an image index resolves to that platform's entry (a single manifest
   * ignores it). Without: an index rejects with PlatformNeeded (registry/types.ts).
   */
  resolve(registry: string, name: string, ref: { tag?: string; digest?: string }, platform?: string): Promise<ArtifactDescriptor>;
  /** A host's platform (os/arch[/variant]): `detect` runs once per host per run, the result is kept. */
  hostPlatform?(host: string, detect: () => Promise<string>): Promise<string>;
  /** A local, verified copy of the artifact's payload layer (read once per run, cached by digest). */
  materialize(desc: ArtifactDescriptor): Promise<string>;
  /** Checks an archive payload's entries before extraction (once per digest per run). */
  inspectArchive(desc: ArtifactDescriptor, localPath: string): Promise<{ gzip: boolean; stripComponents: number; problems: Problem[] }>;
  /** Notes a digest the run resolved or published (the audit log keeps it: history, --resume, --replay). */
  record?(rec: ArtifactRecord): void;
  /**
   * Checks the artifact's signatures against an allowed_signers file, once per run per
   * (file, registry, name, digest); rejects (fail closed) unless a valid signature is found.
   */
  verifySignature?(desc: ArtifactDescriptor, ref: string, allowedSigners: string): Promise<{ principal: string; key: string }>;
}

/** registry, name, tag → manifest digest, as one run saw it. */
export interface ArtifactRecord {
  registry: string;
  name: string;
  tag?: string;
  digest: string;
  kind: 'pull' | 'push' | 'promote';
}

export type GateAnswer = 'approved' | 'declined' | 'timeout' | 'no-tty';
export interface Gatekeeper {
  approve(req: { step: string; message: string; timeoutMs?: number; signal: AbortSignal }): Promise<GateAnswer>;
}

export interface ActionRuntime {
  transport: Transport;
  host: HostFacts;
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
  /** Reports one attempt of a polling action (health): an `action.attempt` event. */
  attempt(a: AttemptReport): void;
  /** Bytes moved so far by a transfer (of `total`, when known): rate-limited `action.progress` events. */
  progress?(bytes: number, total?: number): void;
}

export interface AttemptReport {
  /** 1-based. */
  attempt: number;
  ok: boolean;
  /** What was seen ("answered 503", "connection refused"). */
  message: string;
  durationMs: number;
}

export interface SourceFiles {
  digest(path: string): Promise<{ sha256: string; size: number }>;
  open(path: string): NodeJS.ReadableStream;
}

/**
 * One action kind. Adding a kind = one module implementing this + one line in ./index.ts:
 * its schema fragment goes into schemas/hadesfile.schema.json at build time
 * (scripts/build-schema.mjs), its `check` runs in the loader, `plan` in the planner.
 */
export interface ActionModule<E extends BaseEntry = BaseEntry> {
  kind: E['kind'];
  /** JSON Schema of the action's value (the `copy:` map, the `run:` string, …). */
  schema: Record<string, unknown>;
  /** Once per step on the orchestrator (not once per host) when a job holds this kind. */
  runsOnOrchestrator?: boolean;
  /** Takes `retries`/`delay`/`backoff` (the engine's action loop retries a failed attempt). */
  retryable?: boolean;
  /** Why the action-level `timeout` does not apply (a gate has its own): it is refused, and `default_timeout` skips the kind. */
  noTimeout?: { why: string; hint: string };
  /** Checks of the value as written that need only the file (the loader runs them). */
  check?(c: ActionCheck): void;
  plan(spec: unknown, ctx: PlanContext): E | undefined;
  describe(entry: E): string[];
  run(entry: E, rt: ActionRuntime): Promise<ActionOutcome>;
  /** `--check`: the read-only half — what run() would change, found without writing (./inspect.ts). Absent: "would run". */
  inspect?(entry: E, rt: ActionRuntime): Promise<CheckChange>;
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
