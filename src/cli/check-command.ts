/**
 * `hades plan <name> --check`: connects to the plan's hosts and runs only the read-only
 * half of every action (engine/check.ts): what would change, host by host, with unified
 * diffs. No lock, no hooks, no audit run record, nothing written on any host. Exit 0 when
 * every action could be checked (whether or not it would change something), 1 when one
 * would fail / be refused or a host could not be checked, 2 for input mistakes.
 */
import { resolve } from 'node:path';
import type { StepEnv } from '../env/resolve.js';
import type { Redactor } from '../env/secrets.js';
import { EXIT, UserError } from '../errors.js';
import type { ActionEntry, PlannedHost, RunPlan } from '../plan/types.js';
import type { Sink } from '../report/sink.js';
import type { Prepared } from './context.js';
import type { RunOptions } from './options.js';
import { poolOptions } from './pool-options.js';

/** Flags that mean nothing for a check (it runs nothing, writes no log): refused, never silently ignored. */
export function refuseWithCheck(opts: RunOptions): void {
  const problems = [];
  if (opts.dryRun)
    problems.push({
      message: '--check and --dry-run do not go together',
      hint: '--dry-run prints the commands; --check asks the hosts what they would change',
    });
  if (opts.failedHostsFile)
    problems.push({
      message: '--failed-hosts-file does not go with --check',
      hint: 'a check runs nothing, so no host fails; its JSON output (check.host events) lists the hosts it could not check',
    });
  if (opts.logDir) problems.push({ message: '--log-dir does not go with --check', hint: 'a check writes no audit log' });
  if (problems.length) throw new UserError(problems);
}

export async function checkCommand(prep: Prepared, opts: RunOptions, mode: 'tty' | 'plain' | 'json'): Promise<number> {
  const { hf, plan, redactor } = prep;
  const [
    { checkPlan, SECRET_MARK },
    { RunFiles },
    { RunArtifacts, defaultCacheDir },
    { openRegistry },
    { EventBus },
    { HostTransports },
    { reportingOpener },
  ] = await Promise.all([
    import('../engine/check.js'),
    import('../engine/files.js'),
    import('../engine/artifacts.js'),
    import('../registry/open.js'),
    import('../report/sink.js'),
    import('../transport/hosts.js'),
    import('../engine/registry-warnings.js'),
  ]);
  const masked = await maskedPlan(prep, redactor, SECRET_MARK);
  const sinks: Sink[] = [];
  if (mode === 'json') sinks.push(new (await import('../report/json.js')).JsonSink());
  else sinks.push(new (await import('../report/check.js')).CheckSink());
  const bus = new EventBus(redactor, sinks);
  // `hades rollback --check` / `--replay --check`: which run is replayed and the digests pinned, as a run says it.
  if (plan.origin && mode !== 'json')
    process.stderr.write(`${(await import('../report/origin.js')).originLines(plan.origin).join('\n')}\n`);

  const sshHosts = plan.steps.flatMap((s) => s.batches.flatMap((b) => b.hosts.filter((h) => h.transport === 'ssh')));
  let pool: import('../transport/pool.js').TransportPool | undefined;
  if (sshHosts.length) {
    const { TransportPool, defaultKnownHostsFile } = await import('../transport/pool.js');
    pool = new TransportPool(poolOptions(hf, opts, defaultKnownHostsFile()));
  }
  const hosts = pool?.hosts ?? new HostTransports(hf.baseDir);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await checkPlan(plan, {
      transportFor: (ph: PlannedHost) => hosts.get(ph.host, hf.hosts.get(ph.host)),
      emit: bus.emit,
      files: new RunFiles(),
      artifacts: new RunArtifacts(
        hf.registries,
        reportingOpener(openRegistry, bus.emit, plan.runId),
        opts.cacheDir ? resolve(process.cwd(), opts.cacheDir) : defaultCacheDir(),
      ),
      redactor,
      signal: abort.signal,
      masked: (stepIndex, host, actionIndex) => masked?.get(`${stepIndex}\0${host}\0${actionIndex}`),
    });
    return abort.signal.aborted ? EXIT.interrupted : result.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool?.closeAll();
    await bus.close();
  }
}

/**
 * The plan once more with every secret value replaced by `mark`: the renders of templates
 * that used a secret, by (step, host, action). Comparing them with the real renders tells
 * which lines depend on a secret (the diff hides those, on both sides). Undefined when the
 * masked plan cannot be made (e.g. a secret is used where a number is expected): every
 * changed line of such a render is then hidden.
 */
async function maskedPlan(prep: Prepared, redactor: Redactor, mark: string): Promise<Map<string, string> | undefined> {
  const usesSecret = (a: ActionEntry) =>
    a.kind === 'template' &&
    a.source.type === 'inline' &&
    ((a.source.uses ?? []).some((n) => redactor.isSecret(n)) || redactor.text(a.source.content) !== a.source.content);
  const needed = prep.plan.steps.some((s) => s.batches.some((b) => b.hosts.some((h) => h.actions.some(usesSecret))));
  if (!needed) return undefined;
  const stepEnvs: StepEnv[] = prep.planInput.stepEnvs.map((s) => ({
    ...s,
    env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, redactor.isSecret(k) ? mark : v])),
  }));
  let plan: RunPlan;
  try {
    const { planWithSources } = await import('../plan/with-sources.js');
    plan = await planWithSources({ ...prep.planInput, stepEnvs });
  } catch {
    return undefined;
  }
  const out = new Map<string, string>();
  for (const s of plan.steps)
    for (const b of s.batches)
      for (const h of b.hosts)
        for (const a of h.actions)
          if (a.kind === 'template' && a.source.type === 'inline') out.set(`${s.index}\0${h.host}\0${a.index}`, a.source.content);
  return out;
}
