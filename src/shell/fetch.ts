/**
 * pull `via: host`: the host downloads the payload blob from the registry's HTTP API itself
 * (a `Receive` for delivery.ts: the temp file, sha256 check, mode/owner and rename around it
 * stay exactly those of the streamed delivery). Pure builders, tested as exact strings.
 *
 * Credentials reach the host only on stdin: after the host has answered "send" the
 * orchestrator sends ONE line — the value of the Authorization header (`Basic …` or
 * `Bearer …`), or an empty line for an anonymous registry. `read` and `printf` are shell
 * builtins, so the value is in no process's argv; curl reads it from its config on stdin
 * (`curl -K -`, a `header = "Authorization: …"` line), never from a file.
 *
 * The download tool is detected on the host by the same command, before "send" (`command -v`
 * is a builtin: no extra round trip): curl, else wget. wget cannot take a header other than
 * from argv or a regular file (`--config` refuses a pipe) and sends it on along redirects to
 * other hosts, so wget serves anonymous registries only; with credentials the host needs curl
 * (exit 6 with that message). Neither tool: exit 6. A failed download: exit 7 with the tool's
 * reason and a hint. curl follows redirects (`-L`, http/https only) as registries that
 * redirect to blob storage need, and does not send the Authorization header to another host.
 *
 * The download cannot fill the host's disk: curl's --max-filesize only refuses a body whose
 * length is announced, so a registry (or the storage it redirects to) that sends a chunked
 * body longer than the manifest's size is stopped by a file size limit on the download
 * (`ulimit -f`, 512-byte blocks: the first block past the size), exit 7 naming it.
 */
import type { Receive } from './delivery.js';
import { quote } from './command.js';

export interface HostFetch {
  /** The blob's URL: `<scheme>://<host>/v2/<repository>/blobs/<digest>`. */
  url: string;
  /** The blob's size (curl refuses a longer body when the server announces its length). */
  size: number;
  /** The registry's `insecure`: no TLS certificate check (curl -k, wget --no-check-certificate). */
  insecure: boolean;
}

const NO_TOOL =
  'neither curl nor wget is installed on this host: pull via: host downloads with one of them (install curl), or pull with via: orchestrator';
const WGET_AUTH =
  'this host has wget but not curl: wget takes credentials only in argv or a file, so pulling via: host from a registry with credentials needs curl on the host (install curl), or pull with via: orchestrator';

/** The Receive that downloads `f.url` into the temp file (see the module comment). */
export function hostDownload(f: HostFetch): Receive {
  const url = quote(f.url);
  const hint = `check that this host can reach the registry (address, firewall, proxy, TLS certificate), or pull with via: orchestrator`;
  // curl's messages start with "curl: "; wget's do not name it.
  const fail = (tool: string) =>
    `{ printf 'cannot download %s on this host (${tool}%s): ${hint}\\n' ${url} "$(printf %s "$e" | tr '\\n' ' ')" >&2; exit 7; }`;
  // Inside the download's own subshell: at most the blob's size (rounded up to the next 512-byte block) is written.
  const limit = `ulimit -f ${Math.floor(Math.max(0, f.size) / 512) + 1} 2>/dev/null; `;
  const over = (file: string) =>
    ` || { r=$?; if [ -f ${file} ] && [ "$(stat -c %s ${file})" -gt ${Math.max(0, f.size)} ]; then echo ${quote(`the registry sent more than the ${f.size} bytes the manifest says`)}; fi; exit $r; }`;
  const curl =
    `e=$(${limit}{ [ -z "$a" ] || printf 'header = "Authorization: %s"\\n' "$a"; } | curl -K - -fsSL --proto =http,https --proto-redir =http,https ` +
    `--max-redirs 10 --connect-timeout 30${f.size > 0 ? ` --max-filesize ${f.size}` : ''}${f.insecure ? ' -k' : ''} -o FILE -- ${url} 2>&1${over('FILE')}) || ${fail('')}`;
  const wget =
    `{ [ -z "$a" ] || { echo ${quote(WGET_AUTH)} >&2; exit 6; }; } && ` +
    `e=$(${limit}wget -nv --max-redirect=10 --timeout=30${f.insecure ? ' --no-check-certificate' : ''} -O FILE -- ${url} 2>&1${over('FILE')}) || ${fail('wget: ')}`;
  return {
    prepare:
      `if command -v curl >/dev/null 2>&1; then g=curl; elif command -v wget >/dev/null 2>&1; then g=wget; ` +
      `else echo ${quote(NO_TOOL)} >&2; exit 6; fi; `,
    into: (file) =>
      `{ IFS= read -r a || { echo 'no credentials line on stdin' >&2; exit 1; }; ` +
      `if [ $g = curl ]; then ${curl.replaceAll('FILE', file)}; else ${wget.replaceAll('FILE', file)}; fi; }`,
  };
}
