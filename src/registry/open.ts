/** Opens the registry a hadesfile declares. */
import type { RegistrySpec } from '../config/model.js';
import { UserError } from '../errors.js';
import { openFilesystemRegistry } from './fs/registry.js';
import { openOciRegistry } from './oci/registry.js';
import type { Registry } from './types.js';

export interface OpenRegistryOptions {
  /**
   * Hears what the registry reports without failing (a mirror that failed, and what is tried
   * next). A plan run turns it into `registry.warning` events; by default (`hades registry …`)
   * a "warning: …" line on stderr.
   */
  onWarning?: (message: string) => void;
}

export function openRegistry(spec: RegistrySpec, opts: OpenRegistryOptions = {}): Registry {
  if (spec.type === 'filesystem') return openFilesystemRegistry(spec);
  if (spec.type === 'oci') return openOciRegistry(spec, opts.onWarning ? { onWarning: opts.onWarning } : {});
  const other = spec as { name: string; type: string; pos: RegistrySpec['pos'] };
  throw new UserError({ message: `registry "${other.name}": type ${other.type} is not supported by this build yet`, pos: other.pos });
}
