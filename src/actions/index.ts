/** The action kinds this build knows, by name. */
import type { ActionEntry } from '../plan/types.js';
import { copyAction } from './copy.js';
import { mkdirAction } from './mkdir.js';
import { runAction } from './run.js';
import { templateAction } from './template.js';
import type { ActionModule } from './types.js';
import { waitAction } from './wait.js';
import { pushAction } from './push.js';
import { pullAction } from './pull.js';
import { promoteAction } from './promote.js';

const modules: Record<string, ActionModule<any>> = {
  run: runAction,
  mkdir: mkdirAction,
  copy: copyAction,
  template: templateAction,
  wait: waitAction,
  push: pushAction,
  pull: pullAction,
  promote: promoteAction,
};

export function actionModule(kind: string): ActionModule<ActionEntry> | undefined {
  return modules[kind];
}
