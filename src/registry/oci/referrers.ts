/**
 * Signature referrers in an `oci` registry, through oras: found with `oras discover
 * --artifact-type application/vnd.hades.signature.v1` (the referrers API, or on registries
 * without it — Debian's docker-registry 2.8 — the referrers tag schema `sha256-<hex>` that oras
 * maintains), read with `oras manifest fetch` + `oras blob fetch` (both verified by Hades), and
 * written with `oras blob push` + `oras manifest push` of the exact referrer manifest bytes (oras
 * updates the referrers tag index as `oras attach` does), so `oras cp -r` carries them.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../../errors.js';
import { verifyBytes } from '../digest.js';
import { EMPTY_DIGEST, EMPTY_JSON, type ImageManifest } from '../layout.js';
import { signatureLayer, type StoredSignature } from '../referrer-manifest.js';
import { validateDigest } from '../reference.js';
import { SIGNATURE_ARTIFACT_TYPE } from '../signature.js';
import type { OciSettings } from './settings.js';

const MAX_REFERRER_BYTES = 64 * 1024;

async function fetchSmall(
  reg: OciSettings,
  name: string,
  kind: 'manifest' | 'blob',
  d: { digest: string; size: number },
  what: string,
): Promise<Buffer> {
  if (d.size > MAX_REFERRER_BYTES) throw new RunError(`${what}: ${d.size} bytes, too large for a signature`);
  return reg.withTemp(async (dir) => {
    const file = join(dir, 'out');
    await reg.oras.run(
      reg.call([kind, 'fetch'], ['--output', file, `${reg.repo(name)}@${d.digest}`], { what: `fetch ${kind} ${name}@${d.digest}` }),
    );
    const bytes = await fsp.readFile(file);
    verifyBytes(bytes, d, what, reg.repo(name));
    return bytes;
  });
}

export async function listOciSignatures(reg: OciSettings, name: string, subjectDigest: string): Promise<StoredSignature[]> {
  reg.checkName(name);
  const out = await reg.oras.run(
    reg.call(['discover'], ['--format', 'json', '--artifact-type', SIGNATURE_ARTIFACT_TYPE, `${reg.repo(name)}@${subjectDigest}`], {
      what: `list the signatures of ${name}@${subjectDigest}`,
    }),
  );
  let found: { manifests?: Array<{ digest?: unknown; size?: unknown; artifactType?: unknown }> };
  try {
    found = JSON.parse(out) as typeof found;
  } catch {
    throw new RunError(`registry "${reg.name}": oras discover printed no JSON (${out.slice(0, 200)})`);
  }
  const sigs: StoredSignature[] = [];
  for (const m of found.manifests ?? []) {
    if (typeof m.digest !== 'string' || validateDigest(m.digest) || typeof m.size !== 'number') continue;
    if (m.artifactType !== SIGNATURE_ARTIFACT_TYPE) continue;
    const what = `registry "${reg.name}": signature referrer ${m.digest} of ${name}@${subjectDigest}`;
    const bytes = await fetchSmall(reg, name, 'manifest', { digest: m.digest, size: m.size }, what);
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    } catch {
      continue;
    }
    const layer = signatureLayer(manifest, subjectDigest);
    if (!layer) continue;
    sigs.push({ referrer: m.digest, manifest: bytes, signature: await fetchSmall(reg, name, 'blob', layer, `${what} (signature blob)`) });
  }
  return sigs;
}

/** Pushes a signature referrer: the signature blob, the empty config, then the manifest bytes as given. */
export async function attachOciSignature(reg: OciSettings, name: string, manifest: Buffer, sig: Buffer): Promise<void> {
  reg.checkName(name);
  const repo = reg.repo(name);
  await reg.withTemp(async (dir) => {
    const files = { sig: join(dir, 'signature.sig'), empty: join(dir, 'empty.json'), manifest: join(dir, 'manifest.json') };
    await fsp.writeFile(files.sig, sig);
    await fsp.writeFile(files.empty, EMPTY_JSON);
    await fsp.writeFile(files.manifest, manifest);
    await reg.oras.run(reg.call(['blob', 'push'], [repo, files.sig], { what: `push the signature of ${name}` }));
    await reg.oras.run(reg.call(['blob', 'push'], [`${repo}@${EMPTY_DIGEST}`, files.empty], { what: `push the empty config of ${name}` }));
    await reg.oras.run(reg.call(['manifest', 'push'], [repo, files.manifest], { what: `push the signature referrer of ${name}` }));
  });
}
