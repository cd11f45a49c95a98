/**
 * `--offline` (plan, rollback): before anything runs, every artifact the run needs is listed
 * and found in the local cache, verified (sha256 of the payload). A pull by tag (a tag needs
 * resolving: only a registry can), a push or promote (they write to a registry), or a digest
 * not in the cache: exit 2, each named at its action. The plan records the cache it reads
 * from; dry-run prints it.
 */
import { Problems } from '../errors.js';
import { checkCached, checkCachedIndex, descriptorOf, noteUse } from '../engine/cache.js';
import type { RunPlan } from '../plan/types.js';

/** `touch`: a real run marks the cached artifacts as in use now (a dry-run writes nothing). */
export async function checkOffline(plan: RunPlan, cacheDir: string, touch: boolean): Promise<void> {
  const problems = new Problems();
  const seen = new Set<string>();
  const artifacts = new Set<string>();
  for (const s of plan.steps) {
    if (s.skipped) continue;
    for (const b of s.batches)
      for (const h of b.hosts)
        for (const a of h.actions) {
          const once = (key: string, f: () => Promise<void> | void) => {
            if (seen.has(key)) return;
            seen.add(key);
            return f();
          };
          if (a.kind === 'push')
            await once(`push\0${a.index}\0${s.name}`, () =>
              problems.add(
                `--offline: step "${s.name}" pushes to registry "${a.registry}", which is not contacted offline`,
                a.pos,
                'leave the step out (--steps / --from-step), or run without --offline',
              ),
            );
          else if (a.kind === 'promote')
            await once(`promote\0${a.index}\0${s.name}`, () =>
              problems.add(
                `--offline: step "${s.name}" promotes ${a.name}:${a.tag} from registry "${a.from}" to "${a.to}", which are not contacted offline`,
                a.pos,
                'leave the step out (--steps / --from-step), or run without --offline',
              ),
            );
          else if (a.kind === 'pull' && a.digest === undefined)
            await once(`tag\0${a.registry}\0${a.name}\0${a.tag}`, () =>
              problems.add(
                `--offline: pull ${a.name}:${a.tag} needs its tag resolved by registry "${a.registry}"`,
                a.pos,
                'pin it: digest: sha256:… on the pull, or --replay / --resume a run that resolved it (its digests come from the audit log)',
              ),
            );
          else if (a.kind === 'pull' && a.digest !== undefined) {
            const digest = a.digest;
            await once(`digest\0${digest}`, async () => {
              artifacts.add(digest);
              const got = await checkCached(cacheDir, digest);
              // A multi-platform artifact (the replay pins its index): every platform an online run cached.
              const index = 'missing' in got ? await checkCachedIndex(cacheDir, digest) : undefined;
              if (index && 'index' in index) {
                if (touch)
                  for (const p of index.platforms)
                    await noteUse(cacheDir, {
                      ...descriptorOf(p.record, a.registry, a.name),
                      index: { digest, platforms: index.index.platforms, annotations: index.index.annotations },
                      platform: p.platform,
                    });
              } else if ('missing' in got) {
                problems.add(
                  `--offline: ${a.name}@${digest} (registry "${a.registry}"): ${index?.missing ?? got.missing} (${cacheDir})`,
                  a.pos,
                  'run once without --offline to fill the cache (--cache-dir if it is elsewhere)',
                );
              } else if (touch) await noteUse(cacheDir, descriptorOf(got.record, a.registry, a.name));
            });
          }
        }
  }
  problems.throwIfAny();
  plan.offline = { cacheDir, artifacts: artifacts.size };
}
