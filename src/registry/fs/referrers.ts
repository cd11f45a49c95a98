/**
 * Signature referrers in a filesystem registry, in the layout `oras attach --oci-layout` writes:
 * the referrer manifest and its signature blob in blobs/sha256/, and an untagged entry in the
 * artifact's index.json (mediaType, digest, size, the manifest's annotations, artifactType).
 * `oras discover --oci-layout` lists them; a signature attached by hand with `oras attach
 * --oci-layout DIR/NAME:TAG --artifact-type application/vnd.hades.signature.v1
 * FILE:application/vnd.hades.signature.v1+sshsig` is read back here. The index entry is
 * written by the same fenced commit under the layout lock as tags (layout.ts commitIndex).
 */
import { join } from 'node:path';
import { RunError } from '../../errors.js';
import { digestOf } from '../digest.js';
import {
  ANNOTATION,
  MEDIA_TYPE,
  commitIndex,
  ensureLayout,
  readBlobVerified,
  readIndex,
  storeBlobBytes,
  type ImageIndex,
  type ImageManifest,
} from '../layout.js';
import { signatureLayer, type StoredSignature } from '../referrer-manifest.js';
import { SIGNATURE_ARTIFACT_TYPE } from '../signature.js';
import { acquireLock } from './lock.js';
import type { FilesystemRegistry } from './registry.js';

const MAX_REFERRER_BYTES = 64 * 1024;

export async function listFsSignatures(reg: FilesystemRegistry, name: string, subjectDigest: string): Promise<StoredSignature[]> {
  const layout = reg.layoutOf(name);
  const index = await readIndex(layout);
  const out: StoredSignature[] = [];
  for (const entry of index?.manifests ?? []) {
    if (entry.artifactType !== undefined && entry.artifactType !== SIGNATURE_ARTIFACT_TYPE) continue;
    if (entry.annotations?.[ANNOTATION.refName] !== undefined || entry.size > MAX_REFERRER_BYTES) continue;
    const what = `registry "${reg.name}": signature referrer ${entry.digest} of ${name}@${subjectDigest}`;
    let manifest: ImageManifest;
    let bytes: Buffer;
    try {
      bytes = await readBlobVerified(layout, entry, what);
      manifest = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    } catch (e) {
      if (e instanceof SyntaxError) continue; // not a manifest of ours
      throw e;
    }
    const layer = signatureLayer(manifest, subjectDigest);
    if (!layer) continue;
    if (layer.size > MAX_REFERRER_BYTES) throw new RunError(`${what}: a ${layer.size}-byte signature is too large`);
    out.push({ referrer: entry.digest, manifest: bytes, signature: await readBlobVerified(layout, layer, `${what} (signature blob)`) });
  }
  return out;
}

/** Stores a signature referrer (its manifest bytes as given, and the signature blob); a no-op when it is there. */
export async function attachFsSignature(reg: FilesystemRegistry, name: string, manifest: Buffer, sig: Buffer): Promise<void> {
  const layout = reg.layoutOf(name);
  const digest = digestOf(manifest);
  const lock = await acquireLock(join(layout, '.lock'), { purpose: `sign ${name}` });
  try {
    await ensureLayout(layout);
    await storeBlobBytes(layout, sig, undefined, 'signature');
    await storeBlobBytes(layout, manifest, digest, 'signature referrer manifest');
    const parsed = JSON.parse(manifest.toString('utf8')) as ImageManifest;
    const build = (current: ImageIndex | null): ImageIndex | null => {
      const index: ImageIndex = current ?? { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] };
      if (index.manifests.some((m) => m.digest === digest)) return null;
      const entry = {
        mediaType: MEDIA_TYPE.manifest,
        digest,
        size: manifest.length,
        annotations: parsed.annotations ?? {},
        artifactType: SIGNATURE_ARTIFACT_TYPE,
      };
      return { ...index, manifests: [...index.manifests, entry] };
    };
    await commitIndex(layout, build, { beforeClaim: () => lock.assertHeld(), onConflict: () => lock.assertHeld() });
  } finally {
    await lock.release();
  }
}
