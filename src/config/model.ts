/**
 * The typed model of one or more loaded hadesfiles, after schema and semantic checks.
 * Values are still unexpanded (`${VAR}` stays as written): env resolution and the
 * planner expand them. Every entity keeps the position it was declared at, so later
 * stages (env contracts, planning) can report `file:line:col` too.
 */
import type { Position } from '../errors.js';
import type { RetryPolicy } from './attempts.js';

/** A file mode already checked and parsed from its source token (0644, "0644", 0o644). */
export type Mode = number;

/** `become: true` → root; a string → that user. Undefined → no privilege change. */
export type Become = string | undefined;

export interface HostSpec {
  name: string;
  addr: string; // address or DNS name; for local hosts "localhost"
  user?: string;
  port?: number; // undefined = ssh config / 22
  identityFile?: string; // absolute, ~ expanded, relative to the declaring file
  passphraseEnv?: string; // env var holding the identity_file passphrase
  local: boolean; // actions run on the orchestrator's own shell
  jump?: string; // host name or user@addr:port
  connectTimeoutMs?: number;
  become?: Become;
  /** `lock_dir:` where this host's deploy lock lives: absolute, or `~/…` (the login user's home on the host). */
  lockDir?: string;
  /** Inventory order across all loaded files (0-based). Deterministic ordering uses this. */
  order: number;
  pos: Position;
  /** Host is the built-in `localhost` (not declared in any file). */
  builtin?: boolean;
}

export interface EnvContractVar {
  required: boolean;
  default?: string;
  pos: Position;
}

export interface ActionSpec {
  kind: string; // one of ACTION_KINDS
  name?: string;
  /** The action's value as written (string for run, object for the others), unexpanded. */
  spec: unknown;
  become?: Become;
  /** `timeout:` (ms): each attempt is killed on the host after this long. */
  timeoutMs?: number;
  /** `retries:` (+ `delay:`, `backoff:`); absent: one attempt. */
  retry?: RetryPolicy;
  index: number;
  pos: Position;
  /** Positions of the action's fields (e.g. "mode", "path") for precise errors later. */
  fieldPos: Record<string, Position>;
}

/** A job artifact (config/artifact-spec.ts). Paths absolute (or `${…}` still unexpanded). */
export interface ArtifactSpec {
  /** The payload; '' for a multi-platform artifact. */
  path: string;
  /** One payload per platform (os/arch[/variant], normalised), in the order written. */
  platforms?: { platform: string; path: string }[];
  /** `config:`: the JSON bytes stored as the manifest's config blob (read when the file was loaded). */
  config?: { data: Buffer; source: string; pos?: Position };
  configMediaType?: string;
  pos: Position;
}

export interface JobSpec {
  name: string;
  local: boolean;
  guard?: { if: string; pos: Position };
  /** undefined = no contract (job receives all step/plan vars). */
  env?: Record<string, EnvContractVar>;
  artifacts: Record<string, ArtifactSpec>;
  actions: ActionSpec[];
  become?: Become;
  /** `default_timeout:` (ms) for the job's actions that set no `timeout` (not gates). */
  defaultTimeoutMs?: number;
  /** Directory of the declaring file: relative `src:` paths resolve against it. */
  baseDir: string;
  pos: Position;
}

export type Parallelism = { kind: 'count'; n: number } | { kind: 'percent'; percent: number };
/** `max_failures`: a count of hosts (0 or more) or a percent of the step's hosts (rounded down). */
export type FailureBudget = { kind: 'count'; n: number } | { kind: 'percent'; percent: number };

export interface StepSpec {
  name: string;
  job: string;
  targets: string[];
  limit?: number;
  /** One batch size, or a list (progressive batches: the last size repeats until the hosts are done). */
  parallelism?: Parallelism | Parallelism[];
  /** Failed hosts the step tolerates, counted across all its batches (undefined = 0). */
  maxFailures?: FailureBudget;
  env: Record<string, string>;
  envPos: Record<string, Position>;
  pos: Position;
}

export interface PlanSpec {
  name: string;
  env: Record<string, string>;
  envPos: Record<string, Position>;
  steps: StepSpec[];
  /** `default_timeout:` (ms) for the plan's actions whose action and job set none. */
  defaultTimeoutMs?: number;
  /** `on_start` / `on_success` / `on_failure`: local commands, in order (absent when none). */
  hooks?: { on_start: string[]; on_success: string[]; on_failure: string[] };
  /** Directory of the declaring file: the hooks run there. */
  baseDir?: string;
  pos: Position;
}

/** `sign:` / `sign_with:` — an SSH key that signs what is published (README "Trust"). */
export interface SignKeySpec {
  key: string; // absolute; a .pub key signs through ssh-agent
  passphraseEnv?: string;
}

/** `verify:` — deliver only artifacts signed by a principal of this OpenSSH allowed_signers file. */
export interface VerifySpec {
  allowedSigners: string; // absolute
}

/** Trust settings every registry type may carry. */
export interface RegistryTrust {
  signWith?: SignKeySpec;
  verify?: VerifySpec;
}

export interface FilesystemRegistrySpec extends RegistryTrust {
  name: string;
  type: 'filesystem';
  path: string; // absolute
  artifactType?: string;
  pos: Position;
}

export interface OciRegistrySpec extends RegistryTrust {
  name: string;
  type: 'oci';
  url: string;
  plainHttp: boolean;
  insecure: boolean;
  artifactType?: string;
  username?: string;
  passwordEnv?: string;
  registryConfig?: string; // absolute
  /** host[:port][/prefix] each, in order (tried before the origin for reads by digest). */
  mirrors?: string[];
  pos: Position;
}

export type RegistrySpec = FilesystemRegistrySpec | OciRegistrySpec;

export interface Hadesfile {
  /** The files that were loaded, in load order (absolute paths). */
  files: string[];
  /** Directory of the first file: .env, .hades/ (audit logs) live here. */
  baseDir: string;
  hosts: Map<string, HostSpec>; // insertion order = inventory order
  targets: Map<string, { hosts: string[]; pos: Position }>;
  jobs: Map<string, JobSpec>;
  plans: Map<string, PlanSpec>;
  registries: Map<string, RegistrySpec>;
  knownHosts: string[]; // absolute paths of extra known_hosts files
  secretPatterns: string[]; // extra glob patterns (in addition to the defaults)
}

/** The action kinds, in registration order (generated from the action modules at build time). */
export { ACTION_KINDS } from './schema-validator.generated.js';

export const BUILTIN_ENV = ['HADES_PLAN', 'HADES_RUN_ID', 'HADES_STEP', 'HADES_TARGET', 'HADES_HOST_NAME', 'HADES_HOST_ADDR'] as const;
