/**
 * Reads the orchestrator-side files the planner asked for (copy sources, templates) —
 * the one I/O step before planning, so the planner itself stays pure.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { FileFact } from '../actions/types.js';
import { MapSources, buildRunPlan, type PlanInput } from '../plan/plan.js';
import type { RunPlan } from '../plan/types.js';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function readFact(path: string, want: 'digest' | 'text'): Promise<FileFact> {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return { path, sha256: '', size: 0, isDirectory: true };
    if (!st.isFile()) return { path, sha256: '', size: 0, isDirectory: false, error: `${path} is not a regular file` };
    if (want === 'text') {
      const buf = readFileSync(path);
      return { path, sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length, isDirectory: false, text: buf.toString('utf8') };
    }
    return { path, sha256: await sha256File(path), size: st.size, isDirectory: false };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { path, sha256: '', size: 0, isDirectory: false, error: code === 'ENOENT' ? `${path}: no such file` : `${path}: ${(e as Error).message}` };
  }
}

/** Plans, reading whatever sources the planner needs, then plans again (pure both times). */
export async function planWithSources(input: Omit<PlanInput, 'sources'>): Promise<RunPlan> {
  const facts = new Map<string, FileFact>();
  for (let pass = 0; pass < 3; pass++) {
    const sources = new MapSources(facts);
    const plan = buildRunPlan({ ...input, sources });
    if (!sources.pending()) return plan;
    await Promise.all([...sources.needed].map(async ([p, want]) => facts.set(p, await readFact(p, want))));
  }
  throw new Error('planner kept asking for sources (bug)');
}
