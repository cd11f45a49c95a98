/**
 * Loads the test lab's TypeScript modules (test/lab/lab.ts: real sshd hosts; test/lab/
 * registry.ts: a docker-registry) in plain `node`: transpiles one with the TypeScript
 * compiler API (transpile only, no type check — they import only node builtins) into a
 * temp directory and imports it. Same approach as test/fixtures/registry/build.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from './util.mjs';

async function loadLabModule(rel) {
  const src = join(ROOT, rel);
  const out = mkdtempSync(join(tmpdir(), 'hades-bench-lab-'));
  const js = ts.transpileModule(readFileSync(src, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: src,
  }).outputText;
  const file = join(out, basename(rel).replace(/\.ts$/, '.mjs'));
  writeFileSync(file, js);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** test/lab/lab.ts: startLab, startDelayProxy, ... */
export const loadLab = () => loadLabModule('test/lab/lab.ts');

/** test/lab/registry.ts: startRegistry, registryPrerequisites, ... */
export const loadRegistry = () => loadLabModule('test/lab/registry.ts');
