/**
 * One parsed hadesfile → typed declarations (hosts, targets, jobs, plans, registries), plus
 * the checks that need only that file (modes, one action per item; each action kind's own
 * checks, e.g. copy's src xor artifact, come from its module through `kinds`).
 *
 * The input has already been through the JSON schema, whose errors are reported separately;
 * this code is tolerant of whatever the schema rejected (it skips such values silently, so a
 * mistake is reported once) and never throws on malformed input.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Position, Problem } from '../errors.js';
import type { ActionKindTable } from './action-kinds.js';
import { ENV_NAME } from '../shell/command.js';
import { ATTEMPT_FIELDS, positiveDuration, readAttemptFields } from './attempts.js';
import { parseDuration } from './duration.js';
import { parseModeToken } from './mode.js';
import {
  ACTION_KINDS,
  BUILTIN_ENV,
  type ActionSpec,
  type Become,
  type EnvContractVar,
  type HostSpec,
  type JobSpec,
  type FailureBudget,
  type Parallelism,
  type PlanSpec,
  type RegistrySpec,
  type StepSpec,
} from './model.js';
import { buildArtifactSpec } from './artifact-spec.js';
import { ociUrlProblem } from './oci-url.js';
import { describe } from './schema-errors.js';
import { registryTrust } from './trust.js';
import type { Locator, Path } from './yaml-positions.js';

export interface SourceFile {
  abs: string;
  /** As shown in messages: relative to cwd when inside it, else absolute. */
  display: string;
  dir: string;
  role: 'main' | 'inventory';
  loc?: Locator;
  data?: unknown;
  /** False when the YAML did not parse: its declarations are unknown. */
  parsed: boolean;
}

export interface HostDecl {
  spec: HostSpec;
  file: SourceFile;
  jumpPos?: Position;
}
export interface TargetDecl {
  name: string;
  hosts: string[];
  hostPos: Position[];
  pos: Position;
  file: SourceFile;
}
export interface StepRefs {
  jobPos: Position;
  targetPos: Position[];
}
export interface PlanDecl {
  plan: PlanSpec;
  steps: StepRefs[];
  file: SourceFile;
}
export interface FileDecls {
  hosts: HostDecl[];
  targets: TargetDecl[];
  jobs: Array<{ job: JobSpec; file: SourceFile }>;
  plans: PlanDecl[];
  registries: Array<{ reg: RegistrySpec; file: SourceFile }>;
  knownHosts: string[];
  secretPatterns: string[];
  /** Every name declared in the file, even those whose bodies are broken (no cascading "unknown" errors). */
  names: { hosts: Set<string>; targets: Set<string>; jobs: Set<string>; registries: Set<string> };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const q = (s: string): string => JSON.stringify(s);
const BUILTIN = new Set<string>(BUILTIN_ENV);

/** `~` / `~/x` → home; relative → against `dir`. A value starting with `$` stays as written (expanded later). */
export function resolveUserPath(dir: string, p: string): string {
  if (p.startsWith('$')) return p;
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? resolve(p) : resolve(dir, p);
}

export function buildFile(f: SourceFile, problems: Problem[], kinds: ActionKindTable): FileDecls {
  const out: FileDecls = {
    hosts: [],
    targets: [],
    jobs: [],
    plans: [],
    registries: [],
    knownHosts: [],
    secretPatterns: [],
    names: { hosts: new Set(), targets: new Set(), jobs: new Set(), registries: new Set() },
  };
  if (!f.loc || !isObj(f.data)) return out;
  const loc: Locator = f.loc;
  const data: Obj = f.data;
  const add = (message: string, pos: Position, hint: string): void => {
    problems.push({ pos, message, hint });
  };

  /** A scalar as a string, as written for numbers and booleans (1.10 stays "1.10"). */
  const scalarText = (path: Path, v: unknown): string | undefined => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return loc.plainText(path) ?? String(v);
    return undefined;
  };

  /**
   * `become:` as written → an own `become` property: true → "root", a string → that user,
   * false → undefined (present: explicitly no privilege change, overriding an outer become).
   * Absent → no property (inherit).
   */
  const setBecome = (target: { become?: Become }, v: unknown, path: Path): void => {
    if (v === true) target.become = 'root';
    else if (v === false) target.become = undefined;
    else if (typeof v === 'string' && v) {
      if (/^(yes|no|on|off)$/i.test(v)) {
        add(
          `ambiguous become ${q(v)}`,
          loc.valuePos(path),
          `write true (sudo to root), false, or a user name; YAML 1.2 reads ${v} as the string ${q(v)}`,
        );
      } else target.become = v;
    }
  };

  const builtinCheck = (name: string, path: Path): boolean => {
    if (!BUILTIN.has(name)) return true;
    add(
      `${name} is a built-in variable and cannot be set`,
      loc.keyPos(path),
      `Hades sets ${BUILTIN_ENV.join(', ')} itself; use another name`,
    );
    return false;
  };

  /** A plan or step env map: NAME → string. */
  const envMap = (path: Path, v: unknown): { env: Record<string, string>; envPos: Record<string, Position> } => {
    const env: Record<string, string> = {};
    const envPos: Record<string, Position> = {};
    if (!isObj(v)) return { env, envPos };
    for (const [k, val] of Object.entries(v)) {
      const p = [...path, k];
      if (!ENV_NAME.test(k) || !builtinCheck(k, p)) continue;
      const s = scalarText(p, val);
      if (s === undefined) continue;
      env[k] = s;
      envPos[k] = loc.keyPos(p);
    }
    return { env, envPos };
  };

  // ---------------------------------------------------------------- hosts
  const hostFrom = (name: string, h: Obj, path: Path, pos: Position): void => {
    out.names.hosts.add(name);
    const local = h.local === true;
    const spec: HostSpec = { name, addr: str(h.addr) ?? (local ? 'localhost' : name), local, order: 0, pos };
    if (str(h.user)) spec.user = h.user as string;
    if (typeof h.port === 'number' && Number.isInteger(h.port) && h.port >= 1 && h.port <= 65535) spec.port = h.port;
    const idf = str(h.identity_file);
    const key = str(h.key);
    if (idf !== undefined && key !== undefined) {
      add(
        `host ${q(name)} has both identity_file and key`,
        loc.keyPos([...path, 'key']),
        'key is another name for identity_file: keep one',
      );
    }
    if (idf ?? key) spec.identityFile = resolveUserPath(f.dir, (idf ?? key)!);
    if (str(h.passphrase_env) && ENV_NAME.test(h.passphrase_env as string)) spec.passphraseEnv = h.passphrase_env as string;
    if (str(h.jump)) spec.jump = h.jump as string;
    const ct = h.connect_timeout;
    if (typeof ct === 'number' && Number.isInteger(ct) && ct >= 1) spec.connectTimeoutMs = ct * 1000;
    else if (typeof ct === 'string') {
      const ms = parseDuration(ct);
      if (ms === 0)
        add(
          `connect_timeout ${q(ct)} of host ${q(name)} must be longer than 0`,
          loc.valuePos([...path, 'connect_timeout']),
          'write a duration such as 10s',
        );
      else if (ms !== undefined) spec.connectTimeoutMs = ms;
    }
    setBecome(spec, h.become, [...path, 'become']);
    const ld = str(h.lock_dir);
    if (ld !== undefined && /^(\/|~\/|~$)/.test(ld)) {
      const norm = ld.replace(/\/+$/, '') || '/';
      if (norm.split('/').includes('..'))
        add(
          `lock_dir ${q(ld)} of host ${q(name)} contains ".."`,
          loc.valuePos([...path, 'lock_dir']),
          'write the directory without ".." components',
        );
      else spec.lockDir = norm;
    }
    out.hosts.push({ spec, file: f, jumpPos: spec.jump !== undefined ? loc.valuePos([...path, 'jump']) : undefined });
  };
  if (Array.isArray(data.hosts)) {
    data.hosts.forEach((h, i) => {
      if (isObj(h) && str(h.name)) hostFrom(h.name as string, h, ['hosts', i], loc.valuePos(['hosts', i]));
    });
  } else if (isObj(data.hosts)) {
    for (const [name, h] of Object.entries(data.hosts)) {
      out.names.hosts.add(name);
      if (h === null || isObj(h)) hostFrom(name, h ?? {}, ['hosts', name], loc.keyPos(['hosts', name]));
    }
  }

  // ---------------------------------------------------------------- targets
  if (isObj(data.targets)) {
    for (const [name, list] of Object.entries(data.targets)) {
      out.names.targets.add(name);
      if (!Array.isArray(list)) continue;
      const t: TargetDecl = { name, hosts: [], hostPos: [], pos: loc.keyPos(['targets', name]), file: f };
      list.forEach((h, i) => {
        if (typeof h !== 'string' || h === '') return;
        const pos = loc.valuePos(['targets', name, i]);
        if (t.hosts.includes(h)) {
          add(`host ${q(h)} is listed twice in target ${q(name)}`, pos, 'remove the repeated entry');
          return;
        }
        t.hosts.push(h);
        t.hostPos.push(pos);
      });
      out.targets.push(t);
    }
  }

  // ---------------------------------------------------------------- registries
  if (isObj(data.registries)) {
    for (const [name, r] of Object.entries(data.registries)) {
      out.names.registries.add(name);
      if (!isObj(r)) continue;
      const path = ['registries', name];
      const pos = loc.keyPos(path);
      const artifactType = str(r.artifact_type);
      const trust = registryTrust(r, (p) => resolveUserPath(f.dir, p));
      if (r.type === 'filesystem' && str(r.path)) {
        out.registries.push({
          reg: {
            name,
            type: 'filesystem',
            path: resolveUserPath(f.dir, r.path as string),
            ...(artifactType ? { artifactType } : {}),
            ...trust,
            pos,
          },
          file: f,
        });
      } else if (r.type === 'oci' && str(r.url)) {
        const url = r.url as string;
        const why = url.includes('${') ? undefined : ociUrlProblem(url);
        if (why) {
          add(
            `invalid url ${q(url)} for registry ${q(name)}: ${why}`,
            loc.valuePos([...path, 'url']),
            'write host[:port]/repository-prefix, e.g. registry.example.com:5000/team (set plain_http: true for an http registry)',
          );
        }
        const mirrors = Array.isArray(r.mirrors) ? r.mirrors.filter((m): m is string => typeof m === 'string' && m !== '') : [];
        mirrors.forEach((m, i) => {
          const bad = m.includes('${') ? undefined : ociUrlProblem(m);
          if (bad)
            add(
              `invalid mirror ${q(m)} for registry ${q(name)}: ${bad}`,
              loc.valuePos([...path, 'mirrors', i]),
              'write host[:port] or host[:port]/prefix (the artifact repositories follow the prefix), e.g. mirror.example.com:5000',
            );
        });
        out.registries.push({
          reg: {
            name,
            type: 'oci',
            url,
            plainHttp: r.plain_http === true,
            insecure: r.insecure === true,
            ...(artifactType ? { artifactType } : {}),
            ...(str(r.username) ? { username: r.username as string } : {}),
            ...(str(r.password_env) ? { passwordEnv: r.password_env as string } : {}),
            ...(str(r.registry_config) ? { registryConfig: resolveUserPath(f.dir, r.registry_config as string) } : {}),
            ...trust,
            ...(mirrors.length ? { mirrors } : {}),
            pos,
          },
          file: f,
        });
      }
    }
  }

  // ---------------------------------------------------------------- jobs
  if (isObj(data.jobs)) {
    for (const [name, j] of Object.entries(data.jobs)) {
      out.names.jobs.add(name);
      if (!isObj(j)) continue;
      const jp: Path = ['jobs', name];
      const job: JobSpec = { name, local: j.local === true, artifacts: {}, actions: [], baseDir: f.dir, pos: loc.keyPos(jp) };
      if (isObj(j.guard) && str(j.guard.if)) job.guard = { if: j.guard.if as string, pos: loc.keyPos([...jp, 'guard']) };
      setBecome(job, j.become, [...jp, 'become']);
      const jt = positiveDuration(j.default_timeout, 'default_timeout', loc.valuePos([...jp, 'default_timeout']), add);
      if (jt !== undefined) job.defaultTimeoutMs = jt;
      if (isObj(j.env)) {
        const env: Record<string, EnvContractVar> = {};
        for (const [k, v] of Object.entries(j.env)) {
          const p = [...jp, 'env', k];
          if (!ENV_NAME.test(k) || !builtinCheck(k, p)) continue;
          const pos = loc.keyPos(p);
          if (v === null) env[k] = { required: true, pos };
          else if (isObj(v)) {
            const d = scalarText([...p, 'default'], v.default);
            if (d !== undefined) env[k] = { required: false, default: d, pos };
          } else {
            const d = scalarText(p, v);
            if (d !== undefined) env[k] = { required: false, default: d, pos };
          }
        }
        job.env = env;
      }
      if (isObj(j.artifacts)) {
        for (const [a, v] of Object.entries(j.artifacts)) {
          const spec = isObj(v) ? buildArtifactSpec(v, [...jp, 'artifacts', a], loc, (p) => resolveUserPath(f.dir, p), add) : undefined;
          if (spec) job.artifacts[a] = spec;
        }
      }
      const ctxJob = { name, artifacts: isObj(j.artifacts) ? Object.keys(j.artifacts) : [] };
      if (Array.isArray(j.actions)) {
        j.actions.forEach((item, i) => {
          const a = buildAction(item, i, [...jp, 'actions', i], ctxJob);
          if (a) job.actions.push(a);
        });
      }
      out.jobs.push({ job, file: f });
    }
  }

  function buildAction(item: unknown, index: number, path: Path, ctxJob: { name: string; artifacts: string[] }): ActionSpec | undefined {
    if (!isObj(item)) return undefined;
    const keys = Object.keys(item);
    const present = keys.filter((k) => (ACTION_KINDS as readonly string[]).includes(k));
    const unknown = keys.filter(
      (k) => !present.includes(k) && k !== 'name' && k !== 'become' && !(ATTEMPT_FIELDS as readonly string[]).includes(k),
    );
    const place = describe(path, data);
    if (present.length === 0) {
      if (unknown.length === 0) add(`${place} has no action`, loc.valuePos(path), `add exactly one of: ${ACTION_KINDS.join(', ')}`);
      return undefined;
    }
    if (present.length > 1) {
      add(
        `${place} has ${present.length} action keys (${present.join(', ')}); an item holds exactly one`,
        loc.keyPos([...path, present[1]!]),
        `split it into separate list items: - ${present[0]}: ... and - ${present[1]}: ...`,
      );
      return undefined;
    }
    const kind = present[0]!;
    const rules = kinds.get(kind);
    const raw = item[kind];
    const kp = [...path, kind];
    const kindPos = loc.keyPos(kp);
    const fieldPos: Record<string, Position> = {};
    let spec: unknown = raw;
    if (!isObj(raw)) fieldPos[kind] = loc.valuePos(kp); // a scalar value (run: "...") is its own field
    if (isObj(raw)) {
      const s: Obj = { ...raw };
      spec = s;
      for (const k of Object.keys(raw)) {
        fieldPos[k] = loc.valuePos([...kp, k]);
        // One level down too (`annotations.KEY`): a problem of one entry of a map points at it.
        const sub = raw[k];
        if (isObj(sub)) for (const j of Object.keys(sub)) fieldPos[`${k}.${j}`] = loc.valuePos([...kp, k, j]);
      }
      // A mode is parsed from its source token (0644 vs 644), so the loader does it for every kind that has one.
      if (rules?.hasMode && (typeof raw.mode === 'number' || typeof raw.mode === 'string')) {
        const r = parseModeToken(loc.token([...kp, 'mode']) ?? String(raw.mode));
        if ('mode' in r) s.mode = r.mode;
        else add(r.error, fieldPos.mode!, r.hint);
      }
    }
    rules?.check?.({
      kind,
      value: isObj(raw) ? raw : undefined,
      has: (k) => isObj(raw) && raw[k] !== undefined && raw[k] !== null,
      pos: (field, at = 'key') =>
        field === undefined ? kindPos : at === 'key' ? loc.keyPos([...kp, field]) : loc.valuePos([...kp, field]),
      error: add,
      job: ctxJob,
    });
    const a: ActionSpec = { kind, spec, index, pos: kindPos, fieldPos };
    if (str(item.name)) a.name = item.name as string;
    setBecome(a, item.become, [...path, 'become']);
    const retryable = [...kinds.values()].filter((k) => k.retryable).map((k) => k.kind);
    Object.assign(
      a,
      readAttemptFields(
        item,
        kind,
        rules,
        retryable,
        (k) => loc.keyPos([...path, k]),
        (k) => loc.valuePos([...path, k]),
        add,
      ),
    );
    return a;
  }

  // ---------------------------------------------------------------- plans
  if (isObj(data.plans)) {
    for (const [name, pl] of Object.entries(data.plans)) {
      if (!isObj(pl)) continue;
      const pp: Path = ['plans', name];
      const plan: PlanSpec = { name, ...envMap([...pp, 'env'], pl.env), steps: [], baseDir: f.dir, pos: loc.keyPos(pp) };
      const hookList = (v: unknown): string[] =>
        typeof v === 'string' && v ? [v] : Array.isArray(v) ? v.filter((c): c is string => typeof c === 'string' && c !== '') : [];
      const hooks = { on_start: hookList(pl.on_start), on_success: hookList(pl.on_success), on_failure: hookList(pl.on_failure) };
      if (hooks.on_start.length || hooks.on_success.length || hooks.on_failure.length) plan.hooks = hooks;
      const pt = positiveDuration(pl.default_timeout, 'default_timeout', loc.valuePos([...pp, 'default_timeout']), add);
      if (pt !== undefined) plan.defaultTimeoutMs = pt;
      const decl: PlanDecl = { plan, steps: [], file: f };
      const seen = new Map<string, Position>();
      const defaults = defaultStepNames(pl.steps);
      // Explicit names first: a default name that meets one is ambiguous wherever it comes.
      if (Array.isArray(pl.steps)) {
        pl.steps.forEach((st, i) => {
          if (!isObj(st) || !str(st.name)) return;
          const stepName = st.name as string;
          const np = loc.valuePos([...pp, 'steps', i, 'name']);
          const first = seen.get(stepName);
          if (first)
            add(
              `duplicate step name ${q(stepName)} in plan ${q(name)} (first at line ${first.line})`,
              np,
              'step names must be unique within a plan',
            );
          else seen.set(stepName, np);
        });
      }
      if (Array.isArray(pl.steps)) {
        pl.steps.forEach((st, i) => {
          if (!isObj(st)) return;
          const sp = [...pp, 'steps', i];
          let stepName = str(st.name) ?? '';
          if (!stepName && defaults[i]) {
            stepName = defaults[i]!;
            const sPos = loc.valuePos(sp);
            const first = seen.get(stepName);
            if (first) {
              add(
                `step ${i + 1} of plan ${q(name)} has no name, and its default name ${q(stepName)} is already the name of the step at line ${first.line}`,
                sPos,
                `give one of them an explicit name: (a step without a name is named after its job, then ${q(`${str(st.job)}-2`)}, ${q(`${str(st.job)}-3`)} ... when the plan runs the job again)`,
              );
            } else seen.set(stepName, sPos);
          }
          const targets: string[] = [];
          const targetPos: Position[] = [];
          if (typeof st.targets === 'string' && st.targets) {
            targets.push(st.targets);
            targetPos.push(loc.valuePos([...sp, 'targets']));
          } else if (Array.isArray(st.targets)) {
            st.targets.forEach((t, ti) => {
              if (typeof t !== 'string' || !t) return;
              targets.push(t);
              targetPos.push(loc.valuePos([...sp, 'targets', ti]));
            });
          }
          const step: StepSpec = {
            name: stepName,
            job: str(st.job) ?? '',
            targets,
            ...envMap([...sp, 'env'], st.env),
            pos: loc.valuePos(sp),
          };
          if (typeof st.limit === 'number' && Number.isInteger(st.limit) && st.limit >= 1) step.limit = st.limit;
          if (Array.isArray(st.parallelism)) {
            const list = st.parallelism.map(parseParallelism);
            if (list.length && list.every((x) => x !== undefined)) step.parallelism = list as Parallelism[];
          } else {
            const par = parseParallelism(st.parallelism);
            if (par) step.parallelism = par;
          }
          const budget = parseFailureBudget(st.max_failures);
          if (budget) step.maxFailures = budget;
          plan.steps.push(step);
          decl.steps.push({ jobPos: loc.valuePos([...sp, 'job']), targetPos });
        });
      }
      out.plans.push(decl);
    }
  }

  // ---------------------------------------------------------------- lists
  if (Array.isArray(data.known_hosts)) {
    for (const p of data.known_hosts) if (typeof p === 'string' && p) out.knownHosts.push(resolveUserPath(f.dir, p));
  }
  if (Array.isArray(data.secret_patterns)) {
    for (const p of data.secret_patterns) if (typeof p === 'string' && p) out.secretPatterns.push(p);
  }
  return out;
}

/**
 * Names for the steps written without one (the Go tool's rule): the job's name for the plan's
 * first step running that job, then JOB-2, JOB-3 ... for its next ones (named steps count too,
 * so naming one step does not rename the others). Index → name; named steps get undefined.
 */
export function defaultStepNames(steps: unknown): Array<string | undefined> {
  if (!Array.isArray(steps)) return [];
  const runs = new Map<string, number>();
  return steps.map((st) => {
    if (!isObj(st) || !str(st.job)) return undefined;
    const job = st.job as string;
    const n = (runs.get(job) ?? 0) + 1;
    runs.set(job, n);
    return str(st.name) ? undefined : n === 1 ? job : `${job}-${n}`;
  });
}

/** `2`, `"2"` → count; `"25%"` → percent (1..100). Anything else → undefined (the schema reports it). */
export function parseParallelism(v: unknown): Parallelism | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 ? { kind: 'count', n: v } : undefined;
  if (typeof v !== 'string') return undefined;
  let m = /^([1-9][0-9]*)$/.exec(v);
  if (m) return { kind: 'count', n: Number(m[1]) };
  m = /^([1-9][0-9]?|100)%$/.exec(v);
  if (m) return { kind: 'percent', percent: Number(m[1]) };
  return undefined;
}

/** `2`, `"2"`, `0` → count; `"10%"` → percent (0..100). Anything else → undefined (the schema reports it). */
export function parseFailureBudget(v: unknown): FailureBudget | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? { kind: 'count', n: v } : undefined;
  if (typeof v !== 'string') return undefined;
  let m = /^(0|[1-9][0-9]*)$/.exec(v);
  if (m) return { kind: 'count', n: Number(m[1]) };
  m = /^(0|[1-9][0-9]?|100)%$/.exec(v);
  if (m) return { kind: 'percent', percent: Number(m[1]) };
  return undefined;
}
