/**
 * The JSON schema and its precompiled validator are build outputs (scripts/build-schema.mjs, the
 * first step of `npm run build`): schemas/hadesfile.schema.json = src/config/schema.base.json + each
 * registered action module's schema fragment; the validator is ajv "standalone" code compiled from it.
 * These tests check what the build wrote and the schema's own rules; they write nothing.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/actions/index.js';
import { loadSchema } from '../../src/config/load.js';
import { ACTION_KINDS } from '../../src/config/schema-validator.generated.js';
// @ts-expect-error: a plain .mjs build script, no type declarations
import { generate, SCHEMA_FILE, VALIDATOR_FILE } from '../../scripts/build-schema.mjs';

describe('hadesfile JSON schema', () => {
  it('the schema and the precompiled validator are what the build makes from the sources', async () => {
    const { schema, validator } = (await generate()) as { schema: string; validator: string };
    expect(readFileSync(SCHEMA_FILE, 'utf8') === schema, 'schemas/hadesfile.schema.json is stale: run npm run build').toBe(true);
    expect(readFileSync(VALIDATOR_FILE, 'utf8') === validator, 'schema-validator.generated.ts is stale: run npm run build').toBe(true);
  });

  it('lists exactly the registered action kinds, in registration order, each with its fragment', () => {
    expect(ACTION_KINDS).toEqual(ACTIONS.map((m) => m.kind));
    const action = (loadSchema() as { definitions: { action: { properties: Record<string, unknown> } } }).definitions.action;
    for (const m of ACTIONS) expect(action.properties[m.kind]).toEqual(m.schema);
  });

  it('is strict: every object schema forbids unknown keys and has a description or title', () => {
    const schema = loadSchema() as Record<string, unknown>;
    const loose: string[] = [];
    const visit = (s: unknown, where: string): void => {
      if (!s || typeof s !== 'object') return;
      const o = s as Record<string, unknown>;
      const isObj = o.type === 'object' || (Array.isArray(o.type) && o.type.includes('object'));
      // registry dispatches on `type` to two strict schemas (allOf/if/then); envMap and
      // vars are open maps whose values are checked by additionalProperties schemas.
      if (isObj && o.properties && o.additionalProperties !== false && !o.allOf) loose.push(where);
      if (isObj && !o.description && !o.title && !where.endsWith('/if')) loose.push(`${where} (no description)`);
      for (const [k, v] of Object.entries(o)) {
        if (k === 'properties' || k === 'definitions') {
          for (const [pk, pv] of Object.entries(v as Record<string, unknown>)) visit(pv, `${where}/${k}/${pk}`);
        } else if (v && typeof v === 'object') visit(v, `${where}/${k}`);
      }
    };
    visit(schema, '#');
    expect(loose.filter((w) => !/\/(if|then|else)$/.test(w) && !w.includes('/if/'))).toEqual([]);
  });

  it('compiles under ajv strict mode and accepts an empty document', () => {
    const ajv = new Ajv({ strict: true, allowUnionTypes: true });
    ajv.addVocabulary(['x-hint']);
    const v = ajv.compile(loadSchema());
    expect(v({})).toBe(true);
    expect(v(null)).toBe(true);
    expect(v({ jobs: { j: { actions: [{ run: 'true' }] } } })).toBe(true);
    expect(v({ jobz: {} })).toBe(false);
  });
});
