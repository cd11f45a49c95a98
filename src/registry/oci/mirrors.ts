/**
 * Mirrors of an `oci` registry (`mirrors: [host[:port][/prefix], …]`): reads of
 * content-addressed data — manifests by digest, blobs — try each mirror in order, then the
 * origin. Tags are never resolved at a mirror (read.ts asks the origin, so a stale mirror can't
 * pick the version); every byte from a mirror is digest-verified exactly as the origin's, so a
 * bad mirror can slow a read, never corrupt it.
 *
 * A mirror that fails (down, not found, refused, corrupt) is reported — one warning naming the
 * mirror and the reason, and what is tried next — and the next endpoint is tried: the chain is
 * documented and visible, never a silent fallback. When the origin fails too, its error is the
 * error of the read.
 *
 * Repository names: the origin's repository path (url prefix + artifact name) is appended to
 * the mirror, after the mirror's own prefix: origin `reg:5000/team`, artifact `app`, mirror
 * `cache:5001` → `cache:5001/team/app`; mirror `cache:5001/proxy` → `cache:5001/proxy/team/app`
 * (a pull-through cache — distribution's `proxy.remoteurl`, Harbor's proxy projects under a
 * prefix — serves the upstream names, below its own prefix if it has one).
 *
 * A mirror inherits the registry's plain_http / insecure. Its credentials: mirrorAuth (auth.ts).
 */
import { UserError } from '../../errors.js';
import { authArgs, type OciAuth } from './auth.js';
import type { OrasCall, OrasRunner } from './oras.js';

/** One place to read from: a mirror or the origin. */
export interface OciEndpoint {
  /** "mirror HOST[:PORT][/PREFIX]" or "origin HOST[:PORT]/PREFIX", for messages. */
  label: string;
  /** host[:port][/prefix], expanded. */
  url: string;
  host: string;
  mirror: boolean;
  auth: OciAuth;
  oras: OrasRunner;
  /** The repository of an artifact name at this endpoint. */
  repo(name: string): string;
  call(words: string[], rest: string[], o: { timeoutMs?: number; notFound?: string; what: string }): OrasCall;
}

/** The repository of artifact `name` of the registry at `originUrl`, at the mirror `mirrorUrl`. */
export function mirrorRepo(mirrorUrl: string, originUrl: string, name: string): string {
  const slash = originUrl.indexOf('/');
  const prefix = slash < 0 ? '' : originUrl.slice(slash + 1);
  return [mirrorUrl, prefix, name].filter((p) => p !== '').join('/');
}

/** An oras call with an endpoint's connection and auth flags (inserted after the subcommand words). */
export function endpointCall(
  auth: OciAuth,
  conn: string[],
  defaultTimeoutMs: number,
  words: string[],
  rest: string[],
  o: { timeoutMs?: number; notFound?: string; what: string },
): OrasCall {
  const a = authArgs(auth);
  return {
    args: [...words, '--no-tty', ...conn, ...a.args, ...rest],
    ...(a.input !== undefined ? { input: a.input } : {}),
    timeoutMs: o.timeoutMs ?? defaultTimeoutMs,
    what: o.what,
    ...(o.notFound !== undefined ? { notFound: o.notFound } : {}),
  };
}

/** What a mirror chain needs from the registry. */
export interface MirrorChain {
  name: string;
  mirrors: readonly OciEndpoint[];
  origin: OciEndpoint;
  warn(message: string): void;
}

/**
 * Runs `read` against each mirror in order, then the origin; the first success wins. Each
 * failing mirror is reported through `warn` (naming it, the reason and the next endpoint). A
 * UserError (a mistake in the request, not the mirror's fault) is thrown at once.
 */
export async function viaMirrors<T>(reg: MirrorChain, what: string, read: (ep: OciEndpoint) => Promise<T>): Promise<T> {
  const chain = [...reg.mirrors, reg.origin];
  for (let i = 0; i < chain.length - 1; i++) {
    const ep = chain[i]!;
    try {
      return await read(ep);
    } catch (e) {
      if (e instanceof UserError) throw e;
      const reason = e instanceof Error ? e.message : String(e);
      reg.warn(`registry "${reg.name}": ${ep.label} failed (${what}): ${reason}; using ${chain[i + 1]!.label}`);
    }
  }
  return read(reg.origin);
}
