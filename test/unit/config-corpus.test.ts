/**
 * The bad-hadesfile corpus: every test/fixtures/config/bad/NAME.yaml (or directory NAME/, loaded
 * with -f NAME) must fail with exactly the lines in NAME.expected.txt (UserError.format()): the
 * loader's problems, or when it loads, those of the literal checks (`hades validate` without a plan).
 * Paths are shown relative to the corpus directory, which is the cwd.
 * After a deliberate message change, review the diff of:
 *   UPDATE_CONFIG_CORPUS=1 npx vitest run test/unit/config-corpus.test.ts
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadHadesfile } from '../helpers/load.js';
import { UserError } from '../../src/errors.js';
import { lintHadesfile } from '../../src/plan/lint.js';

const dir = fileURLToPath(new URL('../fixtures/config/bad/', import.meta.url));
const cases = readdirSync(dir)
  .filter((n) => !n.endsWith('.expected.txt'))
  .map((n) => n.replace(/\.ya?ml$/, ''))
  .sort();

/** What `hades validate` (no plan) reports: the loader's problems, else the literal checks of every plan and job. */
async function failure(entry: string): Promise<string> {
  try {
    const hf = loadHadesfile({ cwd: dir, files: [entry] });
    const problems = await lintHadesfile(hf);
    if (problems.length) throw new UserError(problems);
  } catch (e) {
    // A template's path is absolute in its message: shown relative to the corpus here, so the expected files hold no checkout path.
    if (e instanceof UserError) return `${e.format().replaceAll(dir, '')}\n`;
    throw e;
  }
  return '(loaded without errors)\n';
}

describe('bad hadesfile corpus', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const name of cases) {
    it(name, async () => {
      const entry = existsSync(`${dir}${name}.yaml`) ? `${name}.yaml` : name;
      const expectedFile = `${dir}${name}.expected.txt`;
      const actual = await failure(entry);
      if (process.env.UPDATE_CONFIG_CORPUS === '1') {
        if (process.env.CI === 'true')
          throw new Error('UPDATE_CONFIG_CORPUS=1 is refused under CI=true: it would rewrite the expected outputs');
        writeFileSync(expectedFile, actual);
      }
      expect(existsSync(expectedFile), `missing ${expectedFile}`).toBe(true);
      expect(actual).toBe(readFileSync(expectedFile, 'utf8'));
      expect(actual).not.toContain('(loaded without errors)');
    });
  }
});
