import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { becomeWrap, envScript, octal, quote, runWithEnv } from '../../src/transport/shell.js';
import { dirCheckCommand, dirDeliverCommand, dirWriteCommand, fileDeliverCommand, mkdirCommand, sha256Of, tempPathFor } from '../../src/actions/commands.js';

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
  it('mkdir', () => {
    expect(mkdirCommand('/opt/my app', 0o755, {})).toBe(
      `if [ -d '/opt/my app' ] && [ "$(stat -c %a '/opt/my app')" = 755 ]; then echo unchanged; else mkdir -p '/opt/my app' && chmod 0755 '/opt/my app' && echo changed; fi`,
    );
    expect(mkdirCommand('/srv/x', 0o750, { owner: 'app', group: 'www' })).toBe(
      `if [ -d /srv/x ] && [ "$(stat -c %a /srv/x)" = 750 ] && [ "$(stat -c %U:%G /srv/x)" = app:www ]; then echo unchanged; else mkdir -p /srv/x && chmod 0750 /srv/x && chown app:www /srv/x && echo changed; fi`,
    );
  });

  it('temp path lives beside the destination', () => {
    expect(tempPathFor('/opt/app/bin', 'R1', 2)).toBe('/opt/app/.bin.hades-tmp-R1-2');
  });

  it('sha256 on the host: openssl when present, else sha256sum', () => {
    expect(sha256Of("'/opt/a b'")).toBe(`{ openssl dgst -sha256 -r '/opt/a b' 2>/dev/null || sha256sum '/opt/a b'; } | cut -d ' ' -f 1`);
  });

  it('file delivery: one command that checks, answers, then (only on "send") reads the bytes', () => {
    const sha = 'a'.repeat(64);
    const h = (f: string) => sha256Of(f);
    expect(fileDeliverCommand('/opt/a b', "/opt/.a b.tmp", sha, 0o644, {})).toBe(
      `if [ ! -d /opt ]; then echo 'parent directory /opt does not exist' >&2; exit 3; fi; ` +
        `if [ -d '/opt/a b' ]; then echo '/opt/a b is a directory' >&2; exit 3; fi; ` +
        `if [ -f '/opt/a b' ] && [ ! -L '/opt/a b' ] && [ "$(${h("'/opt/a b'")})" = ${sha} ]; then ` +
        `if [ "$(stat -c %a '/opt/a b')" = 644 ]; then echo unchanged; else chmod 0644 '/opt/a b' && echo meta; fi; exit; fi; ` +
        `echo send; trap 'rm -f '\\''/opt/.a b.tmp'\\''' EXIT; trap 'exit 1' HUP INT TERM PIPE; umask 077; ` +
        `cat > '/opt/.a b.tmp' && sync '/opt/.a b.tmp' && s=$(${h("'/opt/.a b.tmp'")}) && ` +
        `if [ "$s" != ${sha} ]; then echo "checksum mismatch on host: expected ${sha}, got $s" >&2; exit 4; fi && ` +
        `chmod 0644 '/opt/.a b.tmp' && mv -f '/opt/.a b.tmp' '/opt/a b' && trap - EXIT && echo changed`,
    );
    // ownership: tested before "unchanged", fixed in place for "meta", applied to the temp file before the rename
    const owned = fileDeliverCommand('/opt/x', '/opt/.x.tmp', sha, 0o600, { owner: 'app', group: 'www' });
    expect(owned).toContain(`if [ "$(stat -c %a /opt/x)" = 600 ] && [ "$(stat -c %U:%G /opt/x)" = app:www ]; then echo unchanged; else chmod 0600 /opt/x && chown app:www /opt/x && echo meta; fi; exit; fi; `);
    expect(owned).toContain(`chmod 0600 /opt/.x.tmp && chown app:www /opt/.x.tmp && mv -f /opt/.x.tmp /opt/x && trap - EXIT && echo changed`);
    expect(fileDeliverCommand('/opt/x', '/opt/.x.tmp', sha, 0o600, {}, 'root')).toBe(becomeWrap(fileDeliverCommand('/opt/x', '/opt/.x.tmp', sha, 0o600, {}), 'root'));
  });

  it('directory delivery: check, write, and both in one command', () => {
    const sha = 'b'.repeat(64);
    const opts = { gzip: true, stripComponents: 1 };
    expect(dirCheckCommand('/srv/site', 'sha256:m')).toBe(
      `if [ ! -d /srv ]; then echo 'parent directory /srv does not exist' >&2; exit 3; fi; if [ -d /srv/site ] && [ "$(cat /srv/site/.hades-artifact 2>/dev/null)" = sha256:m ]; then echo unchanged; else echo changed; fi`,
    );
    const write = dirWriteCommand('/srv/site', '/srv/.site.tmp', sha, 'sha256:m', opts);
    expect(write).toBe(
      `trap 'rm -rf /srv/.site.tmp /srv/.site.tmp.tar' EXIT; trap 'exit 1' HUP INT TERM PIPE; umask 022; ` +
        `cat > /srv/.site.tmp.tar && s=$(${sha256Of('/srv/.site.tmp.tar')}) && ` +
        `if [ "$s" != ${sha} ]; then echo "checksum mismatch on host: expected ${sha}, got $s" >&2; exit 4; fi && ` +
        `mkdir /srv/.site.tmp && tar -xzf /srv/.site.tmp.tar -C /srv/.site.tmp --no-same-owner --strip-components=1 && rm -f /srv/.site.tmp.tar && ` +
        `printf '%s\\n' sha256:m > /srv/.site.tmp/.hades-artifact && ` +
        `if [ -e /srv/site ]; then mv /srv/site /srv/.site.tmp.old && mv /srv/.site.tmp /srv/site && rm -rf /srv/.site.tmp.old; else mv /srv/.site.tmp /srv/site; fi && trap - EXIT`,
    );
    expect(dirDeliverCommand('/srv/site', '/srv/.site.tmp', sha, 'sha256:m', opts)).toBe(
      `if [ ! -d /srv ]; then echo 'parent directory /srv does not exist' >&2; exit 3; fi; if [ -d /srv/site ] && [ "$(cat /srv/site/.hades-artifact 2>/dev/null)" = sha256:m ]; then echo unchanged; exit; fi; echo send; ${write} && echo changed`,
    );
    expect(dirDeliverCommand('/srv/site', '/srv/.site.tmp', sha, 'sha256:m', opts, 'app')).toBe(becomeWrap(dirDeliverCommand('/srv/site', '/srv/.site.tmp', sha, 'sha256:m', opts), 'app'));
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
    const cmd = (digest: string, s = sha) => dirDeliverCommand(to, join(work, 'srv/.site.tmp'), s, digest, { gzip: true, stripComponents: 1 });
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
    const cmd = fileDeliverCommand(dst, join(dir, '.app.bin.tmp'), sha(content), mode, {});
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
    expect(existsSync(join(dir, 'app.bin')) && !readdirSync(dir).includes('.app.bin.tmp')).toBe(true);
  });

  it('missing parent directory, or a directory at dst: exit 3 with a clear message, nothing read', () => {
    const dir = fresh();
    const cmd = fileDeliverCommand(join(dir, 'nope/app.bin'), join(dir, 'nope/.t'), sha('x'), 0o644, {});
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
      for (const tool of ['sha256sum', 'cut']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
      if (fake) writeFileSync(join(bin, 'openssl'), fake, { mode: 0o755 });
      expect(execFileSync('/bin/sh', ['-c', sha256Of(quote(join(dir, 'f')))], { encoding: 'utf8', env: { PATH: bin } })).toBe(want);
    }
    expect(execFileSync('/bin/sh', ['-c', sha256Of(quote(join(dir, 'f')))], { encoding: 'utf8' })).toBe(want);
  });
});
