import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { becomeWrap, envScript, octal, quote, runWithEnv } from '../../src/shell/command.js';
import {
  TRUSTED_WALK,
  dirCheckCommand,
  dirDeliverCommand,
  dirWriteCommand,
  fileDeliverCommand,
  mkdirCommand,
  sha256Of,
  tempPathFor,
} from '../../src/shell/delivery.js';

const sh = (script: string, input = '') => execFileSync('/bin/sh', ['-c', script], { input, encoding: 'utf8' });

describe('quote', () => {
  it.each([
    ['plain', 'plain'],
    ['/opt/app-1/v1.2', '/opt/app-1/v1.2'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$(rm -rf /)', "'$(rm -rf /)'"],
    ['`id`', "'`id`'"],
    ['a;b&&c|d>e', "'a;b&&c|d>e'"],
    ['line\nbreak', "'line\nbreak'"],
    ['*', "'*'"],
  ])('%j → %s', (input, want) => {
    expect(quote(input)).toBe(want);
  });

  it('round-trips hostile values through a real shell', () => {
    for (const v of ["it's", '$(id)', '`id`', '"double"', 'a\\b', 'new\nline', ' lead', '-n', '*', '$HOME', "''"]) {
      expect(sh(`printf %s ${quote(v)}`)).toBe(v);
    }
  });

  it('refuses NUL', () => {
    expect(() => quote('a\0b')).toThrow(/NUL/);
  });
});

describe('env delivery', () => {
  it('envScript quotes values and rejects bad names', () => {
    expect(envScript({ A: '1', B: "x'y" })).toBe("A=1\nB='x'\\''y'\n");
    expect(() => envScript({ 'BAD-NAME': 'x' })).toThrow(/invalid environment variable name/);
  });

  it('runWithEnv: env arrives as real variables; the shell expands $VAR and ${VAR}, Hades never does', () => {
    const cmd = 'echo "$VERSION" ${VERSION} "$EVIL"';
    const out = sh(runWithEnv(cmd), envScript({ VERSION: 'v1 2', EVIL: '$(echo pwned)' }));
    expect(out).toBe('v1 2 v1 2 $(echo pwned)\n');
  });

  it('runWithEnv: the command gets EOF on stdin and exit codes pass through', () => {
    expect(sh(`${runWithEnv('cat; echo done')}`, envScript({ A: 'x' }))).toBe('done\n');
    expect(() => sh(runWithEnv('exit 7'), '')).toThrow();
  });

  it('becomeWrap builds sudo -n commands', () => {
    expect(becomeWrap('id -u', undefined)).toBe('id -u');
    expect(becomeWrap('id -u', 'root')).toBe("sudo -n -- sh -c 'id -u'");
    expect(becomeWrap('id -u', 'app')).toBe("sudo -n -u app -- sh -c 'id -u'");
    expect(runWithEnv('echo hi', 'root')).toBe(becomeWrap(runWithEnv('echo hi'), 'root'));
    expect(runWithEnv('echo hi', 'root').startsWith("sudo -n -- sh -c 'sh -c ")).toBe(true);
  });

  it('octal', () => {
    expect(octal(0o644)).toBe('0644');
    expect(octal(0o4755)).toBe('04755');
    expect(octal(0)).toBe('0000');
  });
});

describe('generated commands (exact strings)', () => {
  const W = TRUSTED_WALK;
  /** The walk's fast path: one stat over every prefix; anything unusual goes to hades_walk. */
  const fast = (prefixes: string, n: number, dir: string, missing: string) =>
    `k=$(stat -c "%u %g %f" -- ${prefixes} 2>/dev/null | { n=0; while read -r o g f; do n=$((n+1)); m=$(( 0x$f )); ` +
    `[ $(( m & 0170000 )) = 16384 ] && { [ "$o" = 0 ] || [ "$o" = "$u" ]; } && { [ $(( m & 020 )) = 0 ] || [ "$g" = 0 ]; } && { [ $(( m & 02 )) = 0 ] || [ $(( m & 01002 )) = 514 ]; } || exit 1; done; ` +
    `[ $n = ${n} ] && echo $(( m & 01002 )); }) && c=${dir} || hades_walk ${dir} ${missing}; `;
  const temp = (tmpl: string) =>
    `t=; trap '[ -z "$t" ] || rm -rf -- "$t"' EXIT; trap 'exit 1' HUP INT TERM PIPE; t=$(mktemp -d "\${c%/}"/${tmpl}) || exit 1; `;

  it('mkdir: trusted walk to the parent, never through a symlink, created in a private temp dir then mv -T', () => {
    expect(mkdirCommand('/opt/my app', 0o755, {})).toBe(
      `umask 022; ${W}${fast('/ /opt', 2, '/opt', "''")}x=\${c%/}/'my app'; ` +
        `if [ -L "$x" ]; then echo '/opt/my app is a symbolic link: refusing to change it or what it points to' >&2; exit 3; fi; ` +
        `if [ -d "$x" ] && [ "$(stat -c %a "$x")" = 755 ]; then echo unchanged; exit; fi; ` +
        `if [ -d "$x" ]; then if [ "$k" = 514 ] && [ "$(stat -c %u "$x")" != 0 ] && [ "$(stat -c %u "$x")" != "$u" ]; then echo '/opt/my app belongs to another user in a world-writable directory: refusing to change it' >&2; exit 3; fi; ` +
        `chmod 0755 "$x" && echo changed; elif [ -e "$x" ]; then echo '/opt/my app exists and is not a directory' >&2; exit 3; ` +
        `else ${temp(`'.my app.hades-tmp-XXXXXXXXXX'`)}mkdir -- "$t/d" && chmod 0755 "$t/d" && mv -T -- "$t/d" "$x" && echo changed; fi`,
    );
    const owned = mkdirCommand('/srv/x', 0o750, { owner: 'app', group: 'www' });
    expect(owned).toContain(
      `if [ -d "$x" ] && [ "$(stat -c %a "$x")" = 750 ] && [ "$(stat -c %U:%G "$x")" = app:www ]; then echo unchanged; exit; fi; `,
    );
    // a directory keeps its setgid bit across chown, so: chmod then chown -h (never through a link)
    expect(owned).toContain(`chmod 0750 "$x" && chown -h app:www "$x" && echo changed; `);
    expect(owned).toContain(`chmod 0750 "$t/d" && chown -h app:www "$t/d" && mv -T -- "$t/d" "$x" && echo changed; fi`);
    expect(mkdirCommand('/srv/x', 0o750, {}, 'root')).toBe(becomeWrap(mkdirCommand('/srv/x', 0o750, {}), 'root'));
  });

  it('temp names: a mktemp template beside the destination (the random part is chosen on the host)', () => {
    expect(tempPathFor('/opt/app/bin')).toBe('/opt/app/.bin.hades-tmp-XXXXXXXXXX');
  });

  it('sha256 on the host: openssl when present, else sha256sum', () => {
    expect(sha256Of("'/opt/a b'")).toBe(`{ openssl dgst -sha256 -r '/opt/a b' 2>/dev/null || sha256sum '/opt/a b'; } | cut -d ' ' -f 1`);
  });

  it('file delivery: one command that walks to a trusted parent, checks, answers, then (only on "send") reads the bytes', () => {
    const sha = 'a'.repeat(64);
    const h = (f: string) => sha256Of(f);
    expect(fileDeliverCommand('/opt/a b', tempPathFor('/opt/a b'), sha, 0o644, {})).toBe(
      `${W}${fast('/ /opt', 2, '/opt', "'parent directory /opt does not exist'")}f=\${c%/}/'a b'; ` +
        `if [ -d "$f" ]; then echo '/opt/a b is a directory' >&2; exit 3; fi; ` +
        // in a sticky world-writable parent (k=514) only a file of root or the user counts as delivered
        `if [ -f "$f" ] && [ ! -L "$f" ] && { [ "$k" != 514 ] || [ "$(stat -c %u "$f")" = 0 ] || [ "$(stat -c %u "$f")" = "$u" ]; } && [ "$(${h('"$f"')})" = ${sha} ]; then ` +
        `if [ "$(stat -c %a "$f")" = 644 ]; then echo unchanged; exit; fi; if [ "$k" != 514 ]; then chmod 0644 "$f" && echo meta; exit; fi; fi; ` +
        `umask 077; ${temp(`'.a b.hades-tmp-XXXXXXXXXX'`)}echo send; ` +
        `cat > "$t/f" && sync "$t/f" && s=$(${h('"$t/f"')}) && ` +
        `if [ "$s" != ${sha} ]; then echo "checksum mismatch on host: expected ${sha}, got $s" >&2; exit 4; fi && ` +
        `chmod 0644 "$t/f" && mv -fT -- "$t/f" "$f" && echo changed`,
    );
    // ownership: tested before "unchanged"; chown -h BEFORE chmod (chown clears a setuid bit), in place for "meta" and on the temp file
    const owned = fileDeliverCommand('/opt/x', tempPathFor('/opt/x'), sha, 0o4755, { owner: 'app', group: 'www' });
    expect(owned).toContain(
      `if [ "$(stat -c %a "$f")" = 4755 ] && [ "$(stat -c %U:%G "$f")" = app:www ]; then echo unchanged; exit; fi; if [ "$k" != 514 ]; then chown -h app:www "$f" && chmod 04755 "$f" && echo meta; exit; fi; fi; `,
    );
    expect(owned).toContain(`chown -h app:www "$t/f" && chmod 04755 "$t/f" && mv -fT -- "$t/f" "$f" && echo changed`);
    expect(fileDeliverCommand('/opt/x', tempPathFor('/opt/x'), sha, 0o600, {}, 'root')).toBe(
      becomeWrap(fileDeliverCommand('/opt/x', tempPathFor('/opt/x'), sha, 0o600, {}), 'root'),
    );
  });

  it('directory delivery: check, write, and both in one command', () => {
    const sha = 'b'.repeat(64);
    const opts = { gzip: true, stripComponents: 1 };
    const tmp = tempPathFor('/srv/site');
    const write = dirWriteCommand('/srv/site', tmp, sha, 'sha256:m', opts);
    const pre = `${W}${fast('/ /srv', 2, '/srv', "'parent directory /srv does not exist'")}d=\${c%/}/site; `;
    // The check walks to the trusted parent first, like the write: a marker planted under a directory another user controls is refused, never "unchanged".
    expect(dirCheckCommand('/srv/site', 'sha256:m')).toBe(
      `${pre}if [ -d "$d" ] && { [ "$k" != 514 ] || [ "$(stat -c %u "$d")" = 0 ] || [ "$(stat -c %u "$d")" = "$u" ]; } && ` +
        `[ "$(cat "$d/.hades-artifact" 2>/dev/null)" = sha256:m ]; then echo unchanged; else echo changed; fi`,
    );
    expect(fileDeliverCommand('/srv/my app/x', tempPathFor('/srv/my app/x'), sha, 0o644, {})).toContain(
      `${fast("/ /srv '/srv/my app'", 3, "'/srv/my app'", "'parent directory /srv/my app does not exist'")}f=\${c%/}/x; `,
    );
    expect(write.startsWith(pre)).toBe(true);
    const body = write.slice(pre.length);
    expect(body.startsWith(`umask 022; ${temp('.site.hades-tmp-XXXXXXXXXX')}cat > "$t/a" && s=$(${sha256Of('"$t/a"')}) && `)).toBe(true);
    expect(body).toContain(
      `mkdir -- "$t/n" && tar -xzf "$t/a" -C "$t/n" --no-same-owner --no-same-permissions --strip-components=1 && rm -f -- "$t/a" && `,
    );
    expect(body).toContain(`rm -rf -- "$t/n/.hades-artifact" && printf '%s\\n' sha256:m > "$t/n/.hades-artifact" && `);
    expect(
      body.endsWith(
        `if [ -e "$d" ] || [ -L "$d" ]; then mv -T -- "$d" "$t/o" && { mv -T -- "$t/n" "$d" || { mv -T -- "$t/o" "$d"; exit 1; }; }; else mv -T -- "$t/n" "$d"; fi`,
      ),
    ).toBe(true);
    expect(dirWriteCommand('/srv/site', tmp, sha, 'sha256:m', { ...opts, owner: 'app' })).toContain(
      `chown -hR app "$t/n" && if [ -e "$d" ]`,
    );
    expect(dirDeliverCommand('/srv/site', tmp, sha, 'sha256:m', opts)).toBe(
      `${pre}if [ -d "$d" ] && { [ "$k" != 514 ] || [ "$(stat -c %u "$d")" = 0 ] || [ "$(stat -c %u "$d")" = "$u" ]; } && ` +
        `[ "$(cat "$d/.hades-artifact" 2>/dev/null)" = sha256:m ]; then echo unchanged; exit; fi; ` +
        body.replace(`${temp('.site.hades-tmp-XXXXXXXXXX')}`, `${temp('.site.hades-tmp-XXXXXXXXXX')}echo send; `) +
        ' && echo changed',
    );
    expect(dirDeliverCommand('/srv/site', tmp, sha, 'sha256:m', opts, 'app')).toBe(
      becomeWrap(dirDeliverCommand('/srv/site', tmp, sha, 'sha256:m', opts), 'app'),
    );
  });
});

describe('directory delivery behaviour in a real shell', () => {
  it('extracts once ("send", "changed"), is "unchanged" after, refuses bad bytes keeping the old tree', () => {
    const work = mkdtempSync(join(tmpdir(), "hades dir 'q-"));
    mkdirSync(join(work, 'src/site/sub'), { recursive: true });
    writeFileSync(join(work, 'src/site/index.html'), 'hi\n');
    writeFileSync(join(work, 'src/site/sub/a.txt'), 'a\n');
    execFileSync('tar', ['-czf', join(work, 'site.tgz'), '-C', join(work, 'src'), 'site']);
    const tgz = readFileSync(join(work, 'site.tgz'));
    const sha = createHash('sha256').update(tgz).digest('hex');
    const to = join(work, 'srv/site');
    mkdirSync(join(work, 'srv'));
    const cmd = (digest: string, s = sha) => dirDeliverCommand(to, tempPathFor(to), s, digest, { gzip: true, stripComponents: 1 });
    const go = (c: string, input: Buffer | string) => spawnSync('/bin/sh', ['-c', c], { input, encoding: 'utf8' });

    const r1 = go(cmd('sha256:one'), tgz);
    expect([r1.status, r1.stdout, r1.stderr]).toEqual([0, 'send\nchanged\n', '']);
    expect(readFileSync(join(to, 'sub/a.txt'), 'utf8')).toBe('a\n');
    expect(readFileSync(join(to, '.hades-artifact'), 'utf8')).toBe('sha256:one\n');
    expect(readdirSync(join(work, 'srv'))).toEqual(['site']);

    const r2 = go(cmd('sha256:one'), '');
    expect([r2.status, r2.stdout]).toEqual([0, 'unchanged\n']);

    const r3 = go(cmd('sha256:two'), 'not the archive');
    expect(r3.status).toBe(4);
    expect(r3.stderr).toContain('checksum mismatch on host');
    expect(readFileSync(join(to, '.hades-artifact'), 'utf8')).toBe('sha256:one\n');
    expect(readdirSync(join(work, 'srv'))).toEqual(['site']);
  });
});

describe('file delivery behaviour in a real shell', () => {
  const sha = (b: string) => createHash('sha256').update(b).digest('hex');
  const deliver = (dir: string, content: string, stdin: string | null, mode = 0o640) => {
    const dst = join(dir, 'app.bin');
    const cmd = fileDeliverCommand(dst, tempPathFor(dst), sha(content), mode, {});
    // stdin: null = the orchestrator closed it without bytes (no "send" was answered)
    const r = spawnSync('/bin/sh', ['-c', cmd], { input: stdin ?? '', encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr, dst };
  };
  // A space and a quote in every path: quoting (including inside the EXIT trap) is exercised for real.
  const fresh = () => mkdtempSync(join(tmpdir(), "hades deliver 'q-"));

  it('a new file: answers "send", reads stdin, verifies, renames into place, leaves no temp file', () => {
    const dir = fresh();
    const r = deliver(dir, 'v1\n', 'v1\n');
    expect(r).toMatchObject({ code: 0, out: 'send\nchanged\n' });
    expect(readFileSync(r.dst, 'utf8')).toBe('v1\n');
    expect(statSync(r.dst).mode & 0o7777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['app.bin']);
  });

  it('identical content and mode: "unchanged", stdin never read, file untouched', () => {
    const dir = fresh();
    deliver(dir, 'v1\n', 'v1\n');
    const before = statSync(join(dir, 'app.bin'));
    const r = deliver(dir, 'v1\n', null);
    expect(r).toMatchObject({ code: 0, out: 'unchanged\n' });
    const after = statSync(r.dst);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('same content, other mode: "meta", fixed in place (same inode), no bytes needed', () => {
    const dir = fresh();
    deliver(dir, 'v1\n', 'v1\n');
    chmodSync(join(dir, 'app.bin'), 0o600);
    const ino = statSync(join(dir, 'app.bin')).ino;
    const r = deliver(dir, 'v1\n', null);
    expect(r).toMatchObject({ code: 0, out: 'meta\n' });
    expect(statSync(r.dst).mode & 0o7777).toBe(0o640);
    expect(statSync(r.dst).ino).toBe(ino);
  });

  it('other content: replaced atomically (new inode)', () => {
    const dir = fresh();
    deliver(dir, 'v1\n', 'v1\n');
    const ino = statSync(join(dir, 'app.bin')).ino;
    const r = deliver(dir, 'v2\n', 'v2\n');
    expect(r).toMatchObject({ code: 0, out: 'send\nchanged\n' });
    expect(readFileSync(r.dst, 'utf8')).toBe('v2\n');
    expect(statSync(r.dst).ino).not.toBe(ino);
  });

  it('bytes that do not match the sha256: exit 4, destination untouched, temp file removed', () => {
    const dir = fresh();
    deliver(dir, 'v1\n', 'v1\n');
    const r = deliver(dir, 'v2\n', 'corrupted in transit\n');
    expect(r.code).toBe(4);
    expect(r.err).toContain(`checksum mismatch on host: expected ${sha('v2\n')}`);
    expect(readFileSync(r.dst, 'utf8')).toBe('v1\n');
    expect(readdirSync(dir)).toEqual(['app.bin']);
  });

  it('a symlink at dst is replaced, never written through', () => {
    const dir = fresh();
    writeFileSync(join(dir, 'target'), 'v1\n');
    symlinkSync(join(dir, 'target'), join(dir, 'app.bin'));
    const r = deliver(dir, 'v1\n', 'v1\n');
    expect(r).toMatchObject({ code: 0, out: 'send\nchanged\n' });
    expect(statSync(join(dir, 'target')).mode & 0o7777).not.toBe(0o640); // the link target was not chmod'ed
    expect(readdirSync(dir).sort()).toEqual(['app.bin', 'target']); // no temp left
    expect(lstatSync(join(dir, 'app.bin')).isFile()).toBe(true);
  });

  it('missing parent directory, or a directory at dst: exit 3 with a clear message, nothing read', () => {
    const dir = fresh();
    const cmd = fileDeliverCommand(join(dir, 'nope/app.bin'), tempPathFor(join(dir, 'nope/app.bin')), sha('x'), 0o644, {});
    const r = spawnSync('/bin/sh', ['-c', cmd], { input: '', encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(`parent directory ${join(dir, 'nope')} does not exist\n`);
    mkdirSync(join(dir, 'app.bin'));
    const d = deliver(dir, 'x', 'x');
    expect(d.code).toBe(3);
    expect(d.err).toBe(`${join(dir, 'app.bin')} is a directory\n`);
    expect(d.out).toBe('');
  });

  it('the hash falls back to sha256sum when openssl is missing or fails', () => {
    const dir = fresh();
    writeFileSync(join(dir, 'f'), 'hello\n');
    const want = `${sha('hello\n')}\n`;
    for (const fake of [null, '#!/bin/sh\nexit 1\n']) {
      const bin = mkdtempSync(join(tmpdir(), 'hades-bin-'));
      for (const tool of ['sha256sum', 'cut'])
        symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
      if (fake) writeFileSync(join(bin, 'openssl'), fake, { mode: 0o755 });
      expect(execFileSync('/bin/sh', ['-c', sha256Of(quote(join(dir, 'f')))], { encoding: 'utf8', env: { PATH: bin } })).toBe(want);
    }
    expect(execFileSync('/bin/sh', ['-c', sha256Of(quote(join(dir, 'f')))], { encoding: 'utf8' })).toBe(want);
  });
});

describe('hostile directories in a real shell (security issue 11; runs as root, `nobody` is the other user)', () => {
  const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
  const go = (c: string, input: Buffer | string = '') => spawnSync('/bin/sh', ['-c', c], { input, encoding: 'utf8' });
  const fileCmd = (dst: string, content: string | Buffer, mode = 0o644, own = {}) =>
    fileDeliverCommand(dst, tempPathFor(dst), sha(content), mode, own);
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  /** A root-owned 0755 work dir (traversable by nobody) with a root-only secret beside. */
  const fresh = () => {
    const w = mkdtempSync(join(tmpdir(), "hades hostile 'q-"));
    chmodSync(w, 0o755);
    mkdirSync(join(w, 'secret'), { mode: 0o700 });
    writeFileSync(join(w, 'secret/keep'), 'root only\n', { mode: 0o600 });
    return w;
  };
  const secretState = (w: string) =>
    execFileSync('sh', ['-c', `cd ${quote(w)}/secret && find . -exec stat -c '%n %F %a %U' {} + | sort && cat keep`], { encoding: 'utf8' });

  it('refuses a parent another user owns, a group-writable one, and a path through a link planted there; allows root-owned and sticky dirs', () => {
    const w = fresh();
    const before = secretState(w);
    mkdirSync(join(w, 'app'));
    chownSync(join(w, 'app'), nobody, 0);
    const r = go(fileCmd(join(w, 'app/x'), 'v\n'), 'v\n');
    expect([r.status, r.stdout]).toEqual([3, '']);
    expect(r.stderr).toBe(
      `refusing to write under ${join(w, 'app')}: it is owned by nobody:root with mode 755, so a user other than root could redirect the write; ` +
        `deliver as that user (become: nobody), or make ${join(w, 'app')} owned by root and not writable by group or others\n`,
    );
    symlinkSync(join(w, 'secret'), join(w, 'app/link')); // as if nobody planted it
    const l = go(fileCmd(join(w, 'app/link/keep'), 'pwned\n'), 'pwned\n');
    expect(l.status).toBe(3);
    expect(l.stderr).toContain(`refusing to write under ${join(w, 'app')}:`);
    mkdirSync(join(w, 'grp'), { mode: 0o775 });
    chmodSync(join(w, 'grp'), 0o775);
    chownSync(join(w, 'grp'), 0, nobody);
    expect(go(fileCmd(join(w, 'grp/x'), 'v\n'), 'v\n').stderr).toContain(
      `under ${join(w, 'grp')}: it is owned by root:nogroup with mode 775`,
    );
    mkdirSync(join(w, 'sticky'));
    chmodSync(join(w, 'sticky'), 0o1777);
    expect(go(fileCmd(join(w, 'sticky/x'), 'v\n'), 'v\n').stdout).toBe('send\nchanged\n');
    // in a sticky world-writable dir an entry may belong to someone who can swap it: never fixed in place ("meta"), replaced
    chmodSync(join(w, 'sticky/x'), 0o600);
    expect(go(fileCmd(join(w, 'sticky/x'), 'v\n'), 'v\n').stdout).toBe('send\nchanged\n');
    expect(statSync(join(w, 'sticky/x')).mode & 0o7777).toBe(0o644);
    expect(go(fileCmd(join(w, 'sticky/x'), 'v\n')).stdout).toBe('unchanged\n');
    symlinkSync('sticky', join(w, 'rel')); // a link root made in a trusted dir is followed (its target walked too)
    expect(go(fileCmd(join(w, 'rel/y'), 'y\n'), 'y\n').stdout).toBe('send\nchanged\n');
    expect(readFileSync(join(w, 'sticky/y'), 'utf8')).toBe('y\n');
    expect(readdirSync(join(w, 'app')).sort()).toEqual(['link']);
    expect(secretState(w)).toBe(before);
  });

  it('a non-root user delivers into its own directory (the same rule, with that user trusted)', () => {
    const w = fresh();
    mkdirSync(join(w, 'mine'));
    chownSync(join(w, 'mine'), nobody, 0);
    const cmd = fileCmd(join(w, 'mine/x'), 'v\n');
    const r = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', cmd], { input: 'v\n', encoding: 'utf8' });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, 'send\nchanged\n', '']);
    expect(statSync(join(w, 'mine/x')).uid).toBe(nobody);
  });

  it('chown before chmod: a requested 04755 with an owner survives, and the second run is "unchanged"', () => {
    const w = fresh();
    const dst = join(w, 'tool');
    expect(go(fileCmd(dst, 'x\n', 0o4755, { owner: 'nobody' }), 'x\n').stdout).toBe('send\nchanged\n');
    expect([statSync(dst).mode & 0o7777, statSync(dst).uid]).toEqual([0o4755, nobody]);
    expect(go(fileCmd(dst, 'x\n', 0o4755, { owner: 'nobody' })).stdout).toBe('unchanged\n');
    chownSync(dst, 0, 0); // clears the setuid bit: "meta" restores both, in the right order
    expect(go(fileCmd(dst, 'x\n', 0o4755, { owner: 'nobody' })).stdout).toBe('meta\n');
    expect([statSync(dst).mode & 0o7777, statSync(dst).uid]).toEqual([0o4755, nobody]);
  });

  it('dst replaced by a symlink to a directory while the bytes stream in: the file replaces the link (mv -T), nothing lands inside', async () => {
    const w = fresh();
    const dst = join(w, 'big.bin');
    writeFileSync(dst, 'old\n');
    const before = secretState(w);
    const data = Buffer.alloc(4 << 20, 7);
    const child = spawn('/bin/sh', ['-c', fileCmd(dst, data)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((res) => child.on('close', res));
    child.stdin.write(data.subarray(0, 1 << 20));
    while (!out.includes('send')) await new Promise((r) => setTimeout(r, 5));
    // mid-transfer: the old dst becomes a link to a directory
    rmSync(dst);
    symlinkSync(join(w, 'secret'), dst);
    child.stdin.end(data.subarray(1 << 20));
    expect(await exited).toBe(0);
    expect(out).toBe('send\nchanged\n');
    expect(lstatSync(dst).isFile()).toBe(true);
    expect(sha(readFileSync(dst))).toBe(sha(data));
    expect(secretState(w)).toBe(before);
    expect(readdirSync(w).sort()).toEqual(['big.bin', 'secret']);
  });

  it('mkdir: parents created one by one, setgid and owner applied, idempotent; never through a symlink', () => {
    const w = fresh();
    const p = join(w, 'a/b/c');
    expect(go(mkdirCommand(p, 0o2775, { owner: 'nobody' })).stdout).toBe('changed\n');
    expect([statSync(p).mode & 0o7777, statSync(p).uid, statSync(join(w, 'a/b')).mode & 0o7777]).toEqual([0o2775, nobody, 0o755]);
    expect(readdirSync(join(w, 'a/b'))).toEqual(['c']); // no temp left
    expect(go(mkdirCommand(p, 0o2775, { owner: 'nobody' })).stdout).toBe('unchanged\n');
    const before = secretState(w);
    symlinkSync(join(w, 'secret'), join(w, 'rel'));
    const r = go(mkdirCommand(join(w, 'rel'), 0o777, { owner: 'nobody' }));
    expect([r.status, r.stderr]).toEqual([3, `${join(w, 'rel')} is a symbolic link: refusing to change it or what it points to\n`]);
    chownSync(join(w, 'a'), nobody, 0);
    symlinkSync(join(w, 'secret'), join(w, 'a/releases'));
    expect(go(mkdirCommand(join(w, 'a/releases'), 0o777, { owner: 'nobody' })).stderr).toContain(
      `refusing to write under ${join(w, 'a')}:`,
    );
    expect(statSync(join(w, 'secret')).mode & 0o7777).toBe(0o700);
    expect(secretState(w)).toBe(before);
  });

  it('archives: no setuid bits as root, no links leaving the tree, no fifos; the marker is written fresh, never through a link', () => {
    const w = fresh();
    const before = secretState(w);
    let n = 0;
    const deliver = (setup: string) => {
      const src = join(w, `src${++n}`);
      mkdirSync(join(src, 'site'), { recursive: true });
      writeFileSync(join(src, 'site/index.html'), 'hi\n');
      execFileSync('sh', ['-c', setup], { cwd: join(src, 'site') });
      const tgz = execFileSync('tar', ['-czf', '-', '-C', src, 'site']);
      const to = join(w, `site${n}`);
      return { to, ...go(dirDeliverCommand(to, tempPathFor(to), sha(tgz), `sha256:${n}`, { gzip: true, stripComponents: 1 }), tgz) };
    };
    const suid = deliver('echo x > x && chmod 4755 x');
    expect(suid.stdout).toBe('send\nchanged\n');
    expect(statSync(join(suid.to, 'x')).mode & 0o7777).toBe(0o755);
    const marker = deliver('ln -s index.html .hades-artifact');
    expect(marker.stdout).toBe('send\nchanged\n');
    expect(readFileSync(join(marker.to, 'index.html'), 'utf8')).toBe('hi\n');
    expect(lstatSync(join(marker.to, '.hades-artifact')).isFile()).toBe(true);
    for (const [setup, why] of [
      [`ln -s ${quote(join(w, 'secret/keep'))} keep`, 'the link keep points outside it'],
      ['mkdir d && ln -s ../../secret d/up', 'the link d/up points outside it'],
      ['mkfifo ff', 'ff is a device, fifo, socket or setuid/setgid file'],
    ] as const) {
      const r = deliver(setup);
      expect([r.status, r.stderr]).toEqual([5, `refusing the extracted tree: ${why}\n`]);
      expect(existsSync(r.to)).toBe(false);
    }
    expect(readdirSync(w).filter((x) => x.includes('hades-tmp'))).toEqual([]);
    expect(secretState(w)).toBe(before);
  });
});
