/**
 * pull `via: host` needs an `oci` registry: hosts download the blob from its HTTP API. A
 * filesystem registry lives on the orchestrator, where no host can reach it: a load error
 * at the `via` field (exit 2), not a failure on every host at run time.
 */
import type { Position } from '../errors.js';
import type { ActionSpec, Hadesfile } from './model.js';

export function checkPullVia(
  model: Hadesfile,
  a: ActionSpec,
  registry: string,
  add: (message: string, pos: Position, hint: string) => void,
): void {
  const spec = a.spec as Record<string, unknown>;
  if (spec.via !== 'host') return;
  const r = model.registries.get(registry);
  if (r?.type !== 'filesystem') return;
  add(
    `pull via: host needs an oci registry, but registry "${registry}" is a filesystem registry (on the orchestrator, where hosts cannot download from it)`,
    a.fieldPos.via ?? a.pos,
    'remove via: host (the default via: orchestrator streams the payload to each host), or pull from an oci registry',
  );
}
