/**
 * The `oci` registry through the Registry API against a real registry (Debian's docker-registry)
 * with the real oras CLI: push/resolve/open/tags/names, byte compatibility with the filesystem
 * registry, immutability, semver aliases, absent artifacts, copies in every direction, interop
 * with plain `oras push`/`oras pull`, corrupt storage, a registry that is down or hangs, and a
 * missing oras.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OciRegistrySpec } from '../../src/config/model.js';
import { UserError } from '../../src/errors.js';
import { IntegrityError } from '../../src/registry/digest.js';
import { openFilesystemRegistry } from '../../src/registry/fs/registry.js';
import { OciRegistryError, openOciRegistry, type OciRegistryOptions } from '../../src/registry/oci/registry.js';
import { ArtifactNotFound } from '../../src/registry/types.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../lab/registry.js';

const skip = registrySkipReason();
const pos = { file: 'hadesfile.yaml', line: 1, col: 1 };
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function oras(args: string[], cwd?: string): string {
  const r = spawnSync('oras', args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  if (r.status !== 0) throw new Error(`oras ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip)('oci registry through oras (real registry)', () => {
  let reg: TestRegistry;
  let tmp: string;
  let k = 0;
  const argv: string[][] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    tmp = mkdtempSync(join(tmpdir(), 'hades-oci-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  function oci(prefix: string, over: Partial<OciRegistrySpec> = {}, opts: OciRegistryOptions = {}) {
    return openOciRegistry(
      { name: 'prod', type: 'oci', url: `${reg.url}/${prefix}`, plainHttp: true, insecure: false, pos, ...over },
      { env: EPOCH, onSpawn: (a) => argv.push([...a]), ...opts },
    );
  }
  function fsreg(name = 'store') {
    return openFilesystemRegistry({ name, type: 'filesystem', path: join(tmp, `fs${k++}`), pos }, { env: EPOCH });
  }
  function file(content: string | Buffer, name = 'app.bin'): string {
    const d = join(tmp, `src${k++}`);
    mkdirSync(d);
    writeFileSync(join(d, name), content);
    return join(d, name);
  }
  function tree(): string {
    const d = join(tmp, `tree${k++}`, 'site');
    mkdirSync(join(d, 'bin'), { recursive: true });
    writeFileSync(join(d, 'bin', 'start'), '#!/bin/sh\nexec app\n');
    chmodSync(join(d, 'bin', 'start'), 0o755);
    writeFileSync(join(d, 'index.html'), '<h1>hi</h1>\n');
    symlinkSync('index.html', join(d, 'current.html'));
    return d;
  }

  it('push → resolve → open: the payload comes back verified; manifest and digest are exactly what the filesystem registry writes', async () => {
    const r = oci('basic');
    const src = file(Buffer.alloc(300_001, 7));
    const pushed = await r.push('team/app', 'v1.0.0', { path: src });
    expect(pushed.unchanged).toBe(false);
    const d = pushed.descriptor;
    expect(d).toMatchObject({
      registry: 'prod',
      name: 'team/app',
      tag: 'v1.0.0',
      artifactType: 'application/vnd.hades.artifact.v1',
      created: '2023-11-14T22:13:20Z',
      layer: {
        digest: sha(readFileSync(src)),
        size: 300_001,
        title: 'app.bin',
        directory: false,
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
      },
    });
    // identical to the filesystem registry for the same bytes
    const fsd = (await fsreg().push('team/app', 'v1.0.0', { path: src })).descriptor;
    expect(d.manifestDigest).toBe(fsd.manifestDigest);
    // also with another artifact type, extra annotations and a given created time
    const custom = {
      path: src,
      artifactType: 'application/vnd.acme.tool.v1',
      annotations: { 'org.opencontainers.image.source': 'https://example.com/app' },
      created: '2024-05-01T12:00:00Z',
    };
    expect((await r.push('team/app', 'custom', custom)).descriptor.manifestDigest).toBe(
      (await fsreg().push('team/app', 'custom', custom)).descriptor.manifestDigest,
    );
    const reserved = { path: src, annotations: { 'org.opencontainers.image.title': 'x' } };
    expect((await rejection(r.push('team/app', 'bad', reserved))).message).toBe(
      (await rejection(fsreg().push('team/app', 'bad', reserved))).message,
    );
    // the bytes in the registry hash to that digest
    const raw = oras(['manifest', 'fetch', '--plain-http', `${reg.url}/basic/team/app:v1.0.0`]);
    expect(sha(raw)).toBe(d.manifestDigest);

    const resolved = await r.resolve('team/app', { tag: 'v1.0.0' });
    expect(resolved).toEqual(d);
    expect(await r.resolve('team/app', { digest: d.manifestDigest })).toMatchObject({ manifestDigest: d.manifestDigest, layer: d.layer });
    expect((await bytes(await r.open(resolved))).equals(readFileSync(src))).toBe(true);
    expect(await r.exists('team/app', { tag: 'v1.0.0' })).toBe(true);
    expect(await r.names()).toEqual(['team/app']);
    expect((await r.tags('team/app')).find((t) => t.tag === 'v1.0.0')).toEqual({
      tag: 'v1.0.0',
      manifestDigest: d.manifestDigest,
      size: 300_001,
      created: '2023-11-14T22:13:20Z',
      mutable: false,
    });
    // a tag + the wrong digest is refused
    const wrong = await rejection(r.resolve('team/app', { tag: 'v1.0.0', digest: sha('x') }));
    expect(wrong).toBeInstanceOf(UserError);
    expect(wrong.message).toContain(`is ${d.manifestDigest}, not the expected ${sha('x')}`);
  });

  it('a directory is a reproducible tar+gzip (same digest as the filesystem registry) that `oras pull` unpacks', async () => {
    const r = oci('dirs');
    const site = tree();
    const pushed = await r.push('site', 'v1', { path: site });
    expect(pushed.descriptor.layer).toMatchObject({
      directory: true,
      title: 'site',
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    });
    expect(pushed.descriptor.manifestDigest).toBe((await fsreg().push('site', 'v1', { path: site })).descriptor.manifestDigest);
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--plain-http', '-o', out, `${reg.url}/dirs/site:v1`]);
    expect(readFileSync(join(out, 'site/index.html'), 'utf8')).toBe('<h1>hi</h1>\n');
    expect(statSync(join(out, 'site/bin/start')).mode & 0o777).toBe(0o755);
  });

  it('tags are immutable: same bytes → unchanged (even rebuilt with a new mtime); other bytes → refused naming the digest, before any upload', async () => {
    const r = oci('immutable', {}, { env: {} }); // no SOURCE_DATE_EPOCH: created comes from the mtime
    const src = file('release 1\n');
    utimesSync(src, 1_600_000_000, 1_600_000_000);
    const first = await r.push('app', 'v1', { path: src }, { extraTags: ['stable'] });
    expect(first.descriptor.created).toBe('2020-09-13T12:26:40Z');
    utimesSync(src, 1_700_000_500, 1_700_000_500); // rebuilt: same bytes, new mtime
    const again = await r.push('app', 'v1', { path: src }, { extraTags: ['stable'] });
    expect(again.unchanged).toBe(true);
    expect(again.descriptor.manifestDigest).toBe(first.descriptor.manifestDigest);

    writeFileSync(src, 'release 2\n');
    const before = argv.length;
    const e = await rejection(r.push('app', 'v1', { path: src }));
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toContain(
      `tag v1 of app already exists with ${first.descriptor.manifestDigest}; registries are immutable — push a new tag`,
    );
    expect(argv.slice(before).some((a) => a[1] === 'cp' || a[1] === 'tag')).toBe(false); // nothing was written
    expect((await r.resolve('app', { tag: 'v1' })).manifestDigest).toBe(first.descriptor.manifestDigest);
    // a new tag next to the old ones is fine
    const next = await r.push('app', 'v2', { path: src });
    expect(next.unchanged).toBe(false);
    expect((await r.tags('app')).map((t) => t.tag)).toEqual(['stable', 'v1', 'v2']);
  });

  it('semver aliases move forward only; alias tags are reported mutable and refuse a plain push', async () => {
    const r = oci('aliases');
    const v120 = await r.push('app', 'v1.2.0', { path: file('1.2.0') }, { semverAliases: true });
    expect(v120.aliases).toEqual([
      { tag: 'v1.2', moved: true },
      { tag: 'v1', moved: true },
      { tag: 'latest', moved: true },
    ]);
    const hotfix = await r.push('app', 'v1.1.5', { path: file('1.1.5') }, { semverAliases: true });
    expect(hotfix.aliases).toEqual([
      { tag: 'v1.1', moved: true },
      { tag: 'v1', moved: false, previous: 'v1.2.0', reason: 'it points to the newer v1.2.0' },
      { tag: 'latest', moved: false, previous: 'v1.2.0', reason: 'it points to the newer v1.2.0' },
    ]);
    const rc = await r.push('app', 'v1.3.0-rc1', { path: file('rc') }, { semverAliases: true });
    expect(rc.aliases).toEqual([]);
    const v130 = await r.push('app', 'v1.3.0', { path: file('1.3.0') }, { semverAliases: true });
    expect(v130.aliases).toEqual([
      { tag: 'v1.3', moved: true },
      { tag: 'v1', moved: true, previous: 'v1.2.0' },
      { tag: 'latest', moved: true, previous: 'v1.2.0' },
    ]);
    // re-publishing is idempotent, aliases included
    const again = await r.push('app', 'v1.3.0', { path: file('1.3.0') }, { semverAliases: true });
    expect(again.unchanged).toBe(true);
    expect(again.aliases!.every((a) => a.moved)).toBe(true);

    const tags = Object.fromEntries((await r.tags('app')).map((t) => [t.tag, t]));
    expect(Object.keys(tags).sort()).toEqual(['latest', 'v1', 'v1.1', 'v1.1.5', 'v1.2', 'v1.2.0', 'v1.3', 'v1.3.0', 'v1.3.0-rc1']);
    for (const t of ['latest', 'v1', 'v1.1', 'v1.2', 'v1.3']) expect([t, tags[t]!.mutable]).toEqual([t, true]);
    for (const t of ['v1.1.5', 'v1.2.0', 'v1.3.0', 'v1.3.0-rc1']) expect([t, tags[t]!.mutable]).toEqual([t, false]);
    expect(tags.v1!.manifestDigest).toBe(v130.descriptor.manifestDigest);
    expect(tags['v1.1']!.manifestDigest).toBe(hotfix.descriptor.manifestDigest);

    const e = await rejection(r.push('app', 'v1', { path: file('sneaky') }));
    expect(e.message).toContain(`tag v1 of app is a moving semver alias (now v1.3.0, ${v130.descriptor.manifestDigest})`);
    expect(e.message).toContain('push an exact version tag');
    // semver aliases need a version tag
    expect((await rejection(r.push('app', 'nightly', { path: file('n') }, { semverAliases: true }))).message).toMatch(
      /semver aliases need a version tag/,
    );

    // an immutable tag named like an alias is never moved
    const other = oci('aliases-fixed');
    const hand = await other.push('app', 'latest', { path: file('hand-made') });
    const v2 = await other.push('app', 'v2.0.0', { path: file('2.0.0') }, { semverAliases: true });
    expect(v2.aliases).toContainEqual({
      tag: 'latest',
      moved: false,
      reason: `an immutable tag latest exists (${hand.descriptor.manifestDigest})`,
    });
    expect((await other.tags('app')).find((t) => t.tag === 'latest')).toMatchObject({
      mutable: false,
      manifestDigest: hand.descriptor.manifestDigest,
    });
  });

  it('unknown names, tags and digests are ArtifactNotFound (not auth or network errors)', async () => {
    const r = oci('missing');
    await r.push('app', 'v1', { path: file('x') });
    for (const [name, ref] of [
      ['app', { tag: 'v9' }],
      ['nope', { tag: 'v1' }],
      ['app', { digest: sha('no such manifest') }],
    ] as const) {
      const e = await rejection(r.resolve(name, ref));
      expect(e).toBeInstanceOf(ArtifactNotFound);
      expect(e.message).toMatch(/^artifact (app:v9|nope:v1|app@sha256:[0-9a-f]{64}) not found in registry "prod"$/);
      expect(await r.exists(name, ref)).toBe(false);
    }
    expect(await rejection(r.tags('nope'))).toBeInstanceOf(ArtifactNotFound);
    expect(await oci('empty-prefix').names()).toEqual([]);
    const d = await r.resolve('app', { tag: 'v1' });
    const gone = await rejection(bytes(await r.open({ ...d, layer: { ...d.layer, digest: sha('no such blob') } })));
    expect(gone).toBeInstanceOf(ArtifactNotFound);
  });

  it('copies keep the digest: oci → filesystem, filesystem → oci, oci → oci (one `oras cp`, registry to registry)', async () => {
    const a = oci('copy-a');
    const b = oci('copy-b');
    const store = fsreg();
    const pushed = await a.push('app', 'v1.0.0', { path: file(Buffer.alloc(50_000, 1)) });
    const digest = pushed.descriptor.manifestDigest;

    const toFs = await a.copyTo(store, 'app', 'v1.0.0');
    expect([toFs.descriptor.manifestDigest, toFs.unchanged]).toEqual([digest, false]);
    expect((await a.copyTo(store, 'app', 'v1.0.0')).unchanged).toBe(true);
    expect((await bytes(await store.open(await store.resolve('app', { tag: 'v1.0.0' })))).equals(Buffer.alloc(50_000, 1))).toBe(true);

    const site = tree();
    const fsSite = await store.push('site', 'v3', { path: site });
    const toOci = await store.copyTo(b, 'site', 'v3', 'v3.0.0', { semverAliases: true });
    expect(toOci.descriptor.manifestDigest).toBe(fsSite.descriptor.manifestDigest);
    expect(toOci.aliases!.map((x) => `${x.tag}:${x.moved}`)).toEqual(['v3.0:true', 'v3:true', 'latest:true']);
    expect((await b.tags('site')).map((t) => `${t.tag}:${t.mutable}`)).toEqual(['latest:true', 'v3:true', 'v3.0:true', 'v3.0.0:false']);

    const before = argv.length;
    const o2o = await a.copyTo(b, 'app', 'v1.0.0', 'prod-1');
    expect(o2o.descriptor.manifestDigest).toBe(digest);
    const cps = argv.slice(before).filter((x) => x[1] === 'cp');
    expect(cps).toHaveLength(1);
    expect(cps[0]).toContain(`${reg.url}/copy-a/app@${digest}`);
    expect(cps[0]).toContain(`${reg.url}/copy-b/app:prod-1`);
    expect(cps[0]!.some((x) => x.includes('oci-layout'))).toBe(false);
    expect((await a.copyTo(b, 'app', 'v1.0.0', 'prod-1')).unchanged).toBe(true);
    // the destination's tags are immutable too
    await a.push('app', 'v2.0.0', { path: file('v2') });
    const clash = await rejection(a.copyTo(b, 'app', 'v2.0.0', 'prod-1'));
    expect(clash.message).toContain(`tag prod-1 of app already exists with ${digest}`);
  });

  it('interop: `oras pull` gets the exact bytes Hades pushed; what `oras push` pushed, Hades resolves and delivers', async () => {
    const r = oci('interop');
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await r.push('tool', 'v1', { path: file(payload, 'tool.tgz') });
    const out = join(tmp, `out${k++}`);
    oras(['pull', '--plain-http', '-o', out, `${reg.url}/interop/tool:v1`]);
    expect(readFileSync(join(out, 'tool.tgz')).equals(payload)).toBe(true);

    const dir = join(tmp, `plain${k++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'pushed by plain oras\n');
    const pushed = JSON.parse(oras(['push', '--plain-http', '--format', 'json', `${reg.url}/interop/notes:v7`, 'notes.txt'], dir)) as {
      digest: string;
    };
    const d = await r.resolve('notes', { tag: 'v7' });
    expect(d.manifestDigest).toBe(pushed.digest);
    expect(d.layer.title).toBe('notes.txt');
    expect((await bytes(await r.open(d))).toString()).toBe('pushed by plain oras\n');
  });

  it('a blob corrupted inside the registry storage is caught on pull, naming expected and actual digest', async () => {
    const r = oci('corrupt');
    const payload = Buffer.alloc(200_000, 9);
    const d = (await r.push('app', 'v1', { path: file(payload) })).descriptor;
    const blob = reg.blobFile(d.layer.digest);
    const bad = Buffer.from(payload);
    bad[1000] = 8;
    writeFileSync(blob, bad);
    const e = await rejection(bytes(await r.open(await r.resolve('app', { tag: 'v1' }))));
    expect(e).toBeInstanceOf(IntegrityError);
    expect(e.message).toContain(`digest mismatch: expected ${d.layer.digest}, actual ${sha(bad)}`);
    expect(e.message).toContain('registry "prod"');
    // shorter content is caught too
    writeFileSync(blob, payload.subarray(0, 1000));
    const short = await rejection(bytes(await r.open(d)));
    expect(short.message).toMatch(/mismatch|does not match/);
  });

  /**
   * An oras that runs the real one, except `blob fetch --output PATH REF`: it fetches the real
   * blob, then writes PATH the way `mode` says, slowly (pieces of 256 KiB, 20 ms apart, as a
   * download arrives), and exits 0 — so only Hades's own check can catch bad bytes.
   */
  function fakeOras(mode: 'slow' | 'flip' | 'grow' | 'short'): string {
    const p = join(tmp, `oras-${mode}-${k++}`);
    writeFileSync(
      p,
      `#!/bin/sh
if [ "$1" = blob ] && [ "$2" = fetch ]; then
  out=""; prev=""; for a in "$@"; do [ "$prev" = --output ] && out="$a"; prev="$a"; ref="$a"; done
  real=$(mktemp -p ${JSON.stringify(tmp)})
  oras blob fetch --plain-http --output "$real" "$ref" || exit 1
  case ${JSON.stringify(mode)} in
    flip) printf 'X' | dd of="$real" bs=1 seek=1500000 conv=notrunc status=none ;;
    grow) printf 'extra' >> "$real" ;;
    short) truncate -s 1000000 "$real" ;;
  esac
  size=$(stat -c %s "$real"); i=0
  while [ $((i * 262144)) -lt "$size" ]; do
    dd if="$real" of="$out" bs=262144 skip=$i seek=$i count=1 conv=notrunc status=none; i=$((i + 1)); sleep 0.02
  done
  rm -f "$real"; exit 0
fi
exec oras "$@"
`,
    );
    chmodSync(p, 0o755);
    return p;
  }

  it('fetchTo: oras writes the file, Hades verifies it as it grows; atomic (0600, temp beside, renamed); bad bytes never reach the destination', async () => {
    const r = oci('fetchto');
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const d = (await r.push('app', 'v1', { path: file(payload) })).descriptor;
    const out = join(tmp, `fetch${k++}`);
    mkdirSync(out);
    const dest = join(out, 'app.bin');
    await r.fetchTo(d, dest);
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(statSync(dest).mode & 0o777).toBe(0o600);
    expect(readdirSync(out)).toEqual(['app.bin']);
    const blobFetch = argv.filter((a) => a[1] === 'blob' && a[2] === 'fetch').pop()!;
    expect(blobFetch[blobFetch.indexOf('--output') + 1]).toMatch(new RegExp(`^${out}/\\.app\\.bin\\.hades-`));

    // a slow writer: the reads catch up with it again and again, the result is still exact
    const slowDest = join(out, 'slow.bin');
    await oci('fetchto', {}, { oras: fakeOras('slow') }).fetchTo(d, slowDest);
    expect(readFileSync(slowDest).equals(payload)).toBe(true);
    rmSync(slowDest);

    // an oras that exits 0 with other bytes: Hades's own check refuses them, naming both digests
    const flipped = Buffer.from(payload);
    flipped[1_500_000] = 'X'.charCodeAt(0);
    const e = await rejection(oci('fetchto', {}, { oras: fakeOras('flip') }).fetchTo(d, dest));
    expect(e).toBeInstanceOf(IntegrityError);
    expect(e.message).toBe(
      `registry "prod": artifact app:v1 (layer "app.bin", blob ${d.layer.digest}): digest mismatch: expected ${d.layer.digest}, actual ${sha(flipped)} — the content at ${reg.url}/fetchto/app@${d.layer.digest} is corrupt`,
    );
    expect((await rejection(oci('fetchto', {}, { oras: fakeOras('grow') }).fetchTo(d, dest))).message).toContain(
      `actual more than ${payload.length} bytes`,
    );
    expect((await rejection(oci('fetchto', {}, { oras: fakeOras('short') }).fetchTo(d, dest))).message).toContain(
      `(expected ${payload.length} bytes, got 1000000)`,
    );
    expect(readFileSync(dest).equals(payload)).toBe(true); // the file already there is untouched
    expect(readdirSync(out)).toEqual(['app.bin']); // and no temp file stays

    // a blob corrupted in the registry's storage (real oras): refused, nothing at a new destination
    const blob = reg.blobFile(d.layer.digest);
    const bad = Buffer.from(payload);
    bad[2_000_000] ^= 1;
    writeFileSync(blob, bad);
    const fresh = join(out, 'new.bin');
    const ce = await rejection(r.fetchTo(d, fresh));
    expect(ce).toBeInstanceOf(IntegrityError);
    expect(ce.message).toContain(`digest mismatch: expected ${d.layer.digest}, actual ${sha(bad)}`);
    writeFileSync(blob, payload.subarray(0, 1000));
    expect((await rejection(r.fetchTo(d, fresh))).message).toMatch(/mismatch|does not match/);
    expect(readdirSync(out)).toEqual(['app.bin']);

    // a blob the registry doesn't have: not found, nothing left
    const ghost = { ...d, layer: { ...d.layer, digest: sha('never pushed') } };
    expect(await rejection(r.fetchTo(ghost, fresh))).toBeInstanceOf(ArtifactNotFound);
    expect(readdirSync(out)).toEqual(['app.bin']);
  });

  it('a registry that is down or does not answer fails clearly within the timeout', async () => {
    const down = await startRegistry();
    const url = down.url;
    await down.stop();
    // A timeout far beyond the test's own: a refusal that waited for it (or retried until
    // it) would time the test out.
    const r = openOciRegistry(
      { name: 'prod', type: 'oci', url: `${url}/x`, plainHttp: true, insecure: false, pos },
      { timeoutMs: 600_000 },
    );
    const e = await rejection(r.resolve('app', { tag: 'v1' }));
    expect(e).toBeInstanceOf(OciRegistryError);
    expect((e as OciRegistryError).kind).toBe('network');
    expect(e.message).toMatch(new RegExp(`cannot reach registry "prod" \\(${url}/x\\): .*connection refused`));

    // a server that accepts connections and never answers
    const sockets: net.Socket[] = [];
    const hang = net.createServer((s) => sockets.push(s));
    await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
    try {
      const port = (hang.address() as net.AddressInfo).port;
      const slow = openOciRegistry(
        { name: 'prod', type: 'oci', url: `127.0.0.1:${port}/x`, plainHttp: true, insecure: false, pos },
        { timeoutMs: 1000 },
      );
      const t1 = Date.now();
      const te = await rejection(slow.tags('app'));
      expect((te as OciRegistryError).kind).toBe('timeout');
      expect(te.message).toMatch(/list the tags of app timed out after 1s/);
      expect(Date.now() - t1).toBeGreaterThanOrEqual(950); // its own timeout, not an earlier failure; the test's timeout guards a hang
    } finally {
      for (const s of sockets) s.destroy();
      hang.close();
    }

    // https against a plain-http registry says so
    const https = openOciRegistry({ name: 'prod', type: 'oci', url: `${reg.url}/x`, plainHttp: false, insecure: false, pos });
    const he = await rejection(https.resolve('app', { tag: 'v1' }));
    expect(he.message).toMatch(/server gave HTTP response to HTTPS client — the registry speaks plain HTTP: set plain_http: true/);
  });

  it('without a usable oras the error says how to install it', async () => {
    const r = oci('none', {}, { oras: join(tmp, 'no-oras-here') });
    const e = await rejection(r.resolve('app', { tag: 'v1' }));
    expect(e.message).toMatch(/oras CLI was not found at .*no-oras-here: install oras 1\.2\.0 or newer/);
  });
});
