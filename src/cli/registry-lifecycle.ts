/**
 * `hades registry tag|exists|rm|gc` (declared in registry-command.ts; loaded only when one runs).
 * The meaning per registry type is in registry/lifecycle.ts, fs/gc.ts and fs/inflight.ts.
 *
 * Exit codes: `exists` 0 present, 1 absent, 2 on any error (and no output unless --output json);
 * the others 0 ok, 1 failed, 2 a usage or user error. `rm` and `gc` (not with --dry-run)
 * record what they removed in an audit log (.hades/runs/<run-id>.jsonl beside the hadesfile,
 * or --log-dir), as `hades lock release --force` does.
 */
import { hostname, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { formatDuration, durationField } from '../config/duration.js';
import type { Hadesfile } from '../config/model.js';
import { outputRedactor } from '../env/secrets.js';
import { EXIT, UserError } from '../errors.js';
import { collectGarbage, DEFAULT_GC_GRACE_MS } from '../registry/fs/gc.js';
import { FilesystemRegistry } from '../registry/fs/registry.js';
import type { Registry } from '../registry/types.js';
import { makeRunId } from './context.js';
import { loadRegistryFiles as loadFiles } from './registry-output.js';
import { print, ref, registryOf, wrap, type RegOptions } from './registry-handlers.js';
import { VERSION } from './version.js';

type AuditSink = import('../report/audit.js').AuditSink;

async function openAudit(
  hf: Hadesfile,
  logDir: string | undefined,
  command: string,
  registry: string,
): Promise<{ audit: AuditSink; runId: string }> {
  const { AuditSink } = await import('../report/audit.js');
  const runId = makeRunId();
  const dir = logDir ? (isAbsolute(logDir) ? logDir : resolve(process.cwd(), logDir)) : join(hf.baseDir, '.hades', 'runs');
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* keep $USER */
  }
  // What goes to disk is scrubbed like what is printed (a registry's error text may repeat a secret).
  const scrub = outputRedactor();
  const audit = new AuditSink(
    dir,
    runId,
    scrub.deep({
      hades: VERSION,
      command,
      user,
      host: hostname(),
      cwd: process.cwd(),
      argv: process.argv.slice(2),
      files: hf.files,
      registry,
    }),
  );
  const write = audit.event.bind(audit);
  audit.event = (e) => write(scrub.deep(e));
  return { audit, runId };
}

function lifecycleOf(reg: Registry): Required<Pick<Registry, 'addTags' | 'removeTag'>> {
  if (!reg.addTags || !reg.removeTag) throw new UserError(`registry "${reg.name}" (${reg.type}) can't add or remove tags`);
  return { addTags: reg.addTags.bind(reg), removeTag: reg.removeTag.bind(reg) };
}

export const lifecycleHandlers = {
  tag: wrap(async (regName: string, text: string, newTags: string[], opts: RegOptions) => {
    const r = ref(text, false);
    const reg = registryOf(loadFiles(opts), regName);
    const res = await lifecycleOf(reg).addTags(r.name, r, newTags);
    const d = res.digest;
    const platforms = res.platforms ? ` (${res.platforms.join(', ')})` : '';
    const lines = [
      ...(res.added.length ? [`tagged ${text} = ${d}${platforms} as ${res.added.join(', ')}`] : []),
      ...(res.unchanged.length ? [`unchanged ${res.unchanged.join(', ')} (already ${d})`] : []),
    ];
    print(
      opts,
      {
        registry: regName,
        name: r.name,
        digest: d,
        ...(res.platforms ? { platforms: res.platforms } : {}),
        added: res.added,
        unchanged: res.unchanged,
      },
      lines.join('\n'),
    );
  }),

  /** 0 present, 1 absent, 2 on any error — whatever the error (unknown registry, bad reference, unreachable registry). */
  exists: async (regName: string, text: string, opts: RegOptions): Promise<number> => {
    let found: boolean;
    try {
      const r = ref(text, false);
      found = await registryOf(loadFiles(opts), regName).exists(r.name, r);
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError({ message: (e as Error).message });
    }
    if (opts.output === 'json') print(opts, { registry: regName, ref: text, exists: found }, '');
    return found ? EXIT.ok : EXIT.failed;
  },

  rm: wrap(async (regName: string, text: string, opts: RegOptions & { force?: boolean; withSharedTags?: boolean; logDir?: string }) => {
    const r = ref(text, true);
    if (r.digest !== undefined)
      throw new UserError({ message: `registry rm removes a tag: ${JSON.stringify(text)} names a digest`, hint: 'write NAME:TAG' });
    if (!opts.force)
      throw new UserError({
        message: `registry rm deletes ${text} from registry "${regName}" for good (no undo)`,
        hint: 'add --force to really delete it',
      });
    const hf = loadFiles(opts);
    const reg = registryOf(hf, regName);
    const { removeTag } = lifecycleOf(reg);
    const { audit, runId } = await openAudit(hf, opts.logDir, 'registry rm --force', regName);
    try {
      let res: Awaited<ReturnType<typeof removeTag>>;
      try {
        res = await removeTag(r.name, r.tag!, { withSharedTags: opts.withSharedTags === true });
      } catch (e) {
        audit.event({
          type: 'registry.failed',
          runId,
          ts: new Date().toISOString(),
          status: 'failed',
          message: `rm ${regName} ${text}: ${(e as Error).message}`,
        });
        throw e;
      }
      for (const t of res.removed)
        audit.event({
          type: 'registry.removed',
          runId,
          ts: new Date().toISOString(),
          status: 'forced',
          message: `registry "${regName}" (${reg.type}): removed tag ${r.name}:${t} (was ${res.digest})`,
        });
      const also = res.removed.filter((t) => t !== r.tag);
      const rest =
        reg.type === 'filesystem'
          ? res.sharedWith.length
            ? `; ${res.sharedWith.join(', ')} still point${res.sharedWith.length === 1 ? 's' : ''} at it`
            : '; its blobs stay until `hades registry gc`'
          : also.length
            ? `; also removed ${also.join(', ')} (same manifest)`
            : '';
      print(opts, { registry: regName, runId, auditLog: audit.path, ...res }, `removed ${r.name}:${r.tag} (was ${res.digest})${rest}`);
    } finally {
      await audit.close();
      if (opts.output !== 'json') process.stderr.write(`audit log: ${audit.path}\n`);
    }
  }),

  gc: wrap(async (regName: string, opts: RegOptions & { dryRun?: boolean; grace?: string; logDir?: string }) => {
    const hf = loadFiles(opts);
    const reg = registryOf(hf, regName);
    if (!(reg instanceof FilesystemRegistry))
      throw new UserError({
        message: `registry gc works on filesystem registries; "${regName}" is ${reg.type}`,
        hint: 'an oci registry collects its own garbage (distribution: `registry garbage-collect CONFIG`)',
      });
    let graceMs = DEFAULT_GC_GRACE_MS;
    if (opts.grace !== undefined) {
      const ms = durationField(opts.grace);
      if (ms === undefined)
        throw new UserError({
          message: `--grace ${JSON.stringify(opts.grace)} is not a duration`,
          hint: 'write e.g. 0s, 30m, 1h or 2h30m',
        });
      graceMs = ms;
    }
    const dryRun = opts.dryRun === true;
    const session = dryRun ? undefined : await openAudit(hf, opts.logDir, 'registry gc', regName);
    try {
      const res = await collectGarbage(reg, { dryRun, graceMs });
      if (session)
        for (const x of res.removed)
          session.audit.event({
            type: 'registry.removed',
            runId: session.runId,
            ts: new Date().toISOString(),
            status: 'gc',
            message: `registry "${regName}": gc removed ${x.kind} ${x.name}@${x.digest} (${x.size} bytes)`,
          });
      const verb = dryRun ? 'would remove' : 'removed';
      const text = [
        ...res.removed.map((x) => `${verb} ${x.name}@${x.digest} (${x.kind}, ${x.size} bytes)`),
        `${verb} ${res.removed.length} blob${res.removed.length === 1 ? '' : 's'} (${res.removed.filter((x) => x.kind === 'manifest').length} manifests), ${res.bytes} bytes ${dryRun ? 'would be ' : ''}freed` +
          `; kept ${res.keptYoung} younger than ${formatDuration(graceMs)} and ${res.keptInFlight} of pushes in flight`,
      ].join('\n');
      print(opts, { ...res, ...(session ? { runId: session.runId, auditLog: session.audit.path } : {}) }, text);
    } catch (e) {
      session?.audit.event({
        type: 'registry.failed',
        runId: session.runId,
        ts: new Date().toISOString(),
        status: 'failed',
        message: `gc ${regName}: ${(e as Error).message}`,
      });
      throw e;
    } finally {
      if (session) {
        await session.audit.close();
        if (opts.output !== 'json') process.stderr.write(`audit log: ${session.audit.path}\n`);
      }
    }
  }),
};
