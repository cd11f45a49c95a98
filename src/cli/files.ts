/** The hadesfiles a command names (-f/-i), loaded and validated. Light: no planner, no registries (the action modules only for their loader checks). */
import { ACTIONS } from '../actions/index.js';
import { kindTable } from '../config/action-kinds.js';
import { loadHadesfile } from '../config/load.js';
import type { Hadesfile } from '../config/model.js';
import type { CommonOptions } from './main.js';

const actionKinds = kindTable(ACTIONS);

export function loadFiles(opts: CommonOptions): Hadesfile {
  return loadHadesfile({ files: opts.file, inventory: opts.inventory, cwd: process.cwd(), actions: actionKinds });
}
