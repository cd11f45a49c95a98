#!/usr/bin/env node
/**
 * Cold-process timings of the commands that touch no host: `hades validate` on the
 * example, validate / plan --dry-run on a generated N-host hadesfile. No root needed.
 *
 *   node bench/planning.mjs [--hosts 2000] [--runs 5] [--cli dist/bin/hades.js]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { planningBench } from './lib/planning.mjs';
import { CLI } from './lib/util.mjs';

const { values } = parseArgs({
  options: { hosts: { type: 'string', default: '2000' }, runs: { type: 'string', default: '5' }, cli: { type: 'string', default: CLI } },
});
await planningBench({ hosts: Number(values.hosts), runs: Number(values.runs), cli: resolve(values.cli), log: (l) => console.log(l) });
