/** The end-of-run summary as text: per step, per host, what ran, what failed, what never started. */
import type { HostSummary, RunSummary } from '../engine/events.js';
import { formatDuration } from '../config/duration.js';

function hostLine(h: HostSummary): string {
  const counts = new Map<string, number>();
  for (const a of h.actions) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
  const detail = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  switch (h.status) {
    case 'ok':
      return `${h.host}: ok${detail ? ` (${detail})` : ''}`;
    case 'skipped':
      return `${h.host}: skipped — ${h.error ?? 'guard'}`;
    case 'failed': {
      const failed = h.actions.find((a) => a.status === 'failed' || a.status === 'declined');
      return `${h.host}: FAILED${failed ? ` at "${failed.title}"` : ''}: ${h.error ?? ''}${detail ? ` (${detail})` : ''}`;
    }
    case 'stopped':
      return `${h.host}: stopped — ${h.error ?? ''}${detail ? ` (${detail})` : ''}`;
    default:
      return `${h.host}: not started`;
  }
}

export function formatSummary(s: RunSummary): string {
  const head = {
    ok: 'OK',
    partial: `COMPLETED WITH FAILURES (${s.failedHosts.length} host(s) failed within their step's max_failures: ${s.failedHosts.join(', ')})`,
    failed: 'FAILED',
    declined: 'DECLINED (a gate was not approved)',
    interrupted: 'INTERRUPTED',
  }[s.status];
  const lines = [`Run ${s.runId} of plan "${s.plan}": ${head} in ${formatDuration(s.durationMs)} (exit ${s.exitCode})`];
  if (s.selection) lines.push(`  --limit ${s.selection.patterns.join(',')}: ${s.selection.hosts.length} host(s) selected`);
  if (s.origin)
    lines.push(
      `  ${s.origin.mode === 'resume' ? 'resumed' : 'replayed'} run ${s.origin.runId}${s.origin.pins.length ? `; digests: ${s.origin.pins.map((p) => `${p.registry}/${p.name}:${p.tag}=${p.digest}`).join(', ')}` : ''}`,
    );
  for (const step of s.steps) {
    const budget = step.maxFailures !== undefined ? `${step.failed?.length ?? 0} of max_failures ${step.maxFailures} used` : '';
    const extra = step.status === 'skipped' ? ` — ${step.reason ?? ''}` : budget ? ` (${budget})` : '';
    lines.push(`  step ${step.name}: ${step.status}${extra}`);
    const notStarted = step.hosts.filter((h) => h.status === 'not-started').map((h) => h.host);
    for (const h of step.hosts) if (h.status !== 'not-started') lines.push(`    ${hostLine(h)}`);
    if (notStarted.length) {
      const shown = notStarted.slice(0, 20).join(', ');
      lines.push(`    not started: ${shown}${notStarted.length > 20 ? `, … (${notStarted.length} hosts)` : ''}`);
    }
  }
  return lines.join('\n');
}
