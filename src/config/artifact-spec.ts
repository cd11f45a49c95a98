/**
 * A job's `artifacts:` entry → its model: one payload (`path`) or one per platform
 * (`platforms: {linux/amd64: ./a, …}`, keys checked as OCI platforms), plus an optional
 * `config:` (a JSON file relative to the hadesfile, read and checked here, or an inline map)
 * stored as the pushed manifest's config blob with `config_media_type`. Problems carry the
 * position of the offending key or value.
 */
import { readFileSync } from 'node:fs';
import type { Position } from '../errors.js';
import { formatPlatform, parsePlatform } from './platform-name.js';
import type { ArtifactSpec } from './model.js';
import type { Locator, Path } from './yaml-positions.js';

type Add = (message: string, pos: Position, hint: string) => void;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function buildArtifactSpec(
  v: Record<string, unknown>,
  path: Path,
  loc: Locator,
  resolvePath: (p: string) => string,
  add: Add,
): ArtifactSpec | undefined {
  const pos = loc.keyPos(path);
  const hasPath = typeof v.path === 'string' && v.path !== '';
  if (hasPath && v.platforms !== undefined) {
    add(
      'an artifact has either path or platforms, not both',
      loc.keyPos([...path, 'platforms']),
      'one payload: path; one per platform: platforms',
    );
    return undefined;
  }
  if (!hasPath && v.platforms === undefined) {
    add('an artifact needs path (or platforms)', pos, 'add path: ./file, or platforms: {linux/amd64: ./file-amd64}');
    return undefined;
  }
  const spec: ArtifactSpec = { path: hasPath ? resolvePath(v.path as string) : '', pos };
  if (isObj(v.platforms)) {
    // A platform written twice is a duplicate YAML key (the loader reports it); names are not normalised.
    const list: { platform: string; path: string }[] = [];
    for (const [k, p] of Object.entries(v.platforms)) {
      const parsed = parsePlatform(k);
      if (typeof parsed === 'string') {
        add(
          parsed,
          loc.keyPos([...path, 'platforms', k]),
          'platforms are os/arch or os/arch/variant, e.g. linux/amd64, linux/arm64, linux/arm/v7',
        );
        continue;
      }
      if (typeof p === 'string' && p !== '') list.push({ platform: formatPlatform(parsed), path: resolvePath(p) });
    }
    if (Object.keys(v.platforms).length === 0)
      add('platforms lists no platform', loc.valuePos([...path, 'platforms']), 'e.g. platforms: {linux/amd64: ./app-amd64}');
    spec.platforms = list;
  }
  if (typeof v.config === 'string') {
    const file = resolvePath(v.config);
    const cp = loc.valuePos([...path, 'config']);
    let data: Buffer | undefined;
    try {
      data = readFileSync(file);
    } catch (e) {
      add(
        `config file ${file} can't be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        cp,
        'config: names a JSON file relative to this hadesfile',
      );
    }
    if (data) {
      try {
        JSON.parse(data.toString('utf8'));
        spec.config = { data, source: file, pos: cp };
      } catch (e) {
        add(`config file ${file} is not JSON (${(e as Error).message.split('\n')[0]})`, cp, 'the config blob must be a JSON document');
      }
    }
  } else if (isObj(v.config)) {
    spec.config = { data: Buffer.from(JSON.stringify(v.config)), source: 'inline', pos: loc.valuePos([...path, 'config']) };
  }
  if (typeof v.config_media_type === 'string') {
    if (v.config === undefined)
      add('config_media_type without config', loc.keyPos([...path, 'config_media_type']), 'add config: (a JSON file or a map)');
    else spec.configMediaType = v.config_media_type;
  }
  return spec;
}
