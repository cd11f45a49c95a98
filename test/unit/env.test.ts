import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expand } from '../../src/env/expand.js';
import { loadEnvSources, resolvePlanEnv } from '../../src/env/resolve.js';
import { Redactor } from '../../src/env/secrets.js';
import { Problems, type UserError } from '../../src/errors.js';
import { action, hadesfile, job, plan, step } from '../helpers/model.js';

describe('expand', () => {
  it.each([
    ['${A}', { A: 'x' }, 'x', []],
    ['${A:-d}', {}, 'd', []],
    ['${A:-d}', { A: '' }, 'd', []],
    ['${A}', { A: '' }, '', []],
    ['pre-${A}-${B}', { A: '1' }, 'pre-1-', ['B']],
    ['$A stays', { A: 'x' }, '$A stays', []],
    ['$${A}', { A: 'x' }, '${A}', []],
    ['${A:-with space}', {}, 'with space', []],
  ])('%s', (input, vars, value, missing) => {
    expect(expand(input, vars as Record<string, string>)).toEqual({ value, missing });
  });
});

function setup(
  extra: {
    jobEnv?: Record<string, { required: boolean; default?: string }>;
    planEnv?: Record<string, string>;
    stepEnv?: Record<string, string>;
  } = {},
) {
  const envContract =
    extra.jobEnv && Object.fromEntries(Object.entries(extra.jobEnv).map(([k, v]) => [k, { ...v, pos: { file: 'h', line: 1, col: 1 } }]));
  const j = job('deploy', [action('run', 'true')], envContract ? { env: envContract } : {});
  const p = plan('release', [step('s1', 'deploy', ['localhost'], { env: extra.stepEnv ?? {} })], extra.planEnv ?? {});
  const hf = hadesfile({ jobs: [j], plans: [p] });
  hf.baseDir = mkdtempSync(join(tmpdir(), 'hades-env-'));
  return { hf, p };
}

describe('env layering', () => {
  it('job defaults < plan < step < env files < -e', () => {
    const { hf, p } = setup({
      jobEnv: {
        A: { required: false, default: 'job' },
        B: { required: false, default: 'job' },
        C: { required: false, default: 'job' },
        D: { required: false, default: 'job' },
        E: { required: false, default: 'job' },
      },
      planEnv: { B: 'plan', C: 'plan', D: 'plan', E: 'plan' },
      stepEnv: { C: 'step', D: 'step', E: 'step' },
    });
    const f = join(hf.baseDir, 'extra.env');
    writeFileSync(f, 'D=file\nE=file\n');
    const src = loadEnvSources(hf, { cliVars: ['E=cli=with,commas'], envFiles: [f], cwd: '/', osEnv: {} });
    const [s] = resolvePlanEnv(hf, p, src);
    expect(s!.env).toEqual({ A: 'job', B: 'plan', C: 'step', D: 'file', E: 'cli=with,commas' });
  });

  it('.env beside the hadesfile is read, expanded with dotenv conventions', () => {
    const { hf, p } = setup({ planEnv: { V: '${FROM_DOTENV}' } });
    writeFileSync(join(hf.baseDir, '.env'), 'BASE=x\nFROM_DOTENV=${BASE}-y\n');
    const src = loadEnvSources(hf, { cliVars: [], envFiles: [], cwd: '/', osEnv: {} });
    const [s] = resolvePlanEnv(hf, p, src);
    expect(s!.env.V).toBe('x-y');
    expect(s!.env.BASE).toBe('x'); // a job without a contract receives every var
  });

  it('plan/step values expand from the OS env; a step may use plan vars', () => {
    const { hf, p } = setup({ planEnv: { TAG: '${CI_TAG}' }, stepEnv: { VERSION: 'v-${TAG}', D: '${NOPE:-dflt}' } });
    const src = loadEnvSources(hf, { cliVars: [], envFiles: [], cwd: '/', osEnv: { CI_TAG: '42' } });
    expect(resolvePlanEnv(hf, p, src)[0]!.env).toEqual({ TAG: '42', VERSION: 'v-42', D: 'dflt' });
  });

  it('a job without env: does not receive the OS environment', () => {
    const { hf, p } = setup({ planEnv: { A: '1' } });
    const src = loadEnvSources(hf, { cliVars: [], envFiles: [], cwd: '/', osEnv: { HOME: '/root', SECRET_THING: 'x' } });
    expect(resolvePlanEnv(hf, p, src)[0]!.env).toEqual({ A: '1' });
  });

  it('a job with a contract receives only what it declares', () => {
    const { hf, p } = setup({ jobEnv: { A: { required: true } }, planEnv: { A: '1', OTHER: '2' } });
    const src = loadEnvSources(hf, { cliVars: ['ALSO=3'], envFiles: [], cwd: '/', osEnv: {} });
    expect(resolvePlanEnv(hf, p, src)[0]!.env).toEqual({ A: '1' });
  });

  it('reports every missing variable at once, before anything runs', () => {
    const { hf, p } = setup({
      jobEnv: { A: { required: true }, B: { required: true }, C: { required: false } },
      planEnv: { X: '${UNSET_ONE}' },
      stepEnv: { Y: '${UNSET_TWO}' },
    });
    try {
      resolvePlanEnv(hf, p, loadEnvSources(hf, { cliVars: [], envFiles: [], cwd: '/', osEnv: {} }));
      expect.unreachable();
    } catch (e) {
      const msg = (e as UserError).format();
      expect(msg).toContain('${UNSET_ONE} is not set');
      expect(msg).toContain('${UNSET_TWO} is not set');
      expect(msg).toContain('job "deploy" requires "A", "B", which are not set');
    }
  });

  it('bad -e flags and env files are problems', () => {
    const { hf } = setup();
    const ps = new Problems();
    loadEnvSources(hf, { cliVars: ['BAD', '1X=2', 'HADES_PLAN=x'], envFiles: ['/nonexistent.env'], cwd: '/', osEnv: {} }, ps);
    const msgs = ps.list.map((x) => x.message);
    expect(msgs).toEqual([
      '--env-file /nonexistent.env: no such file',
      '-e "BAD": expected KEY=VALUE',
      '-e "1X=2": invalid variable name "1X"',
      '-e HADES_PLAN: HADES_PLAN is a read-only built-in variable',
    ]);
  });
});

describe('redaction', () => {
  it('masks secret-named vars and scrubs their values from text', () => {
    const r = new Redactor();
    r.learn({ API_TOKEN: 'tok-123456', DB_PASSWORD: 'hunter22', VERSION: 'v1', SSH_KEY_PATH: '/k' });
    expect(r.env({ API_TOKEN: 'tok-123456', VERSION: 'v1' })).toEqual({ API_TOKEN: '***', VERSION: 'v1' });
    expect(r.text('curl -H "Authorization: tok-123456" && echo hunter22')).toBe('curl -H "Authorization: ***" && echo ***');
    expect(r.deep({ a: ['x tok-123456'], b: 3 })).toEqual({ a: ['x ***'], b: 3 });
    expect(r.isSecret('my_secret_value')).toBe(true);
    expect(r.isSecret('VERSION')).toBe(false);
  });

  it('extra patterns are configurable', () => {
    const r = new Redactor(['*_CRED*']);
    expect(r.isSecret('AWS_CREDENTIALS')).toBe(true);
    expect(r.isSecret('API_TOKEN')).toBe(false);
  });
});
