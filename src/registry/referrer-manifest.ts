/**
 * The referrer manifest of a signature, as `oras attach` writes it: an image manifest with its
 * own artifactType, the OCI empty config (inline), one layer (the armored SSH signature) and a
 * `subject` pointing at the signed manifest. Parsed back with every field checked.
 */
import { digestOf } from './digest.js';
import { ANNOTATION, EMPTY_DIGEST, MEDIA_TYPE, type ImageManifest } from './layout.js';
import { SIGNATURE_ARTIFACT_TYPE, SIGNATURE_MEDIA_TYPE, SIGNATURE_NAME_ANNOTATION } from './signature.js';

export interface SubjectRef {
  digest: string;
  size: number;
  mediaType?: string;
}

/** The manifest bytes (keys in oras's order) of a signature referrer of `subject`. */
export function signatureManifest(subject: SubjectRef, name: string, sig: Buffer, created: string): Buffer {
  const m = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    artifactType: SIGNATURE_ARTIFACT_TYPE,
    config: { mediaType: MEDIA_TYPE.empty, digest: EMPTY_DIGEST, size: 2, data: 'e30=' },
    layers: [
      { mediaType: SIGNATURE_MEDIA_TYPE, digest: digestOf(sig), size: sig.length, annotations: { [ANNOTATION.title]: 'signature.sig' } },
    ],
    subject: { mediaType: subject.mediaType ?? MEDIA_TYPE.manifest, digest: subject.digest, size: subject.size },
    annotations: { [SIGNATURE_NAME_ANNOTATION]: name, [ANNOTATION.created]: created },
  };
  return Buffer.from(JSON.stringify(m));
}

/** The signature layer of a referrer manifest of `subjectDigest`, or undefined when it is not a Hades signature of it. */
export function signatureLayer(manifest: ImageManifest, subjectDigest: string): { digest: string; size: number } | undefined {
  if (manifest.artifactType !== SIGNATURE_ARTIFACT_TYPE) return undefined;
  const subject = manifest.subject as { digest?: unknown } | undefined;
  if (!subject || subject.digest !== subjectDigest) return undefined;
  const layer = manifest.layers?.find((l) => l.mediaType === SIGNATURE_MEDIA_TYPE);
  if (!layer || typeof layer.digest !== 'string' || typeof layer.size !== 'number') return undefined;
  return { digest: layer.digest, size: layer.size };
}

/** Signatures stored for one artifact: the armored bytes, each with the referrer that holds it. */
export interface StoredSignature {
  /** Digest of the referrer manifest. */
  referrer: string;
  /** The referrer manifest's exact bytes (copied as they are, so its digest stays the same). */
  manifest: Buffer;
  signature: Buffer;
}
