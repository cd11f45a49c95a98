/**
 * The read-only probes of `--check` (src/shell/check.ts): exact strings, then run with the
 * real /bin/sh on real trees — what they answer, that a directory the delivery would refuse
 * is refused (nothing behind it read), and that they change nothing (every entry's bytes,
 * mode, owner, mtime and ctime the same afterwards).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { artifactDirProbeCommand, dirProbeCommand, fileProbeCommand, PROBE_MISSING, parseProbeHead } from '../../src/shell/check.js';
import { sha256Of, TRUSTED_WALK } from '../../src/shell/delivery.js';

const SHA = 'ab'.repeat(32);

describe('probe builders (exact strings)', () => {
  it('fileProbeCommand: walk to the parent read-only, then stat + sha256, and the bytes only when they differ and fit the cap', () => {
    expect(fileProbeCommand('/srv/app/app.conf', SHA, 65536)).toBe(
      `${TRUSTED_WALK}hades_walk /srv/app 'hades-check: missing parent directory'; f=\${c%/}/app.conf; ` +
        `if [ -L "$f" ]; then echo link; elif [ -d "$f" ]; then echo dir; elif [ -f "$f" ]; then ` +
        `set -- $(stat -c '%a %U %G %s %u' -- "$f") && s=$(${sha256Of('"$f"')}) && ` +
        `if [ "$k" = 514 ] && [ "$5" != 0 ] && [ "$5" != "$u" ]; then echo "file $s $1 $2 $3 $4 foreign"; else echo "file $s $1 $2 $3 $4" && ` +
        `if [ "$s" != ${SHA} ] && [ "$4" -le 65536 ]; then head -c 65536 -- "$f"; fi; fi; ` +
        `elif [ -e "$f" ]; then echo other; else echo absent; fi`,
    );
  });
  it('dirProbeCommand quotes the path and wraps become in sudo -n', () => {
    const inner =
      `${TRUSTED_WALK}hades_walk /srv 'hades-check: missing parent directory'; x=\${c%/}/'my app'; ` +
      `if [ -L "$x" ]; then echo link; elif [ -d "$x" ]; then echo "dir $(stat -c '%a %U %G' -- "$x")"; ` +
      `elif [ -e "$x" ]; then echo other; else echo absent; fi`;
    expect(dirProbeCommand('/srv/my app')).toBe(inner);
    expect(dirProbeCommand('/srv/my app', 'deploy')).toBe(`sudo -n -u deploy -- sh -c '${inner.replace(/'/g, `'\\''`)}'`);
  });
  it('artifactDirProbeCommand reads the marker only when it is a regular file', () => {
    expect(artifactDirProbeCommand('/srv/app/cur')).toBe(
      `${TRUSTED_WALK}hades_walk /srv/app 'hades-check: missing parent directory'; d=\${c%/}/cur; ` +
        `if [ -L "$d" ]; then echo link; elif [ -d "$d" ]; then ` +
        `z=; if [ "$k" = 514 ] && [ "$(stat -c %u -- "$d")" != 0 ] && [ "$(stat -c %u -- "$d")" != "$u" ]; then z=' foreign'; fi; ` +
        `if [ -f "$d/.hades-artifact" ] && [ ! -L "$d/.hades-artifact" ]; then echo "dir $(stat -c '%a %U %G' -- "$d") $(head -c 200 -- "$d/.hades-artifact" | head -n 1)$z"; ` +
        `else echo "dir $(stat -c '%a %U %G' -- "$d")$z"; fi; ` +
        `elif [ -e "$d" ]; then echo other; else echo absent; fi`,
    );
  });
  it('parseProbeHead reads every answer and rejects anything else', () => {
    expect(parseProbeHead('absent')).toEqual({ type: 'absent' });
    expect(parseProbeHead(`file ${SHA} 644 root root 12`)).toEqual({
      type: 'file',
      sha256: SHA,
      mode: '644',
      owner: 'root',
      group: 'root',
      size: 12,
    });
    expect(parseProbeHead('dir 755 app app sha256:12')).toEqual({
      type: 'dir',
      mode: '755',
      owner: 'app',
      group: 'app',
      marker: 'sha256:12',
    });
    expect(parseProbeHead('file nothex 644 root root 1')).toBeUndefined();
    expect(parseProbeHead('send')).toBeUndefined();
  });
});

/** Every entry: type, mode, owner, size, mtime and ctime (ns), and the bytes' sha256. */
function state(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    const st = lstatSync(p, { bigint: true });
    out[p] =
      `${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs}${st.isFile() ? ` ${createHash('sha256').update(readFileSync(p)).digest('hex')}` : ''}`;
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
  return out;
}

function sh(cmd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('probes on real trees (/bin/sh)', () => {
  const tree = () => {
    const root = mkdtempSync(join(tmpdir(), 'hades-probe-'));
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'app'), { mode: 0o755 });
    writeFileSync(join(root, 'app', 'conf'), 'a=1\n', { mode: 0o640 });
    return root;
  };

  it('answers absent / file (+ bytes when they differ) / link / dir, and writes nothing', () => {
    const root = tree();
    const conf = join(root, 'app', 'conf');
    const sha = createHash('sha256').update('a=1\n').digest('hex');
    symlinkSync('/etc/passwd', join(root, 'app', 'planted'));
    const before = state(root);
    expect(sh(fileProbeCommand(join(root, 'app', 'new'), SHA, 100))).toEqual({ code: 0, stdout: 'absent\n', stderr: '' });
    expect(sh(fileProbeCommand(conf, SHA, 100)).stdout).toBe(`file ${sha} 640 root root 4\na=1\n`);
    expect(sh(fileProbeCommand(conf, sha, 100)).stdout).toBe(`file ${sha} 640 root root 4\n`); // same sha256: no bytes
    expect(sh(fileProbeCommand(conf, SHA, 3)).stdout).toBe(`file ${sha} 640 root root 4\n`); // over the cap: no bytes
    expect(sh(fileProbeCommand(join(root, 'app', 'planted'), SHA, 100000)).stdout).toBe('link\n'); // never followed
    expect(sh(fileProbeCommand(join(root, 'app'), SHA, 100)).stdout).toBe('dir\n');
    expect(sh(dirProbeCommand(join(root, 'app'))).stdout).toBe('dir 755 root root\n');
    expect(sh(artifactDirProbeCommand(join(root, 'app'))).stdout).toBe('dir 755 root root\n');
    writeFileSync(join(root, 'app', '.hades-artifact'), 'sha256:feed\n');
    expect(sh(artifactDirProbeCommand(join(root, 'app'))).stdout).toBe('dir 755 root root sha256:feed\n');
    const after = state(root);
    delete after[join(root, 'app', '.hades-artifact')];
    const { [join(root, 'app')]: appAfter, ...restAfter } = after;
    const { [join(root, 'app')]: appBefore, ...restBefore } = before;
    expect(restAfter).toEqual(restBefore);
    expect(appAfter!.split(' ').slice(0, 3)).toEqual(appBefore!.split(' ').slice(0, 3));
  });

  it('in a sticky world-writable directory, a file of another user is never read (it could be swapped for a link to a root-only file)', () => {
    const root = tree();
    const tmp = join(root, 'tmp');
    mkdirSync(tmp);
    chmodSync(tmp, 0o1777);
    const theirs = join(tmp, 'app.conf');
    writeFileSync(theirs, 'theirs\n', { mode: 0o644 });
    chownSync(theirs, 65534, 65534);
    const ours = join(tmp, 'ours.conf');
    writeFileSync(ours, 'ours\n', { mode: 0o644 });
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    const name = (id: number, db: 'passwd' | 'group') => sh(`getent ${db} ${id} | cut -d: -f1`).stdout.trim();
    expect(sh(fileProbeCommand(theirs, SHA, 100)).stdout).toBe(
      `file ${sha('theirs\n')} 644 ${name(65534, 'passwd')} ${name(65534, 'group')} 7 foreign\n`,
    );
    expect(parseProbeHead(`file ${SHA} 644 nobody nogroup 7 foreign`)).toMatchObject({ type: 'file', foreign: true });
    const site = join(tmp, 'site');
    mkdirSync(site);
    writeFileSync(join(site, '.hades-artifact'), 'sha256:feed\n');
    chownSync(site, 65534, 65534);
    expect(parseProbeHead(sh(artifactDirProbeCommand(site)).stdout.trim())).toMatchObject({
      type: 'dir',
      marker: 'sha256:feed',
      foreign: true,
    });
    expect(parseProbeHead(sh(artifactDirProbeCommand(site, undefined, name(65534, 'passwd'))).stdout.trim())).not.toHaveProperty('foreign');
    // Root's own file there cannot be swapped by anyone else (sticky): read as usual.
    expect(sh(fileProbeCommand(ours, SHA, 100)).stdout).toBe(`file ${sha('ours\n')} 644 root root 5\nours\n`);
  });

  it('a missing parent is reported (exit 3, PROBE_MISSING), never created', () => {
    const root = tree();
    const before = state(root);
    const r = sh(fileProbeCommand(join(root, 'app', 'x', 'y', 'conf'), SHA, 100));
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe(PROBE_MISSING);
    expect(sh(dirProbeCommand(join(root, 'new', 'sub'))).code).toBe(3);
    expect(state(root)).toEqual(before);
  });

  it('a directory another user can write is refused like the delivery refuses it; nothing behind it is read', () => {
    const root = tree();
    const evil = join(root, 'evil');
    mkdirSync(evil);
    chownSync(evil, 65534, 65534);
    writeFileSync(join(evil, 'conf'), 'secret\n');
    const before = state(root);
    const r = sh(fileProbeCommand(join(evil, 'conf'), SHA, 100));
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`refusing to write under ${evil}: it is owned by nobody:`);
    // a link to it on the way is walked, and refused the same
    symlinkSync(evil, join(root, 'app', 'via'));
    const l = sh(fileProbeCommand(join(root, 'app', 'via', 'conf'), SHA, 100));
    expect([l.code, l.stdout]).toEqual([3, '']);
    expect(l.stderr).toContain(`refusing to write under ${evil}`);
    const after = state(root);
    delete after[join(root, 'app', 'via')];
    const { [join(root, 'app')]: _a, ...ra } = after;
    const { [join(root, 'app')]: _b, ...rb } = before;
    expect(ra).toEqual(rb);
  });
});
