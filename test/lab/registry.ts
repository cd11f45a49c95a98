/**
 * Real OCI registries for tests: Debian's `docker-registry` (distribution 2.8) on a free
 * loopback port, with its own temp root (config, storage, log), optionally with htpasswd basic
 * auth (bcrypt, via `htpasswd -Bbn`) and/or TLS (a self-signed certificate for 127.0.0.1 made
 * with `openssl`). Nothing here is mocked.
 *
 * Several registries (and several test runs) can run at once: each picks a free port and retries
 * with another one if the port was taken in between.
 *
 * When CI=true a missing prerequisite throws (the test fails); otherwise callers may skip with
 * the reason `registryPrerequisites()` returns.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RegistryOptions {
  /** htpasswd basic auth with one user. */
  auth?: { user: string; password: string };
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (clients need `insecure`). */
  tls?: boolean;
  /** A pull-through cache of this upstream (`proxy.remoteurl`, e.g. http://127.0.0.1:PORT); start the upstream first. */
  proxy?: string;
  /** `storage.delete.enabled` (default true); false: the registry refuses manifest deletes, as distribution does by default. */
  deleteEnabled?: boolean;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` — what goes before `/repository` in references. */
  url: string;
  port: number;
  /** Storage root: blobs live under `<dataDir>/docker/registry/v2/blobs/sha256/xx/<hex>/data`. */
  dataDir: string;
  /** The registry's private temp root (config, storage, certificate, log). */
  root: string;
  /** True for plain HTTP (no TLS). */
  plainHttp: boolean;
  tls?: { certFile: string; keyFile: string };
  auth?: { user: string; password: string };
  logFile: string;
  pid: number;
  /** Path of a blob's data file in the storage (to corrupt it in tests). */
  blobFile(digest: string): string;
  /** Stops the registry and removes its root. Idempotent. */
  stop(): Promise<void>;
}

const BINARIES = ['docker-registry', 'oras', 'htpasswd', 'openssl'];

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { stdio: 'ignore' }).status === 0;
}

/** The binaries the registry tests need that are missing (empty when all are there). */
export function registryPrerequisites(): string[] {
  return BINARIES.filter((b) => !onPath(b));
}

/**
 * For test files: `null` when everything is installed; otherwise a reason to skip. Throws when
 * CI=true (a missing prerequisite must fail CI, never skip it).
 */
export function registrySkipReason(): string | null {
  const missing = registryPrerequisites();
  if (missing.length === 0) return null;
  const msg = `missing ${missing.join(', ')} (run .ci/install as root)`;
  if (process.env.CI === 'true') throw new Error(`the OCI registry tests need real tools: ${msg}`);
  return msg;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

function probe(port: number, tlsOn: boolean): Promise<number | null> {
  return new Promise((res) => {
    const mod = tlsOn ? https : http;
    const req = mod.get({ host: '127.0.0.1', port, path: '/v2/', timeout: 1000, ...(tlsOn ? { rejectUnauthorized: false } : {}) }, (r) => {
      r.resume();
      res(r.statusCode ?? null);
    });
    req.on('error', () => res(null));
    req.on('timeout', () => {
      req.destroy();
      res(null);
    });
  });
}

function config(o: {
  port: number;
  dataDir: string;
  htpasswd?: string;
  cert?: string;
  key?: string;
  proxy?: string;
  deleteEnabled: boolean;
}): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.dataDir}`,
    '  delete:',
    `    enabled: ${o.deleteEnabled}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${o.port}`,
    '  secret: hades-test-registry',
    ...(o.cert ? ['  tls:', `    certificate: ${o.cert}`, `    key: ${o.key}`] : []),
    ...(o.htpasswd ? ['auth:', '  htpasswd:', '    realm: hades-test', `    path: ${o.htpasswd}`] : []),
    ...(o.proxy ? ['proxy:', `  remoteurl: ${o.proxy}`] : []),
    '',
  ].join('\n');
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

/** Starts a real registry and waits until `/v2/` answers (200, or 401 with auth). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const missing = registryPrerequisites();
  if (missing.length) throw new Error(`cannot start a test registry: missing ${missing.join(', ')} (run .ci/install as root)`);
  const root = mkdtempSync(join(tmpdir(), 'hades-registry-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'registry.log');
  let htpasswdFile: string | undefined;
  if (opts.auth) {
    htpasswdFile = join(root, 'htpasswd');
    const line = execFileSync('htpasswd', ['-Bbn', opts.auth.user, opts.auth.password], { encoding: 'utf8' });
    writeFileSync(htpasswdFile, line, { mode: 0o600 });
  }
  let tlsFiles: { certFile: string; keyFile: string } | undefined;
  if (opts.tls) {
    tlsFiles = { certFile: join(root, 'cert.pem'), keyFile: join(root, 'key.pem') };
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        tlsFiles.keyFile,
        '-out',
        tlsFiles.certFile,
      ],
      { stdio: 'ignore' },
    );
  }

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const cfg = join(root, 'config.yml');
    writeFileSync(
      cfg,
      config({
        port,
        dataDir,
        deleteEnabled: opts.deleteEnabled ?? true,
        ...(htpasswdFile ? { htpasswd: htpasswdFile } : {}),
        ...(tlsFiles ? { cert: tlsFiles.certFile, key: tlsFiles.keyFile } : {}),
        ...(opts.proxy ? { proxy: opts.proxy } : {}),
      }),
    );
    const fd = openSync(logFile, 'w');
    const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    let exited = false;
    child.on('exit', () => (exited = true));
    const deadline = Date.now() + 15_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      const status = await probe(port, Boolean(opts.tls));
      if (status === 200 || (opts.auth && status === 401)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      let stopped = false;
      return {
        url: `127.0.0.1:${port}`,
        port,
        dataDir,
        root,
        plainHttp: !opts.tls,
        ...(tlsFiles ? { tls: tlsFiles } : {}),
        ...(opts.auth ? { auth: { ...opts.auth } } : {}),
        logFile,
        pid: child.pid!,
        blobFile: (digest: string) => {
          const hex = digest.replace(/^sha256:/, '');
          return join(dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
        },
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await stopChild(child);
          rmSync(root, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    if (attempt < 5 && /address already in use/.test(log)) continue;
    rmSync(root, { recursive: true, force: true });
    throw new Error(
      `docker-registry did not come up on 127.0.0.1:${port}${exited ? ' (it exited)' : ' within 15 s'}:\n${log.slice(-2000)}`,
    );
  }
}
