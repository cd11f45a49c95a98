/**
 * The settings of one `oci` registry, resolved once from its hadesfile entry (url with ${VAR}
 * expanded, credentials, timeouts), and the oras calls built from them: every call carries the
 * registry's connection flags (--plain-http, --insecure) and its auth. The registry
 * (registry.ts) is these settings plus the reads (read.ts), tag state (tags.ts) and writes
 * (write.ts) built on them. `origin` and `mirrors` are the endpoints reads go to (mirrors.ts).
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OciRegistrySpec } from '../../config/model.js';
import { durationField } from '../../config/duration.js';
import { ociUrlProblem } from '../../config/oci-url.js';
import { UserError } from '../../errors.js';
import { expand } from '../../env/expand.js';
import { check } from '../push-rules.js';
import { validateName } from '../reference.js';
import { DEFAULT_ARTIFACT_TYPE } from '../types.js';
import { authHint, authSecrets, mirrorAuth, mirrorAuthHint, resolveOciAuth, type OciAuth } from './auth.js';
import { terminalSafe } from '../../terminal.js';
import { REGISTRY_AUTH_ENV } from './env-auth.js';
import { endpointCall, mirrorRepo, type OciEndpoint } from './mirrors.js';
import { DEFAULT_METADATA_TIMEOUT_MS, DEFAULT_MIN_TRANSFER_RATE, DEFAULT_TRANSFER_TIMEOUT_MS, OrasRunner, type OrasCall } from './oras.js';

export interface OciRegistryOptions {
  /** The oras binary (default: $HADES_ORAS, else "oras" on PATH). */
  oras?: string;
  /** Timeout of metadata calls: resolve, tags, names, tag (default 30 s, or $HADES_OCI_TIMEOUT). */
  timeoutMs?: number;
  /** Base timeout of transfers (copy, blob fetch); default 120 s, or $HADES_OCI_TRANSFER_TIMEOUT. */
  transferTimeoutMs?: number;
  /** Transfers get one extra second per this many bytes (default 1 MiB: a 1 GiB payload may take 120 s + 1024 s). */
  minTransferRate?: number;
  /** Where ${VAR} in url/username, password_env and SOURCE_DATE_EPOCH are read (default process.env). */
  env?: Record<string, string | undefined>;
  /** Sees the argv of every oras child before it starts. */
  onSpawn?: (argv: readonly string[]) => void;
  /** Parent of the private temp dirs (staging layouts, manifest files, auth files); default os.tmpdir(). */
  tmpDir?: string;
  /** Manifests fetched at once by tags() (default 4). */
  concurrency?: number;
  /** Hears each failed mirror read (default: a "warning: …" line on stderr). */
  onWarning?: (message: string) => void;
}

export class OciSettings {
  readonly name: string;
  /** host[:port]/prefix, with ${VAR} expanded. */
  readonly url: string;
  readonly host: string;
  readonly defaultArtifactType: string;
  readonly plainHttp: boolean;
  readonly insecure: boolean;
  readonly auth: OciAuth;
  readonly oras: OrasRunner;
  readonly env: Record<string, string | undefined>;
  readonly timeoutMs: number;
  readonly transferTimeoutMs: number;
  readonly minTransferRate: number;
  readonly tmpRoot: string;
  readonly concurrency: number;
  readonly spec: OciRegistrySpec;
  /** Where reads go: the origin (this registry's url) and the mirrors, in order. */
  readonly origin: OciEndpoint;
  readonly mirrors: readonly OciEndpoint[];
  readonly warn: (message: string) => void;

  constructor(spec: OciRegistrySpec, opts: OciRegistryOptions = {}) {
    this.spec = spec;
    this.name = spec.name;
    this.env = opts.env ?? process.env;
    const fail = (message: string, hint?: string): never => {
      throw new UserError({ message: `registry "${spec.name}": ${message}`, pos: spec.pos, ...(hint ? { hint } : {}) });
    };
    const u = expand(spec.url, this.env);
    if (u.missing.length) fail(`url uses \${${u.missing[0]}}, which is not set in the environment`, `export ${u.missing[0]}=…`);
    const why = ociUrlProblem(u.value);
    if (why)
      fail(`invalid url ${JSON.stringify(u.value)}: ${why}`, 'write host[:port]/repository-prefix, e.g. registry.example.com:5000/team');
    this.url = u.value;
    this.host = u.value.split('/')[0]!;
    this.plainHttp = spec.plainHttp;
    this.insecure = spec.insecure;
    this.defaultArtifactType = spec.artifactType ?? DEFAULT_ARTIFACT_TYPE;
    this.auth = resolveOciAuth(spec, this.env);
    const duration = (v: number | undefined, envName: string, dflt: number): number => {
      if (v !== undefined) return v;
      const text = this.env[envName];
      if (text === undefined || text === '') return dflt;
      const ms = durationField(text);
      if (ms === undefined || ms <= 0)
        throw new UserError({
          message: `${envName}=${JSON.stringify(text)} is not a duration`,
          hint: 'write e.g. 30s, 5m or a number of seconds',
        });
      return ms;
    };
    this.timeoutMs = duration(opts.timeoutMs, 'HADES_OCI_TIMEOUT', DEFAULT_METADATA_TIMEOUT_MS);
    this.transferTimeoutMs = duration(opts.transferTimeoutMs, 'HADES_OCI_TRANSFER_TIMEOUT', DEFAULT_TRANSFER_TIMEOUT_MS);
    this.minTransferRate = opts.minTransferRate ?? DEFAULT_MIN_TRANSFER_RATE;
    this.tmpRoot = opts.tmpDir ?? tmpdir();
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    const mirrorUrls = (spec.mirrors ?? []).map((m) => {
      const x = expand(m, this.env);
      if (x.missing.length) fail(`mirror uses \${${x.missing[0]}}, which is not set in the environment`, `export ${x.missing[0]}=…`);
      const bad = ociUrlProblem(x.value);
      if (bad)
        fail(`invalid mirror ${JSON.stringify(x.value)}: ${bad}`, 'write host[:port] or host[:port]/prefix, e.g. mirror.example.com:5000');
      return x.value;
    });
    const mirrorAuths = mirrorUrls.map((m) => mirrorAuth(m.split('/')[0]!, this.auth, this.env));
    const passwords = [this.auth, ...mirrorAuths].flatMap((a) => (a.kind === 'password' ? [a] : []));
    const secrets = [this.auth, ...mirrorAuths].flatMap(authSecrets);
    // The children get the environment without the password (its variable, or any other holding it).
    // ($HADES_REGISTRY_AUTH never reaches oras: the credentials it needs come on stdin.)
    const childEnv: Record<string, string | undefined> = { ...process.env };
    delete childEnv[REGISTRY_AUTH_ENV];
    for (const a of passwords) {
      delete childEnv[a.passwordEnv];
      for (const [k, v] of Object.entries(childEnv)) if (v === a.password) delete childEnv[k];
    }
    const runner = (where: string, hint: string) =>
      new OrasRunner({
        bin: opts.oras ?? (this.env.HADES_ORAS || 'oras'),
        registry: this.name,
        where,
        env: childEnv,
        secrets,
        authHint: hint,
        plainHttp: this.plainHttp,
        insecure: this.insecure,
        ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
      });
    this.oras = runner(this.url, authHint(this.auth, this.host));
    this.origin = {
      label: `origin ${this.url}`,
      url: this.url,
      host: this.host,
      mirror: false,
      auth: this.auth,
      oras: this.oras,
      repo: (name) => this.repo(name),
      call: (words, rest, o) => this.call(words, rest, o),
    };
    this.mirrors = mirrorUrls.map((url, i): OciEndpoint => {
      const auth = mirrorAuths[i]!;
      const host = url.split('/')[0]!;
      return {
        label: `mirror ${url}`,
        url,
        host,
        mirror: true,
        auth,
        oras: runner(`mirror ${url}`, mirrorAuthHint(auth, host)),
        repo: (name) => mirrorRepo(url, this.url, name),
        call: (words, rest, o) => endpointCall(auth, this.connArgs(), this.timeoutMs, words, rest, o),
      };
    });
    this.warn = opts.onWarning ?? ((message) => void process.stderr.write(`warning: ${terminalSafe(message)}\n`));
  }

  /** The repository of an artifact name: `<url>/<name>`. */
  repo(name: string): string {
    return `${this.url}/${name}`;
  }

  checkName(name: string): void {
    check(validateName(name));
  }

  /** --plain-http / --insecure, optionally with oras cp's --from-/--to- prefix. */
  connArgs(prefix: '' | 'from-' | 'to-' = ''): string[] {
    return [...(this.plainHttp ? [`--${prefix}plain-http`] : []), ...(this.insecure ? [`--${prefix}insecure`] : [])];
  }

  transferTimeout(bytes: number): number {
    return this.transferTimeoutMs + Math.ceil((Math.max(0, bytes) / this.minTransferRate) * 1000);
  }

  /** One oras call with this registry's connection and auth flags (inserted after the subcommand words). */
  call(words: string[], rest: string[], o: { timeoutMs?: number; notFound?: string; what: string }): OrasCall {
    return endpointCall(this.auth, this.connArgs(), this.timeoutMs, words, rest, o);
  }

  async withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    await fsp.mkdir(this.tmpRoot, { recursive: true });
    const dir = await fsp.mkdtemp(join(this.tmpRoot, 'hades-oci-'));
    try {
      return await fn(dir);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
}
