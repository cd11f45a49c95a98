/**
 * Loads the test lab's TypeScript modules (test/lab/lab.ts: real sshd hosts; test/lab/
 * registry.ts: a docker-registry) in plain `node`: transpiles every test/lab/*.ts with the
 * TypeScript compiler API (transpile only, no type check — the modules loaded here import only
 * node builtins and each other) into one temp directory as .mjs, rewriting their local
 * `./x.js` imports to `./x.mjs`, and imports the one asked for. Same approach as
 * test/fixtures/registry/build.ts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from './util.mjs';

const LAB_DIR = join(ROOT, 'test/lab');

async function loadLabModule(rel) {
  const out = mkdtempSync(join(tmpdir(), 'hades-bench-lab-'));
  try {
    for (const f of readdirSync(LAB_DIR).filter((n) => n.endsWith('.ts'))) {
      const src = join(LAB_DIR, f);
      const js = ts.transpileModule(readFileSync(src, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: src,
      }).outputText;
      // import … from './x.js' / export … from './x.js' / import('./x.js') → the sibling .mjs
      const local = js.replace(/((?:from|import)\s*\(?\s*['"])\.\/([\w.-]+)\.js(['"])/g, '$1./$2.mjs$3');
      writeFileSync(join(out, f.replace(/\.ts$/, '.mjs')), local);
    }
    return await import(pathToFileURL(join(out, basename(rel).replace(/\.ts$/, '.mjs'))).href);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** test/lab/lab.ts: startLab, startDelayProxy, ... */
export const loadLab = () => loadLabModule('test/lab/lab.ts');

/** test/lab/registry.ts: startRegistry, registryPrerequisites, ... */
export const loadRegistry = () => loadLabModule('test/lab/registry.ts');
