/**
 * Reads the orchestrator-side files the planner asked for (template sources) — the one
 * I/O step before planning, so the planner itself stays pure.
 */
import { readFile, stat } from 'node:fs/promises';
import type { FileFact } from '../actions/types.js';
import { MapSources, buildRunPlan, type PlanInput } from './plan.js';
import type { RunPlan } from './types.js';

export async function readFact(path: string): Promise<FileFact> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return { path, error: `${path} is not a regular file` };
    return { path, text: await readFile(path, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { path, error: code === 'ENOENT' ? `${path}: no such file` : `${path}: ${(e as Error).message}` };
  }
}

/** Plans, reading whatever sources the planner needs, then plans again (pure both times). */
export async function planWithSources(input: Omit<PlanInput, 'sources'>): Promise<RunPlan> {
  const facts = new Map<string, FileFact>();
  for (let pass = 0; pass < 3; pass++) {
    const sources = new MapSources(facts);
    const plan = buildRunPlan({ ...input, sources });
    if (!sources.pending()) return plan;
    await Promise.all([...sources.needed].map(async (p) => facts.set(p, await readFact(p))));
  }
  throw new Error('planner kept asking for sources (bug)');
}
