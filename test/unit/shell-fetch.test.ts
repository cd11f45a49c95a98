/**
 * pull `via: host`'s shell (src/shell/fetch.ts) as exact strings, and the composed delivery
 * command run for real with /bin/sh and curl against a local HTTP server: the header comes
 * from stdin only, a wrong body is refused before the rename.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dirDeliverCommand, fileDeliverCommand, tempPathFor } from '../../src/shell/delivery.js';
import { hostDownload } from '../../src/shell/fetch.js';

const URL_ = 'http://127.0.0.1:5000/v2/team/app/blobs/sha256:ab';
const HINT = 'check that this host can reach the registry (address, firewall, proxy, TLS certificate), or pull with via: orchestrator';

describe('hostDownload (exact strings)', () => {
  it('detects curl, else wget, else exit 6 — before "send"', () => {
    expect(hostDownload({ url: URL_, size: 10, insecure: false }).prepare).toBe(
      "if command -v curl >/dev/null 2>&1; then g=curl; elif command -v wget >/dev/null 2>&1; then g=wget; else echo 'neither curl nor wget is installed on this host: pull via: host downloads with one of them (install curl), or pull with via: orchestrator' >&2; exit 6; fi; ",
    );
  });

  it('reads the header value from stdin and hands it to curl on its config stdin; wget only without credentials', () => {
    const fail = (tool: string) =>
      `{ printf 'cannot download %s on this host (${tool}%s): ${HINT}\\n' ${URL_} "$(printf %s "$e" | tr '\\n' ' ')" >&2; exit 7; }`;
    // A body longer than the size is cut by the file size limit (one 512-byte block past it) and named.
    const over = ` || { r=$?; if [ -f "$t/f" ] && [ "$(stat -c %s "$t/f")" -gt 10 ]; then echo 'the registry sent more than the 10 bytes the manifest says'; fi; exit $r; }`;
    expect(hostDownload({ url: URL_, size: 10, insecure: false }).into('"$t/f"')).toBe(
      `{ IFS= read -r a || { echo 'no credentials line on stdin' >&2; exit 1; }; if [ $g = curl ]; then ` +
        `e=$(ulimit -f 1 2>/dev/null; { [ -z "$a" ] || printf 'header = "Authorization: %s"\\n' "$a"; } | curl -K - -fsSL --proto =http,https --proto-redir =http,https --max-redirs 10 --connect-timeout 30 --max-filesize 10 -o "$t/f" -- ${URL_} 2>&1${over}) || ${fail('')}; ` +
        `else { [ -z "$a" ] || { echo 'this host has wget but not curl: wget takes credentials only in argv or a file, so pulling via: host from a registry with credentials needs curl on the host (install curl), or pull with via: orchestrator' >&2; exit 6; }; } && ` +
        `e=$(ulimit -f 1 2>/dev/null; wget -nv --max-redirect=10 --timeout=30 -O "$t/f" -- ${URL_} 2>&1${over}) || ${fail('wget: ')}; fi; }`,
    );
  });

  it('insecure: curl -k / wget --no-check-certificate; the URL is quoted; an empty blob has no --max-filesize', () => {
    const into = hostDownload({ url: "https://r.example/v2/a'b/blobs/sha256:ab", size: 0, insecure: true }).into('"$t/a"');
    expect(into).toContain(`--connect-timeout 30 -k -o "$t/a" -- 'https://r.example/v2/a'\\''b/blobs/sha256:ab' 2>&1`);
    expect(into).toContain(
      `wget -nv --max-redirect=10 --timeout=30 --no-check-certificate -O "$t/a" -- 'https://r.example/v2/a'\\''b/blobs/sha256:ab'`,
    );
    expect(into).not.toContain('--max-filesize');
  });

  it('the delivery around the download is the streamed one, byte for byte, with `cat >` replaced', () => {
    const get = hostDownload({ url: URL_, size: 10, insecure: false });
    const sha = 'a'.repeat(64);
    const streamed = fileDeliverCommand('/opt/app', tempPathFor('/opt/app'), sha, 0o750, { owner: 'app' });
    const viaHost = fileDeliverCommand('/opt/app', tempPathFor('/opt/app'), sha, 0o750, { owner: 'app' }, undefined, get);
    expect(viaHost).toBe(
      streamed.replace('umask 077; ', () => `${get.prepare}umask 077; `).replace('cat > "$t/f"', () => get.into('"$t/f"')),
    );
    const opts = { gzip: true, stripComponents: 1 };
    const dir = dirDeliverCommand('/srv/site', tempPathFor('/srv/site'), sha, 'sha256:m', opts);
    expect(dirDeliverCommand('/srv/site', tempPathFor('/srv/site'), sha, 'sha256:m', opts, undefined, get)).toBe(
      dir.replace('umask 022; ', () => `${get.prepare}umask 022; `).replace('cat > "$t/a"', () => get.into('"$t/a"')),
    );
  });
});

describe('the via: host delivery command, run with sh + curl against a local HTTP server', () => {
  let srv: http.Server;
  let port = 0;
  let tmp: string;
  const seen: Array<{ path: string; auth?: string }> = [];
  const body = randomBytes(300_000);
  const sha = createHash('sha256').update(body).digest('hex');
  const ENDLESS = 256 * 1024 * 1024;
  let endlessSent = 0;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hades-fetch-'));
    srv = http.createServer((req, res) => {
      seen.push({ path: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
      if (req.url === '/redirect') return void res.writeHead(307, { location: `http://127.0.0.1:${port}/blob` }).end();
      if (req.url === '/wrong') return void res.end(Buffer.concat([body.subarray(1), Buffer.from('x')]));
      if (req.url === '/missing') return void res.writeHead(404).end('no');
      if (req.url === '/endless') {
        // A hostile registry: chunked (no length announced), far more than the manifest says.
        endlessSent = 0;
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        const more = (): void => {
          while (endlessSent < ENDLESS) {
            endlessSent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        res.on('close', () => undefined);
        return more();
      }
      res.end(body);
    });
    srv.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    port = (srv.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => srv.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });

  function run(path: string, dst: string, stdin: string): Promise<{ code: number | null; stdout: string; stderr: string; argv: string[] }> {
    const cmd = fileDeliverCommand(
      dst,
      tempPathFor(dst),
      sha,
      0o640,
      {},
      undefined,
      hostDownload({ url: `http://127.0.0.1:${port}${path}`, size: body.length, insecure: false }),
    );
    return new Promise((resolve) => {
      const p = spawn('/bin/sh', ['-c', cmd]);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.startsWith('send\n') && !p.stdin.writableEnded) p.stdin.end(stdin);
      });
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr, argv: [cmd] }));
    });
  }

  it('downloads (following a redirect), sends the header from stdin, verifies, renames; identical → unchanged', async () => {
    const dst = join(tmp, 'app');
    seen.length = 0;
    const r = await run('/redirect', dst, 'Bearer tok.en-1\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('send\nchanged\n');
    expect(readFileSync(dst).equals(body)).toBe(true);
    expect(seen).toEqual([
      { path: '/redirect', auth: 'Bearer tok.en-1' },
      { path: '/blob', auth: 'Bearer tok.en-1' }, // same host: curl keeps the header
    ]);
    expect(r.argv.join(' ')).not.toContain('tok.en-1');
    const again = await run('/blob', dst, 'Bearer tok.en-1\n');
    expect(again.stdout).toBe('unchanged\n');
    expect(seen).toHaveLength(2);
  });

  it('an empty line: no Authorization header', async () => {
    const dst = join(tmp, 'anon');
    seen.length = 0;
    const r = await run('/blob', dst, '\n');
    expect(r.code).toBe(0);
    expect(seen).toEqual([{ path: '/blob' }]);
  });

  it('wrong bytes: exit 4, nothing renamed, no temp dir left', async () => {
    const dst = join(tmp, 'bad');
    const r = await run('/wrong', dst, '\n');
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`checksum mismatch on host: expected ${sha}, got `);
    expect(existsSync(dst)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('hades-tmp'))).toEqual([]);
  });

  it('a registry that sends more than the manifest says (chunked, no length): stopped at the size, exit 7, nothing renamed', async () => {
    const dst = join(tmp, 'endless');
    const r = await run('/endless', dst, '\n');
    expect(r.code).toBe(7);
    expect(r.stderr).toContain(`the registry sent more than the ${body.length} bytes the manifest says`);
    expect(existsSync(dst)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('hades-tmp'))).toEqual([]);
    // The host's disk got at most the blob's size: the server could push only what the sockets buffer beyond it.
    expect(endlessSent).toBeLessThan(ENDLESS / 4);
  });

  it("an HTTP error: exit 7 with curl's reason and the hint", async () => {
    const dst = join(tmp, 'missing');
    const r = await run('/missing', dst, '\n');
    expect(r.code).toBe(7);
    expect(r.stderr.trim()).toBe(
      `cannot download http://127.0.0.1:${port}/missing on this host (curl: (22) The requested URL returned error: 404): ${HINT}`,
    );
    expect(existsSync(dst)).toBe(false);
  });
});
