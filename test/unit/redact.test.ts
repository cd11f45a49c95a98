/** The Redactor: taint through expansion, multi-line values, scrubbing a byte stream. */
import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/env/secrets.js';
import { envRefs, loadEnvSources } from '../../src/env/resolve.js';
import { action, hadesfile, job, plan, step } from '../helpers/model.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function feed(r: Redactor, chunks: Buffer[]): string {
  const s = r.stream();
  return chunks.map((c) => s.push(c)).join('') + s.end();
}

describe('Redactor', () => {
  it('a var built from a secret is secret (transitively), its value scrubbed', () => {
    const r = new Redactor();
    r.taint(
      new Map([
        ['DB_URL', new Set(['DB_PASSWORD'])],
        ['DSN', new Set(['DB_URL'])],
        ['VERSION', new Set(['TAG'])],
      ]),
    );
    expect(r.isSecret('DB_URL')).toBe(true);
    expect(r.isSecret('DSN')).toBe(true);
    expect(r.isSecret('VERSION')).toBe(false);
    r.learn({ DB_URL: 'postgres://u:pw@db', VERSION: 'v1' });
    expect(r.env({ DB_URL: 'postgres://u:pw@db', VERSION: 'v1' })).toEqual({ DB_URL: '***', VERSION: 'v1' });
    expect(r.text('connect postgres://u:pw@db')).toBe('connect ***');
  });

  it('scrubs each non-trivial line of a multi-line secret, and the whole', () => {
    const r = new Redactor();
    r.learn({ TLS_KEY: '-----BEGIN K-----\r\nline-one-abc\n  line-two-def  \nab\n-----END K-----' });
    expect(r.text('x line-one-abc y')).toBe('x *** y');
    expect(r.text('line-two-def')).toBe('***');
    expect(r.text('ab cd')).toBe('ab cd'); // too short to scrub from free text
  });

  it('a secret split across chunks, even inside a UTF-8 character, is caught; other text flows', () => {
    const r = new Redactor();
    r.learn({ API_TOKEN: 'tok-€uro-42' });
    const bytes = Buffer.from('say tok-€uro-42!\n');
    for (let i = 1; i < bytes.length; i++) expect(feed(r, [bytes.subarray(0, i), bytes.subarray(i)])).toBe('say ***!\n');
    expect(
      feed(
        r,
        [...bytes].map((b) => Buffer.from([b])),
      ),
    ).toBe('say ***!\n');
    const s = r.stream();
    expect(s.push(Buffer.from('hello\n'))).toBe('hello\n'); // nothing held: no secret can start here
    expect(s.push(Buffer.from('a tok-'))).toBe('a '); // may be the start of the secret: held
    expect(s.push(Buffer.from('et\n'))).toBe('tok-et\n');
    expect(s.push(Buffer.from('tok'))).toBe('');
    expect(s.end()).toBe('tok'); // the stream's end releases what was held
  });

  it('a multi-line secret printed whole is one mask; printed in pieces, each line is masked', () => {
    const r = new Redactor();
    r.learn({ TLS_KEY: 'first-line-1\nsecond-line-2' });
    expect(feed(r, [Buffer.from('first-line-1\nsec'), Buffer.from('ond-line-2\n')])).toBe('***\n');
    expect(feed(r, [Buffer.from('second-line-2\nfirst-line-1\n')])).toBe('***\n***\n');
  });
});

describe('envRefs', () => {
  it('records what file, -e, plan and step vars are built from', () => {
    const p = plan('p', [step('s', 'j', ['localhost'], { env: { X: '${DB_URL:-none}' } })], { DB_URL: 'u:${DB_PASSWORD}@db' });
    const hf = hadesfile({ jobs: [job('j', [action('run', 'true')])], plans: [p] });
    hf.baseDir = mkdtempSync(join(tmpdir(), 'hades-refs-'));
    writeFileSync(join(hf.baseDir, '.env'), 'A=${DB_PASSWORD}\nB=$C-x\n');
    const src = loadEnvSources(hf, {
      cliVars: ['E=${TOKEN_X}'],
      envFiles: [],
      cwd: '/',
      osEnv: { DB_PASSWORD: 'pw-1234', C: 'c', TOKEN_X: 't' },
    });
    const refs = envRefs(p, src);
    expect(Object.fromEntries([...refs].map(([k, v]) => [k, [...v]]))).toEqual({
      A: ['DB_PASSWORD'],
      B: ['C'],
      E: ['TOKEN_X'],
      DB_URL: ['DB_PASSWORD'],
      X: ['DB_URL'],
    });
  });
});
