/**
 * pull `via: host`: the orchestrator resolves the tag (once per run, as for every pull) and
 * each host downloads the payload blob from the registry's HTTP API itself, into the same
 * private temp directory beside `to`, with the same sha256 check on the host, mode/owner and
 * rename as a streamed pull (delivery.ts with the Receive of shell/fetch.ts). What the
 * orchestrator sends a host is the command and, only after the host answered "send", one line:
 * the Authorization header value (stdin only; see shell/fetch.ts).
 *
 * A file payload: ONE exec (skip when identical, fix mode/owner without downloading, else
 * download). A directory payload (or `extract: true`): the archive checks run on the
 * orchestrator (registry/tar-check.ts needs the bytes), so when the host's marker does not
 * name the digest the orchestrator reads and checks the archive once per run, then the host
 * downloads it, verifies its sha256 and extracts it with the usual host-side tree checks.
 */
import { octal } from '../shell/command.js';
import { dirCheckCommand, dirDeliverCommand, fileDeliverCommand } from '../shell/delivery.js';
import { hostDownload } from '../shell/fetch.js';
import { OciRegistry } from '../registry/oci/registry.js';
import type { ArtifactDescriptor } from '../registry/types.js';
import { deliverStream } from './deliver.js';
import { execQuiet } from './exec.js';
import { ownText } from './mkdir.js';
import type { PullEntry } from './pull.js';
import { ActionFailure, type ActionOutcome, type ActionRuntime } from './types.js';

const EXPLAINED = new Set([6, 7]);

/** The dry-run lines of a `via: host` pull. */
export function describeViaHost(e: PullEntry): string[] {
  const sha = '<sha256 of the payload>';
  const own = { owner: e.owner, group: e.group };
  const get = hostDownload({ url: `<registry>/v2/<repository>/blobs/<layer digest>`, size: 0, insecure: false });
  const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
  return [
    `${ref} from registry "${e.registry}" -> ${e.to} mode ${octal(e.mode)}${ownText(e)}${e.extract ? ' (extracted)' : ''} via host`,
    ...(e.pinnedTag ? [`tag ${e.pinnedTag} pinned to this digest (the digest the replayed run got; the tag is not looked up)`] : []),
    `resolved once per run on the orchestrator; skip if ${e.to} already has the payload's sha256 and mode`,
    `each host downloads the blob from registry "${e.registry}" itself (curl, else wget; -k when the registry is insecure); the orchestrator sends the Authorization header value on stdin only, after the host answered "send"`,
    'a file payload (skipped when identical; same sha256 but other mode/owner: fixed without downloading):',
    `$ ${fileDeliverCommand(e.to, e.tmp, sha, e.mode, own, e.become, get)}`,
    'a directory payload (or extract: true): skipped when the marker names the digest; else the archive is checked once per run on the orchestrator, then',
    `$ ${dirCheckCommand(e.to, '<manifest digest>', e.become)}`,
    `$ ${dirDeliverCommand(e.to, e.tmp, sha, '<manifest digest>', { gzip: true, stripComponents: 1, ...own }, e.become, get)}`,
  ];
}

export async function pullViaHost(
  e: PullEntry,
  rt: ActionRuntime,
  desc: ArtifactDescriptor,
  what: string,
  env: Record<string, string>,
): Promise<ActionOutcome> {
  const reg = rt.artifacts.registry(e.registry);
  if (!(reg instanceof OciRegistry))
    throw new ActionFailure(`${what}: via: host needs an oci registry; "${e.registry}" is a ${reg.type} registry (use via: orchestrator)`);
  const where = reg.hostFetch(desc);
  const get = hostDownload(where);
  const sha = desc.layer.digest.replace(/^sha256:/, '');
  const own = { owner: e.owner, group: e.group };
  const credentials = async (): Promise<Buffer> => {
    try {
      return Buffer.from(`${(await where.authorization()) ?? ''}\n`, 'utf8');
    } catch (err) {
      throw new ActionFailure(`${what}: ${(err as Error).message}`);
    }
  };
  const run = async (command: string): Promise<'unchanged' | 'meta' | 'changed'> => {
    try {
      return await deliverStream(rt, command, what, e.become, credentials);
    } catch (err) {
      if (err instanceof ActionFailure && EXPLAINED.has(err.exitCode ?? -1))
        throw new ActionFailure(err.message.replace(`${what}: `, `${what}: on host ${rt.host.host}: `), err.exitCode);
      throw err;
    }
  };

  if (!desc.layer.directory && !e.extract) {
    const how = await run(fileDeliverCommand(e.to, e.tmp, sha, e.mode, own, e.become, get));
    if (how === 'unchanged') return { status: 'unchanged', detail: desc.manifestDigest, env };
    return {
      status: 'changed',
      detail:
        how === 'meta'
          ? `mode/owner fixed, nothing downloaded, ${desc.manifestDigest}`
          : `${desc.layer.size} bytes downloaded by the host, mode ${octal(e.mode)}, ${desc.manifestDigest}`,
      env,
    };
  }

  const check = await execQuiet(rt, dirCheckCommand(e.to, desc.manifestDigest, e.become, e.owner), what, e.become);
  if (check.stdout.trim() === 'unchanged') return { status: 'unchanged', detail: desc.manifestDigest, env };
  let local: string;
  try {
    local = await rt.artifacts.materialize(desc);
  } catch (err) {
    throw new ActionFailure(`${what}: ${(err as Error).message}`);
  }
  const archive = await rt.artifacts.inspectArchive(desc, local);
  const ref = e.digest ? `${e.name}@${e.digest}` : `${e.name}:${e.tag}`;
  if (archive.problems.length)
    throw new ActionFailure(
      `${what}: refusing to extract ${ref}: ${archive.problems.map((p) => p.message).join('; ')} (nothing was written on the host)`,
    );
  const opts = { gzip: archive.gzip, stripComponents: archive.stripComponents, ...own };
  const how = await run(dirDeliverCommand(e.to, e.tmp, sha, desc.manifestDigest, opts, e.become, get));
  if (how === 'unchanged') return { status: 'unchanged', detail: desc.manifestDigest, env };
  if (how === 'meta') throw new ActionFailure(`${what}: unexpected answer "meta" for a directory`);
  return { status: 'changed', detail: `extracted ${desc.layer.size} bytes downloaded by the host, ${desc.manifestDigest}`, env };
}
