/**
 * The `oras` CLI as a subprocess, for the `oci` registry (registry.ts).
 *
 * Every call goes through execa (loaded on first use) with an argument array (never a shell
 * string) and a timeout.
 * Passwords reach oras only on stdin (`--password-stdin`) or in a private temporary auth file
 * (see auth.ts); the password variable itself is removed from the child's environment, and
 * every message built from oras's output has secrets redacted.
 *
 * oras exits 1 for every error, so failures are classified from the message text (the real
 * messages of oras 1.2 against distribution 2.8 are in test/unit/oci-classify.test.ts):
 * `not-found` (→ ArtifactNotFound), `auth`, `network` (refused, DNS, TLS, plain/https
 * mismatch, timeouts), `integrity` (digest or length mismatch) and `other`.
 */
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { delimiter, isAbsolute, join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { RunError } from '../../errors.js';
import { ArtifactNotFound } from '../types.js';
import { meterChild } from '../progress.js';

/**
 * The oldest oras this code works with: `manifest fetch --format json` (the registry's
 * descriptor next to the raw bytes) and `--no-tty`, both used here, first appeared in 1.2.0.
 */
export const MIN_ORAS_VERSION = '1.2.0';
export const ORAS_INSTALL_HINT =
  `install oras ${MIN_ORAS_VERSION} or newer — a single static binary from https://oras.land/docs/installation ` +
  '(Debian 13 ships it: `apt-get install oras`; .ci/install shows how to get that package on Debian 12)';

/** Default per-call timeouts. */
export const DEFAULT_METADATA_TIMEOUT_MS = 30_000;
export const DEFAULT_TRANSFER_TIMEOUT_MS = 120_000;
/** Transfers get their base timeout plus one second per MiB at this rate (bytes per second). */
export const DEFAULT_MIN_TRANSFER_RATE = 1024 * 1024;

/** How a child process ended. */
export interface ChildResult {
  /** Not exit 0 (also: killed, timed out, could not start, output too large). */
  failed: boolean;
  /** The exit code; undefined when it was killed by a signal or never started. */
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  /** The program could not be started (ENOENT, EACCES…). */
  spawnError?: NodeJS.ErrnoException;
  /** Why it was killed, when not by a timeout or the caller (its output was too large). */
  cause?: Error;
  /** Empty when stdout was handed to the caller as a stream. */
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  env: Record<string, string | undefined>;
  /** Written to stdin, then closed; without it stdin is /dev/null. */
  input?: string;
  timeoutMs: number;
  /** Hand stdout to the caller as a stream instead of collecting it. */
  streamStdout?: boolean;
  /** Collected stdout beyond this fails the call (default 16 MiB; stderr: 1 MiB). */
  maxStdout?: number;
}

/** execa loads on first use: only OCI registries need it, and importing it costs ~50–150 ms. */
let execaFn: typeof import('execa').execa | undefined;

/**
 * Runs a program through execa (argument array, no shell) with a timeout (SIGKILL). `result`
 * settles once it has exited and its collected output has been read; it never rejects.
 */
export async function runChild(
  bin: string,
  args: readonly string[],
  o: ChildOptions,
): Promise<{ stdout: Readable | null; result: Promise<ChildResult>; kill(): void }> {
  const maxStdout = o.maxStdout ?? 16 * 1024 * 1024;
  execaFn ??= (await import('execa')).execa;
  const sub = execaFn(bin, [...args], {
    reject: false,
    timeout: o.timeoutMs,
    killSignal: 'SIGKILL',
    env: o.env,
    extendEnv: false,
    stripFinalNewline: false,
    ...(o.input !== undefined ? { input: o.input } : { stdin: 'ignore' as const }),
    ...(o.streamStdout ? { buffer: { stdout: false } } : {}),
    maxBuffer: { stdout: maxStdout, stderr: 1024 * 1024 },
  });
  const stopMeter = meterChild(sub.pid); // progress of a long push/pull/copy (registry/progress.ts)
  const result = sub.then(async (r): Promise<ChildResult> => {
    await stopMeter();
    const startError =
      r.failed && r.exitCode === undefined && !r.signal && !r.timedOut ? (r.cause as NodeJS.ErrnoException | undefined) : undefined;
    return {
      failed: r.failed,
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      timedOut: r.timedOut,
      ...(startError ? { spawnError: startError } : {}),
      ...(r.isMaxBuffer ? { cause: new Error(`more output than ${maxStdout} bytes`) } : {}),
      stdout: typeof r.stdout === 'string' ? r.stdout : '',
      stderr: typeof r.stderr === 'string' ? r.stderr : '',
    };
  });
  return {
    stdout: o.streamStdout ? (sub.stdout as unknown as Readable) : null,
    result,
    kill: () => {
      sub.kill('SIGKILL');
    },
  };
}

export type OrasVersionResult = { version: string; path: string } | { error: string; version?: string; path?: string };

/** The executable a command name resolves to on PATH (or the path itself), or null. */
export async function findExecutable(bin: string, pathEnv = process.env.PATH ?? ''): Promise<string | null> {
  const candidates = bin.includes('/')
    ? [resolvePath(bin)]
    : pathEnv
        .split(delimiter)
        .filter((d) => d !== '' && isAbsolute(d))
        .map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      const st = await fsp.stat(c);
      if (!st.isFile()) continue;
      await fsp.access(c, fsConstants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

function parseVersion(v: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** -1, 0, 1 comparing dotted versions (major.minor.patch; anything after is ignored). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [0, 0, 0];
  const y = parseVersion(b) ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) if (x[i]! !== y[i]!) return x[i]! < y[i]! ? -1 : 1;
  return 0;
}

/**
 * Which oras is installed: `{version, path}` when it is usable (≥ MIN_ORAS_VERSION), otherwise
 * `{error}` (with version and path when an oras was found but is too old or broken).
 */
export async function orasVersion(bin = 'oras'): Promise<OrasVersionResult> {
  const path = await findExecutable(bin);
  if (!path) return { error: `the oras CLI was not found${bin.includes('/') ? ` at ${bin}` : ' on PATH'}: ${ORAS_INSTALL_HINT}` };
  // A minimal environment: nothing of ours (e.g. a password variable) reaches this child.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.HOME ? { HOME: process.env.HOME } : {}) };
  const r = await (await runChild(path, ['version'], { timeoutMs: 10_000, env })).result;
  const m = /Version:\s*v?(\d+\.\d+\.\d+[^\s]*)/.exec(r.stdout);
  if (r.failed || !m) {
    const why = r.timedOut
      ? 'timed out'
      : `exit ${r.exitCode ?? r.signal ?? r.spawnError?.code ?? r.cause?.message ?? '?'}: ${r.stderr.trim().slice(0, 200)}`;
    return { error: `\`${path} version\` did not report a version (${why}): ${ORAS_INSTALL_HINT}`, path };
  }
  const version = m[1]!;
  if (compareVersions(version, MIN_ORAS_VERSION) < 0)
    return { error: `oras ${version} at ${path} is older than the minimum ${MIN_ORAS_VERSION}: ${ORAS_INSTALL_HINT}`, version, path };
  return { version, path };
}

const checked = new Map<string, Promise<string>>();

/**
 * oras subcommands that only read (from the registry; a blob fetch writes into Hades's private
 * temp dir). One of these may start while `oras version` is still being checked: its result is
 * used only once the check has passed, and it is killed when the check fails. Everything else
 * (cp, push, tag, …) waits for the check.
 */
const READ_ONLY = new Set(['manifest fetch', 'repo tags', 'repo ls', 'blob fetch']);

export function isReadOnlyCall(args: readonly string[]): boolean {
  return READ_ONLY.has(`${args[0] ?? ''} ${args[1] ?? ''}`);
}

/** The path of a usable oras (checked once per process and binary); RunError otherwise. */
export function ensureOras(bin = 'oras'): Promise<string> {
  let p = checked.get(bin);
  if (!p) {
    p = orasVersion(bin).then((v) => {
      if ('error' in v) throw new RunError(v.error);
      return v.path;
    });
    checked.set(bin, p);
    p.catch(() => checked.delete(bin));
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// failures

export type OrasFailureKind = 'not-found' | 'auth' | 'network' | 'integrity' | 'other';

const AUTH_RE =
  /unauthorized|authentication required|credential not found|failed to validate the credentials|\bdenied\b|forbidden|insufficient_scope|status code 40[13]\b/i;
const NETWORK_RE =
  /connection refused|no such host|i\/o timeout|network is unreachable|no route to host|connection reset|broken pipe|\bEOF\b|\btls:|x509:|server gave HTTP response to HTTPS client|status code 400\b|deadline exceeded|TLS handshake|dial tcp|server misbehaving/i;
const INTEGRITY_RE = /mismatched digest|digest mismatch|mismatch Content-Length|content length mismatch|size mismatch/i;
const NOT_FOUND_RE = /\S: not found\b|\bname unknown\b|manifest unknown|blob unknown|repository name not known|status code 404\b/i;

/** Classifies oras's error text. Order matters: "basic credential not found" is auth, not absence. */
export function classifyOrasError(stderr: string): OrasFailureKind {
  if (AUTH_RE.test(stderr)) return 'auth';
  if (NETWORK_RE.test(stderr)) return 'network';
  if (INTEGRITY_RE.test(stderr)) return 'integrity';
  if (NOT_FOUND_RE.test(stderr)) return 'not-found';
  return 'other';
}

/** A failure talking to an oci registry. `kind` says what went wrong. */
export class OciRegistryError extends RunError {
  constructor(
    message: string,
    readonly kind: 'auth' | 'network' | 'timeout' | 'integrity' | 'other',
    readonly registry: string,
  ) {
    super(message);
    this.name = 'OciRegistryError';
  }
}

/**
 * When oras failed and Hades's own check of the bytes failed too, which error to report: oras's
 * own when it failed for a reason of its own (not found, auth, network, timeout); otherwise
 * (integrity, or unclassified) Hades's check, which names the expected and actual digests.
 */
export function isOrasOwnFailure(e: unknown): boolean {
  return e instanceof ArtifactNotFound || (e instanceof OciRegistryError && e.kind !== 'integrity' && e.kind !== 'other');
}

/** Replaces every occurrence of each secret with "***". */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    out = out.split(s).join('***');
  }
  return out;
}

/** oras's error text, one line, without its "Error:" prefixes and the advice that names ~/.docker. */
export function orasMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Please check whether the registry credential/.test(l) && !/^Usage:/.test(l))
    .map((l) => l.replace(/^Error( response from registry)?:\s*/, ''));
  const text = lines.join('; ');
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
}

// ---------------------------------------------------------------------------------------------
// running oras

export interface OrasRunnerOptions {
  /** The oras binary (default "oras" on PATH). */
  bin: string;
  /** Registry name and url, for messages. */
  registry: string;
  where: string;
  /** Environment of every oras child (the password variable already removed). */
  env: Record<string, string | undefined>;
  /** Values redacted from every message. */
  secrets: readonly string[];
  /** What to check when authentication fails (depends on how credentials are given). */
  authHint: string;
  plainHttp: boolean;
  insecure: boolean;
  /** Observes the argv of every oras child before it starts (tests prove no secret is in it). */
  onSpawn?: (argv: readonly string[]) => void;
}

export interface OrasCall {
  args: string[];
  /** Written to stdin (then closed): the password for --password-stdin. */
  input?: string;
  timeoutMs: number;
  /** The reference that is absent when oras says "not found" (else not-found is an error too). */
  notFound?: string;
  /** What was being done, for messages: "resolve myapp:v1". */
  what: string;
}

export class OrasRunner {
  constructor(readonly opts: OrasRunnerOptions) {}

  /**
   * Starts oras. `done` settles when oras has exited: its stdout (empty when streamed), or a
   * classified error when it failed — but not when `kill()` stopped it (the caller stopped
   * early). With `streamStdout` the caller owns the stdout stream and must consume it.
   */
  async start(call: OrasCall, streamStdout = false): Promise<{ stdout: Readable | null; done: Promise<string>; kill(): void }> {
    // The version check runs once per process. A read-only call doesn't wait for it (it
    // overlaps the check: ~one oras start saved per command); its result waits for it instead.
    const usable = ensureOras(this.opts.bin);
    usable.catch(() => undefined); // observed below
    const bin = isReadOnlyCall(call.args) ? ((await findExecutable(this.opts.bin)) ?? (await usable)) : await usable;
    this.opts.onSpawn?.([bin, ...call.args]);
    const child = await runChild(bin, call.args, {
      env: this.opts.env,
      timeoutMs: call.timeoutMs,
      streamStdout,
      ...(call.input !== undefined ? { input: call.input } : {}),
    });
    let killedByUs = false;
    usable.catch(() => child.kill()); // a call started ahead of a failing version check
    const done = Promise.all([usable, child.result]).then(([, r]) => {
      if (!r.failed) return r.stdout;
      if (killedByUs && r.signal !== undefined && !r.timedOut) return '';
      throw this.failure(call, r);
    });
    done.catch(() => undefined); // observed by the caller
    // A stream is handed over only once oras is known to be usable.
    if (streamStdout) await usable;
    return {
      stdout: child.stdout,
      done,
      kill: () => {
        killedByUs = true;
        child.kill();
      },
    };
  }

  /** Runs oras to completion; stdout on success, a classified error otherwise. */
  async run(call: OrasCall): Promise<string> {
    return (await this.start(call)).done;
  }

  /**
   * Starts oras with stdout as a stream; `done` settles when oras has exited (rejecting with a
   * classified error when it failed). The caller owns the stream; `kill()` ends oras early.
   */
  async stream(call: OrasCall): Promise<{ stdout: Readable; done: Promise<void>; kill(): void }> {
    const s = await this.start(call, true);
    const done = s.done.then(() => undefined);
    done.catch(() => undefined); // observed by the caller
    return { stdout: s.stdout!, done, kill: s.kill };
  }

  /** The error for a failed call. */
  failure(
    call: OrasCall,
    r: { stderr: string; timedOut: boolean; exitCode?: number; signal?: string; spawnError?: NodeJS.ErrnoException; cause?: Error },
  ): Error {
    const who = `registry "${this.opts.registry}" (${this.opts.where})`;
    const msg = redact(orasMessage(r.stderr), this.opts.secrets);
    if (r.timedOut)
      return new OciRegistryError(
        `${who}: ${call.what} timed out after ${Math.round(call.timeoutMs / 100) / 10}s — the registry did not answer in time${msg ? ` (oras: ${msg})` : ''}`,
        'timeout',
        this.opts.registry,
      );
    if (r.spawnError) return new RunError(`${who}: cannot run oras (${r.spawnError.code ?? r.spawnError.message}): ${ORAS_INSTALL_HINT}`);
    if (r.exitCode === undefined || r.cause)
      return new OciRegistryError(
        `${who}: ${call.what} failed (oras ${r.cause ? r.cause.message : `killed by ${r.signal ?? 'a signal'}`})${msg ? `: ${msg}` : ''}`,
        'other',
        this.opts.registry,
      );
    const kind = classifyOrasError(r.stderr);
    switch (kind) {
      case 'not-found':
        if (call.notFound !== undefined) return new ArtifactNotFound(this.opts.registry, call.notFound);
        return new OciRegistryError(`${who}: ${call.what}: not found (oras: ${msg})`, 'other', this.opts.registry);
      case 'auth':
        return new OciRegistryError(`authentication failed for ${who}: ${this.opts.authHint} (oras: ${msg})`, 'auth', this.opts.registry);
      case 'network':
        return new OciRegistryError(`cannot reach ${who}: ${msg}${networkHint(r.stderr, this.opts)}`, 'network', this.opts.registry);
      case 'integrity':
        return new OciRegistryError(
          `${who}: ${call.what}: the registry sent content that does not match its digest (oras: ${msg}) — the registry's storage is corrupt`,
          'integrity',
          this.opts.registry,
        );
      default:
        return new OciRegistryError(
          `${who}: ${call.what} failed (oras exit ${r.exitCode}): ${msg || 'no message'}`,
          'other',
          this.opts.registry,
        );
    }
  }
}

function networkHint(stderr: string, o: { plainHttp: boolean; insecure: boolean }): string {
  if (/server gave HTTP response to HTTPS client/i.test(stderr))
    return ' — the registry speaks plain HTTP: set plain_http: true (only for a trusted local registry)';
  if (o.plainHttp && /status code 400\b/i.test(stderr)) return ' — the registry speaks HTTPS: remove plain_http';
  if (/x509:|\btls:/i.test(stderr) && !o.insecure)
    return " — its TLS certificate does not verify: install the registry's CA in the system trust store (or, for a test registry only, set insecure: true)";
  return '';
}
