/** The health action's pure parts: address parsing, status rules, planning with ${VAR} and the dry-run text. */
import { describe, expect, it } from 'vitest';
import { type HealthEntry, parseHttp, parseStatus, parseTcp } from '../../src/actions/health.js';
import { statusMatches } from '../../src/actions/probe.js';
import type { StepEnv } from '../../src/env/resolve.js';
import { Redactor } from '../../src/env/secrets.js';
import { UserError } from '../../src/errors.js';
import { MapSources, buildRunPlan } from '../../src/plan/plan.js';
import { renderPlan } from '../../src/report/dryrun.js';
import { action, hadesfile, host, job, plan, step } from '../helpers/model.js';

function build(spec: unknown, env: Record<string, string>, hostExtra = {}) {
  const p = plan('p', [step('s', 'check', ['web-1'])]);
  const hf = hadesfile({
    hosts: [host('web-1', 0, hostExtra)],
    jobs: [job('check', [action('health', spec, 0, { fieldPos: { http: { file: 'hadesfile.yaml', line: 7, col: 25 } } })])],
    plans: [p],
  });
  const stepEnvs: StepEnv[] = p.steps.map((s) => ({ step: s, job: hf.jobs.get(s.job)!, env }));
  return buildRunPlan({ hf, plan: p, stepEnvs, runId: 'RUN1', sources: new MapSources(new Map()) });
}

describe('health addresses', () => {
  it('parses http(s) URLs and host:port', () => {
    expect(parseHttp('https://db.internal/ready?x=1#frag')).toEqual({
      ok: {
        probe: 'http',
        host: 'db.internal',
        port: 443,
        tls: true,
        path: '/ready?x=1',
        url: 'https://db.internal/ready?x=1',
        target: 'https://db.internal/ready?x=1',
      },
    });
    expect(parseHttp('http://[::1]:8080/h')).toMatchObject({ ok: { host: '::1', port: 8080, tls: false, path: '/h' } });
    expect(parseTcp('[::1]:5432')).toEqual({ ok: { probe: 'tcp', host: '::1', port: 5432, target: '[::1]:5432' } });
    expect(parseTcp('db-1.internal:5432')).toMatchObject({ ok: { host: 'db-1.internal', port: 5432 } });
  });

  it.each([
    ['http', 'http://u:pw@127.0.0.1/', /credentials in the URL/],
    ['http', 'http://127.0.0.1:70000/', /port "70000" is not a number from 1 to 65535/],
    ['http', '/healthz', /is not a valid URL/],
    ['tcp', '127.0.0.1:http', /port "http" is not a number/],
    ['tcp', 'a b:80', /is not a host name or address/],
    ['tcp', '127.0.0.1:65536', /port "65536"/],
  ])('%s %s is refused', (kind, text, msg) => {
    const r = kind === 'http' ? parseHttp(text) : parseTcp(text);
    expect('error' in r && r.error).toMatch(msg);
  });

  it('status: a code, a class, or a list', () => {
    const rules = parseStatus([200, '3xx']);
    expect('rules' in rules && [200, 204, 301, 399, 404].map((c) => statusMatches(rules.rules, c))).toEqual([
      true,
      false,
      true,
      true,
      false,
    ]);
    expect(parseStatus('600')).toEqual({ error: 'status "600" is not an HTTP status (100-599) or a class like 2xx' });
    expect(parseStatus([])).toEqual({ error: 'status is an empty list' });
  });
});

describe('planning health', () => {
  it('expands ${VAR} in the URL; a bad expanded address is a problem at the field', () => {
    const ok = build({ http: 'http://${SVC}/healthz', timeout: '1m', interval: '2s' }, { SVC: '10.1.2.3:8080' });
    const e = ok.steps[0]!.batches[0]!.hosts[0]!.actions[0] as HealthEntry;
    expect(e).toMatchObject({
      kind: 'health',
      host: '10.1.2.3',
      port: 8080,
      path: '/healthz',
      timeoutMs: 60_000,
      intervalMs: 2_000,
      maxAttempts: 30,
      via: 'ssh',
    });
    try {
      build({ http: 'http://${SVC}/healthz', timeout: '1m' }, { SVC: '10.1.2.3:99999' });
      expect.unreachable();
    } catch (x) {
      expect(x).toBeInstanceOf(UserError);
      const p = (x as UserError).problems[0]!;
      expect(p.message).toBe('health http "http://10.1.2.3:99999/healthz": port "99999" is not a number from 1 to 65535');
      expect(p.pos).toMatchObject({ line: 7, col: 25 });
    }
  });

  it('the dry run shows the probe, where it is made from and its budget', () => {
    const p = build({ tcp: '${DB}', timeout: '30s' }, { DB: '127.0.0.1:5432' }, { local: true });
    const text = renderPlan(p, new Redactor());
    expect(text).toContain(`1. [health] health 127.0.0.1:5432
         tcp connect to 127.0.0.1:5432: healthy when the connection opens
           from the orchestrator (local host: a direct connection)
           an attempt every 1s for at most 30s (at most 30 attempts; each waits at most 10s for an answer)`);
  });
});
