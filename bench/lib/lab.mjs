/**
 * Loads the real-sshd test lab (test/lab/lab.ts) in plain `node`: transpiles it with the
 * TypeScript compiler API (transpile only, no type check — it imports only node builtins)
 * into a temp directory and imports it. Same approach as test/fixtures/registry/build.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from './util.mjs';

export async function loadLab() {
  const src = join(ROOT, 'test/lab/lab.ts');
  const out = mkdtempSync(join(tmpdir(), 'hades-bench-lab-'));
  const js = ts.transpileModule(readFileSync(src, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: src,
  }).outputText;
  const file = join(out, 'lab.mjs');
  writeFileSync(file, js);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
