/**
 * digest.ts: hashing a file while another writer is still appending to it (what `fetchTo` of
 * the oci registry does while oras downloads), and 1 MiB file digests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestFile, digestGrowingFile } from '../../src/registry/digest.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('digestGrowingFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hades-digest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let k = 0;

  /**
   * Creates a file (after `delay` ms) and appends `data` in `pieces` pieces, `delay` ms apart;
   * resolves after the last one (or rejects before piece `failAfter`).
   */
  function writer(data: Buffer, pieces: number, delay: number, failAfter?: number) {
    const path = join(dir, `f${k++}`);
    const done = (async () => {
      await sleep(delay);
      writeFileSync(path, '');
      const step = Math.max(1, Math.ceil(data.length / pieces));
      for (let i = 0; i * step < data.length; i++) {
        if (failAfter !== undefined && i === failAfter) throw new Error('writer failed');
        await sleep(delay);
        appendFileSync(path, data.subarray(i * step, (i + 1) * step));
      }
    })();
    done.catch(() => undefined);
    return { path, done };
  }

  it('follows a slow writer to the end: the digest and size of everything it wrote', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 333); // more than one 1 MiB read, not aligned
    const w = writer(data, 25, 8);
    expect(await digestGrowingFile(w.path, w.done)).toEqual({ digest: sha(data), size: data.length });
    expect(await digestFile(w.path)).toEqual({ digest: sha(data), size: data.length });
  });

  it('stops when the writer fails (what it wrote so far), and early past maxSize (no digest)', async () => {
    const data = randomBytes(400_000);
    const failing = writer(data, 10, 5, 4);
    expect(await digestGrowingFile(failing.path, failing.done)).toEqual({ digest: sha(data.subarray(0, 160_000)), size: 160_000 });
    const big = writer(data, 4, 5);
    const r = await digestGrowingFile(big.path, big.done, { maxSize: 150_000 });
    expect(r?.digest).toBeUndefined();
    expect(r?.size).toBeGreaterThan(150_000);
    await big.done;
    // a writer that created the file and wrote nothing: the empty digest
    const empty = writer(Buffer.alloc(0), 1, 5);
    expect(await digestGrowingFile(empty.path, empty.done)).toEqual({ digest: sha(Buffer.alloc(0)), size: 0 });
    // a writer that failed before creating the file: null
    const never = writer(data, 4, 5, 0);
    never.done.catch(() => undefined);
    expect(await digestGrowingFile(join(dir, 'never-created'), never.done)).toBeNull();
  });
});

describe('digestFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hades-digestfile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([0, 1, 1024 * 1024, 2 * 1024 * 1024, 3 * 1024 * 1024 + 17])('%d bytes: the digest and size', async (n) => {
    const data = randomBytes(n);
    const path = join(dir, `f${n}`);
    writeFileSync(path, data);
    expect(await digestFile(path)).toEqual({ digest: sha(data), size: n });
  });

  it('an aborted signal stops it with the abort error; a missing file rejects', async () => {
    const path = join(dir, 'big');
    writeFileSync(path, randomBytes(8 * 1024 * 1024));
    const ac = new AbortController();
    const p = digestFile(path, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await expect(digestFile(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
