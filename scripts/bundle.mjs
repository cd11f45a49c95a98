#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/cli/main.js, from `tsc`) into dist/bin/: the `hades` entry
 * plus one file per lazily loaded command (esbuild code splitting keeps every `await import()`
 * lazy). This is what package.json's `bin` runs, and what the CLI tests and benchmarks spawn.
 *
 * Why: node 20 resolves, reads and compiles ES modules one file at a time and has no compile
 * cache for them. Unbundled, `hades registry pull` loads 261 files (execa alone is 106 files and
 * ~105 ms to import; bundled, ~30 ms). Bundled, every command starts ~0.1 s sooner.
 *
 * Kept outside the bundle (resolved from node_modules at run time):
 *   - ssh2: optional native bindings (cpu-features, its crypto addon) found by `require` paths;
 *   - nunjucks: loaded with createRequire on first template render (template.ts).
 *
 * Output files sit two levels below package.json, like dist/cli/*.js, so the code's
 * `../../package.json` (version.ts) and `../../schemas/` (config/load.ts) still resolve.
 */
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist/bin');

rmSync(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: { hades: 'dist/cli/main.js' },
  outdir: OUT,
  chunkNames: '[name]-[hash]', // beside the entry: `../../` must mean the package root everywhere
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ssh2', 'nunjucks'],
  // CommonJS dependencies bundled into ESM (cross-spawn, …) `require` node builtins at run time.
  banner: {
    js: "import { createRequire as __hadesCreateRequire } from 'node:module'; const require = __hadesCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked', // chained through tsc's maps to src/*.ts (node --enable-source-maps)
  logLevel: 'warning',
  metafile: true,
});
chmodSync(join(OUT, 'hades.js'), 0o755);
const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'));
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundle: ${inputs} modules → ${files.length} files in dist/bin/ (entry dist/bin/hades.js)`);
