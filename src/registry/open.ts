/** Opens the registry a hadesfile declares. */
import type { RegistrySpec } from '../config/model.js';
import { UserError } from '../errors.js';
import { openFilesystemRegistry } from './fs/registry.js';
import { openOciRegistry } from './oci/registry.js';
import type { Registry } from './types.js';

export function openRegistry(spec: RegistrySpec): Registry {
  if (spec.type === 'filesystem') return openFilesystemRegistry(spec);
  if (spec.type === 'oci') return openOciRegistry(spec);
  const other = spec as { name: string; type: string; pos: RegistrySpec['pos'] };
  throw new UserError({ message: `registry "${other.name}": type ${other.type} is not supported by this build yet`, pos: other.pos });
}
