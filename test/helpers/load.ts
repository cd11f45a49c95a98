/** The loader as the CLI calls it: with the registered action kinds' loader checks. */
import { ACTIONS } from '../../src/actions/index.js';
import { kindTable } from '../../src/config/action-kinds.js';
import { type LoadOptions, loadHadesfile as load } from '../../src/config/load.js';
import type { Hadesfile } from '../../src/config/model.js';

export const actionKinds = kindTable(ACTIONS);

export function loadHadesfile(opts: Omit<LoadOptions, 'actions'>): Hadesfile {
  return load({ ...opts, actions: actionKinds });
}
