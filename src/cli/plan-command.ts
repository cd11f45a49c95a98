/** `hades plan <name>`: prepare → (dry-run | execute with sinks, gates, Ctrl-C handling). */
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { EXIT } from '../errors.js';
import { terminalSafe } from '../terminal.js';
import type { PlannedHost } from '../plan/types.js';
import type { Sink } from '../report/sink.js';
import type { Transport } from '../transport/types.js';
import { preparePlan } from './context.js';
import { fingerprint, type ShapeStep } from '../plan/select.js';
import type { RunOrigin } from '../plan/types.js';
import { originLines } from '../report/origin.js';
import { maxConnectionsOf, type RunOptions } from './options.js';
import { poolOptions } from './pool-options.js';
import { VERSION } from './version.js';

export function outputMode(o: RunOptions['output']): 'tty' | 'plain' | 'json' {
  if (o !== 'auto') return o;
  // A terminal that reports no width (some CI ptys) would wrap the live view per character.
  return process.stdout.isTTY && (process.stdout.columns ?? 0) > 0 && !process.env.CI ? 'tty' : 'plain';
}

export async function planCommand(name: string, opts: RunOptions): Promise<number> {
  if (opts.check) (await import('./check-command.js')).refuseWithCheck(opts);
  maxConnectionsOf(opts.maxConnections); // a bad --max-connections fails before anything is planned
  const prepared = await preparePlan(name, opts);
  const { hf, plan, redactor, envFiles, shape } = prepared;
  const mode = outputMode(opts.output);
  if (opts.check) return (await import('./check-command.js')).checkCommand(prepared, opts, mode);
  const { addLocksAndHooks, guardedRun } = await import('./run-guard.js');
  addLocksAndHooks(hf, plan, opts.lock !== false);

  if (opts.dryRun) {
    if (mode === 'json') {
      const { displayPlan } = await import('../report/hidden.js');
      process.stdout.write(`${JSON.stringify(displayPlan(plan, redactor))}\n`);
    } else {
      const { renderPlan } = await import('../report/dryrun.js');
      process.stdout.write(`${renderPlan(plan, redactor)}\n`);
    }
    return EXIT.ok;
  }

  // Host keys are checked before any action: the plan's SSH hosts are connected now, in run
  // order, as many as --max-connections allows (throttled; a plan with more hosts connects
  // the rest in their turn, and a key problem there fails that host). The handshakes start
  // first — they are mostly waiting on the network — and the rest of the run's modules load
  // meanwhile. An unknown or changed key fails the run below; a host that is down fails when
  // its turn comes (its connection error is kept, not retried). ssh2 loads only when the
  // plan has SSH hosts.
  const sshHosts = plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.filter((h) => h.transport === 'ssh')));
  let pool: import('../transport/pool.js').TransportPool | undefined;
  /** The host-key problems of the preflight connections (when the plan has SSH hosts). */
  let keyProblems: Promise<Error[]> = Promise.resolve([]);
  if (sshHosts.length) {
    const { TransportPool, HostKeyError, defaultKnownHostsFile } = await import('../transport/pool.js');
    pool = new TransportPool(poolOptions(hf, opts, defaultKnownHostsFile()));
    const p = pool;
    const { scheduleFirstUses } = await import('../engine/connections.js');
    scheduleFirstUses(plan, (ph) => p.hosts.get(ph.host, hf.hosts.get(ph.host)));
    const specs = [...new Set(sshHosts.map((h) => h.host))].map((n) => hf.hosts.get(n)!).filter(Boolean);
    keyProblems = pool.preconnect(specs).then((errors) => [...errors.values()].filter((e) => e instanceof HostKeyError));
  }
  const [
    { RunFiles },
    { RunArtifacts, defaultCacheDir },
    { openRegistry },
    { RunControl },
    { runPlan },
    { AuditSink },
    { JsonSink },
    { PlainSink },
    { EventBus },
    { HostTransports },
    { CliGatekeeper },
    { verifyBeforeRun },
    { reportingOpener },
  ] = await Promise.all([
    import('../engine/files.js'),
    import('../engine/artifacts.js'),
    import('../registry/open.js'),
    import('../engine/control.js'),
    import('../engine/engine.js'),
    import('../report/audit.js'),
    import('../report/json.js'),
    import('../report/plain.js'),
    import('../report/sink.js'),
    import('../transport/hosts.js'),
    import('./gate.js'),
    import('../engine/trust-preflight.js'),
    import('../engine/registry-warnings.js'),
  ]);

  const sinks: Sink[] = [];
  let tty: { idle(): Promise<void> } | undefined;
  if (mode === 'json') sinks.push(new JsonSink());
  else if (mode === 'plain') sinks.push(new PlainSink());
  else {
    const { TtySink } = await import('../report/tty.js');
    const t = new TtySink(plan);
    tty = t;
    sinks.push(t);
  }
  const logDir = opts.logDir
    ? isAbsolute(opts.logDir)
      ? opts.logDir
      : resolve(process.cwd(), opts.logDir)
    : join(hf.baseDir, '.hades', 'runs');
  const audit = new AuditSink(
    logDir,
    plan.runId,
    redactor.deep({
      hades: VERSION,
      user: safeUser(),
      host: hostname(),
      cwd: process.cwd(),
      argv: redactor.deep(process.argv.slice(2)),
      plan: plan.plan,
      files: hf.files,
      envFiles,
      ...(plan.selection ? { selection: plan.selection } : {}),
      ...(plan.offline ? { offline: plan.offline } : {}),
      steps: plan.steps.map((s) => ({
        name: s.name,
        job: s.job,
        env: redactor.env(s.env),
        secrets: Object.keys(s.env).filter((k) => redactor.isSecret(k)),
        hosts: s.batches.flatMap((b) => b.hosts.map((h) => h.host)),
      })),
      ...runShape(shape, plan.origin),
    }),
  );
  sinks.push(audit);
  if (plan.origin && mode !== 'json') process.stderr.write(`${originLines(plan.origin).join('\n')}\n`);
  const bus = new EventBus(redactor, sinks);

  const control = new RunControl();
  const onSignal = () => {
    if (control.interrupt() === 'abort') {
      process.stderr.write('\nhades: aborting running actions\n');
      setTimeout(() => process.exit(EXIT.interrupted), 5000).unref();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const keyErrors = await keyProblems;
  if (keyErrors.length) {
    for (const e of keyErrors) process.stderr.write(`error: ${terminalSafe(redactor.text(e.message))}\n`);
    process.stderr.write(`no action was run: ${keyErrors.length} host key problem(s)\n`);
    await pool?.closeAll();
    await bus.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return EXIT.failed;
  }
  const artifacts = new RunArtifacts(
    hf.registries,
    reportingOpener(openRegistry, bus.emit, plan.runId),
    opts.cacheDir ? resolve(process.cwd(), opts.cacheDir) : defaultCacheDir(),
    (rec) => audit.artifact(redactor.deep({ ...rec })),
    { offline: opts.offline },
  );
  // Signatures of artifacts that exist already: checked before any lock, hook or step.
  const refused = await verifyBeforeRun(plan, artifacts).then(
    () => undefined,
    (e: Error) => e,
  );
  if (refused) {
    process.stderr.write(
      `error: ${terminalSafe(redactor.text(refused.message))}\nno action was run: an artifact's signature was refused\n`,
    );
    await pool?.closeAll();
    await bus.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return EXIT.failed;
  }
  const hosts = pool?.hosts ?? new HostTransports(hf.baseDir);
  const transportFor = (ph: PlannedHost): Transport => hosts.get(ph.host, hf.hosts.get(ph.host));

  const gate = new CliGatekeeper({
    yes: opts.yes,
    approve: opts.approve,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    ...(tty ? { beforePrompt: () => tty!.idle() } : {}),
  });

  try {
    const guarded = await guardedRun(
      { plan, transportFor: (h) => hosts.get(h, hf.hosts.get(h)), emit: bus.emit, redactor, stopping: () => control.stopping },
      (beforeEnd) =>
        runPlan(plan, {
          transportFor,
          gate,
          emit: bus.emit,
          control,
          files: new RunFiles(),
          artifacts,
          redactor,
          hostOrder: (h) => hf.hosts.get(h)?.order ?? Number.MAX_SAFE_INTEGER,
          beforeEnd,
        }),
    );
    const summary = guarded.summary;
    if (!summary) return guarded.exitCode;
    if (opts.failedHostsFile) {
      try {
        writeFailedHosts(resolve(process.cwd(), opts.failedHostsFile), summary.failedHosts);
      } catch (e) {
        process.stderr.write(`error: cannot write --failed-hosts-file ${opts.failedHostsFile}: ${(e as Error).message}\n`);
        return EXIT.failed;
      }
    }
    return summary.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool?.closeAll();
    await bus.close();
    if (mode !== 'json') process.stderr.write(`audit log: ${audit.path}\n`);
  }
}

/**
 * `--failed-hosts-file F`: the failed hosts, one per line, inventory order — written after
 * every run that started, empty when none failed (a file left from an earlier run never
 * stands for this one). Temp file created exclusively beside F, then renamed over it.
 */
export function writeFailedHosts(path: string, hosts: string[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, hosts.map((h) => `${h}\n`).join(''));
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

/** The audit header's shape, fingerprint and origin (what --resume compares and chains). */
function runShape(shape: ShapeStep[], origin: RunOrigin | undefined): Record<string, unknown> {
  return { fingerprint: fingerprint(shape), shape, ...(origin ? { origin } : {}) };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}
