#!/usr/bin/env node
/**
 * Writes the growth plot (bench/RESULTS-growth.svg) and prints the growth table from the
 * rollout benchmark's raw results (bench/RESULTS.json, written by bench/rollout.mjs), so the
 * plot can be redrawn without running the benchmark again.
 *
 *   node bench/growth.mjs [--in bench/RESULTS.json] [--svg bench/RESULTS-growth.svg]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { growthSvg, growthTable } from './lib/growth.mjs';
import { ROOT } from './lib/util.mjs';

const { values: flags } = parseArgs({
  options: {
    in: { type: 'string', default: join(ROOT, 'bench/RESULTS.json') },
    svg: { type: 'string', default: join(ROOT, 'bench/RESULTS-growth.svg') },
  },
});
const { results } = JSON.parse(readFileSync(resolve(flags.in), 'utf8'));
writeFileSync(resolve(flags.svg), growthSvg(results));
process.stdout.write(`${growthTable(results).join('\n')}\n`);
process.stderr.write(`written: ${resolve(flags.svg)}\n`);
