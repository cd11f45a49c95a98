/**
 * The bad-hadesfile corpus: every test/fixtures/config/bad/NAME.yaml (or directory NAME/, loaded
 * with -f NAME) must fail with exactly the lines in NAME.expected.txt (UserError.format()).
 * Paths are shown relative to the corpus directory, which is the cwd.
 * After a deliberate message change, review the diff of:
 *   UPDATE_CONFIG_CORPUS=1 npx vitest run test/unit/config-corpus.test.ts
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadHadesfile } from '../helpers/load.js';
import { UserError } from '../../src/errors.js';

const dir = fileURLToPath(new URL('../fixtures/config/bad/', import.meta.url));
const cases = readdirSync(dir)
  .filter((n) => !n.endsWith('.expected.txt'))
  .map((n) => n.replace(/\.ya?ml$/, ''))
  .sort();

function failure(entry: string): string {
  try {
    loadHadesfile({ cwd: dir, files: [entry] });
  } catch (e) {
    if (e instanceof UserError) return e.format() + '\n';
    throw e;
  }
  return '(loaded without errors)\n';
}

describe('bad hadesfile corpus', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const name of cases) {
    it(name, () => {
      const entry = existsSync(`${dir}${name}.yaml`) ? `${name}.yaml` : name;
      const expectedFile = `${dir}${name}.expected.txt`;
      const actual = failure(entry);
      if (process.env.UPDATE_CONFIG_CORPUS === '1') {
        if (process.env.CI === 'true') throw new Error('UPDATE_CONFIG_CORPUS=1 is refused under CI=true: it would rewrite the expected outputs');
        writeFileSync(expectedFile, actual);
      }
      expect(existsSync(expectedFile), `missing ${expectedFile}`).toBe(true);
      expect(actual).toBe(readFileSync(expectedFile, 'utf8'));
      expect(actual).not.toContain('(loaded without errors)');
    });
  }
});
