/**
 * An oci registry's url: `host[:port]/repository-prefix` following the distribution reference
 * grammar (github.com/distribution/reference): no scheme, no tag, no digest, lowercase path.
 */

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]+))?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;

/** Why `url` is not a valid registry url, or undefined when it is. */
export function ociUrlProblem(url: string): string | undefined {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url)) return 'it must not include a scheme (like https://)';
  if (url.includes('@')) return 'it must not include a digest';
  const slash = url.indexOf('/');
  const host = slash < 0 ? url : url.slice(0, slash);
  const m = HOST.exec(host);
  if (!m) return `${JSON.stringify(host)} is not a valid registry host[:port]`;
  if (m[1] !== undefined) {
    const port = Number(m[1]);
    if (port < 1 || port > 65535) return `port ${m[1]} is out of range (1-65535)`;
  }
  if (slash < 0) return undefined;
  const path = url.slice(slash + 1);
  const parts = path.split('/');
  const last = parts[parts.length - 1]!;
  if (last.includes(':')) return 'it must not include a tag (give tags in push/pull, not in the url)';
  for (const p of parts) {
    if (p === '') return 'it has an empty path component (a trailing or doubled /)';
    if (!PATH_COMPONENT.test(p)) {
      return p !== p.toLowerCase()
        ? `path component ${JSON.stringify(p)} must be lowercase`
        : `path component ${JSON.stringify(p)} is invalid (lowercase letters and digits, separated by ., _, __ or -)`;
    }
  }
  if (path.length > 255) return 'the repository prefix is longer than 255 characters';
  return undefined;
}
