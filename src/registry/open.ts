/** Opens the registry a hadesfile declares. */
import type { RegistrySpec } from '../config/model.js';
import { UserError } from '../errors.js';
import { openFilesystemRegistry } from './filesystem.js';
import type { Registry } from './types.js';

export function openRegistry(spec: RegistrySpec): Registry {
  if (spec.type === 'filesystem') return openFilesystemRegistry(spec);
  throw new UserError({ message: `registry "${spec.name}": type ${spec.type} is not supported by this build yet`, pos: spec.pos });
}
