/** The hadesfiles a command names (-f/-i), loaded and validated. Light: no planner, no registries. */
import { loadHadesfile } from '../config/load.js';
import type { Hadesfile } from '../config/model.js';
import type { CommonOptions } from './main.js';

export function loadFiles(opts: CommonOptions): Hadesfile {
  return loadHadesfile({ files: opts.file, inventory: opts.inventory, cwd: process.cwd() });
}
