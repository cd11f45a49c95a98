/**
 * Deliveries into a sticky world-writable directory (like /tmp, which the trusted walk
 * accepts): another user may create the destination name there first. A file of theirs with
 * the right bytes and mode must not count as "unchanged" (it stays theirs: they could rewrite
 * it at any time); it is replaced by the delivery's own file. The real delivery command, run
 * with /bin/sh as root on a real tree; the other user is uid 65534.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dirCheckCommand, fileDeliverCommand, tempPathFor } from '../../src/shell/delivery.js';

const root = mkdtempSync(join(tmpdir(), 'hades-sticky-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function deliver(dst: string, content: string, own: { owner?: string } = {}): { code: number | null; stdout: string; stderr: string } {
  const sha = createHash('sha256').update(content).digest('hex');
  const r = spawnSync('/bin/sh', ['-c', fileDeliverCommand(dst, tempPathFor(dst), sha, 0o644, own)], { input: content, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('file delivery into a sticky world-writable directory', () => {
  it("another user's file with the same bytes and mode is replaced, not kept as unchanged; ours is unchanged", () => {
    const tmp = join(root, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    const dst = join(tmp, 'app.conf');
    writeFileSync(dst, 'a=1\n', { mode: 0o644 });
    chmodSync(dst, 0o644);
    chownSync(dst, 65534, 65534);
    const r = deliver(dst, 'a=1\n');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('send\nchanged\n');
    expect(statSync(dst).uid).toBe(0);
    expect(readFileSync(dst, 'utf8')).toBe('a=1\n');
    expect(deliver(dst, 'a=1\n').stdout).toBe('unchanged\n');
  });

  it('with owner: given, a file already owned by that user counts as unchanged (the owner asked for)', () => {
    const dst = join(root, 'tmp', 'theirs.conf');
    writeFileSync(dst, 'b=2\n', { mode: 0o644 });
    chmodSync(dst, 0o644);
    chownSync(dst, 65534, 65534);
    const name = spawnSync('sh', ['-c', 'getent passwd 65534 | cut -d: -f1'], { encoding: 'utf8' }).stdout.trim();
    expect(deliver(dst, 'b=2\n', { owner: name }).stdout).toBe('unchanged\n');
  });

  it("another user's directory with a marker naming the digest: the directory pull's check says changed, not unchanged", () => {
    const d = join(root, 'tmp', 'site');
    mkdirSync(d);
    writeFileSync(join(d, '.hades-artifact'), 'sha256:feed\n');
    writeFileSync(join(d, 'index.html'), 'theirs\n');
    chownSync(d, 65534, 65534);
    const check = (owner?: string) =>
      spawnSync('/bin/sh', ['-c', dirCheckCommand(d, 'sha256:feed', undefined, owner)], { encoding: 'utf8' }).stdout;
    expect(check()).toBe('changed\n');
    const name = spawnSync('sh', ['-c', 'getent passwd 65534 | cut -d: -f1'], { encoding: 'utf8' }).stdout.trim();
    expect(check(name)).toBe('unchanged\n'); // owner: that user — the tree is theirs by request
    chownSync(d, 0, 0);
    expect(check()).toBe('unchanged\n');
  });
});
