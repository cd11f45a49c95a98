import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { becomeWrap, envScript, octal, quote, runWithEnv } from '../../src/transport/shell.js';
import { fileCheckCommand, fileMetaCommand, fileWriteCommand, mkdirCommand, tempPathFor } from '../../src/actions/commands.js';

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

  it('file check and write', () => {
    const sha = 'a'.repeat(64);
    expect(fileCheckCommand('/opt/a b', sha, 0o644, {})).toBe(
      `if [ ! -d /opt ]; then echo 'parent directory /opt does not exist' >&2; exit 3; fi; if [ -f '/opt/a b' ] && [ ! -L '/opt/a b' ] && [ "$(sha256sum '/opt/a b' | cut -d ' ' -f 1)" = ${sha} ]; then if [ "$(stat -c %a '/opt/a b')" = 644 ]; then echo unchanged; else echo meta; fi; else echo changed; fi`,
    );
    expect(fileMetaCommand('/opt/x', 0o755, { owner: 'app', group: 'app' })).toBe('chmod 0755 /opt/x && chown app:app /opt/x');
    expect(fileMetaCommand('/opt/x', 0o600, {}, 'root')).toBe(`sudo -n -- sh -c 'chmod 0600 /opt/x'`);
    expect(fileWriteCommand('/opt/x', '/opt/.x.tmp', sha, 0o600, { owner: 'root' })).toBe(
      `trap 'rm -f /opt/.x.tmp' EXIT; trap 'exit 1' HUP INT TERM PIPE; umask 077; cat > /opt/.x.tmp && sync /opt/.x.tmp && s=$(sha256sum /opt/.x.tmp | cut -d ' ' -f 1) && if [ "$s" != ${sha} ]; then echo "checksum mismatch on host: expected ${sha}, got $s" >&2; exit 4; fi && chmod 0600 /opt/.x.tmp && chown root /opt/.x.tmp && mv -f /opt/.x.tmp /opt/x && trap - EXIT`,
    );
  });
});
