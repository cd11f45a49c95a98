/**
 * The SSH wire form of a command (wireCommand): exact strings, and what real login shells
 * make of it. sshd runs the exec string as `$SHELL -c STRING`, so each shell below is
 * spawned exactly that way; the result must be what `/bin/sh -c COMMAND` gives.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quote, wireCommand } from '../../src/shell/command.js';

/** Every common login shell; all must be installed (.ci/install): a missing one fails, it is not skipped. */
const SHELLS = ['/bin/sh', '/bin/dash', '/bin/bash', '/usr/bin/zsh', '/usr/bin/fish', '/usr/bin/tcsh', '/bin/csh'];

function viaLogin(shell: string, command: string, input = '') {
  const r = spawnSync(shell, ['-c', wireCommand(command)], { input, env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() };
}

function direct(command: string, input = '') {
  const r = spawnSync('/bin/sh', ['-c', command], { input, env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Deterministic PRNG (mulberry32): a failure names its seed and is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random string weighted towards what shells treat specially, plus any other code point. */
function randomValue(r: () => number): string {
  const special = [
    "'",
    '\\',
    '!',
    '"',
    '$',
    '`',
    '\n',
    '\r',
    '\t',
    '%',
    '{',
    '}',
    '~',
    '*',
    '#',
    ' ',
    '&',
    ';',
    '|',
    '^',
    '(',
    ')',
    '[',
    ']',
    '<',
    '>',
    '?',
    '=',
    '-',
    '0',
    '\\0',
    "\\'",
    '\\\\',
    '!!',
    '$(',
    '${',
    'é',
    '€',
    '😀',
  ];
  let s = '';
  const n = Math.floor(r() * 24);
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.6) s += special[Math.floor(r() * special.length)];
    else if (k < 0.8) s += String.fromCharCode(1 + Math.floor(r() * 127));
    else {
      let cp = 0x80 + Math.floor(r() * (0x10ffff - 0x80));
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe000; // no lone surrogates: not a UTF-8 string
      s += String.fromCodePoint(cp);
    }
  }
  return s;
}

describe('wireCommand', () => {
  it.each([
    ['true', `exec /bin/sh -c 'set -- "$(printf %b "true_")"; exec /bin/sh -c "\${1%_}"'`],
    ['', `exec /bin/sh -c 'set -- "$(printf %b "_")"; exec /bin/sh -c "\${1%_}"'`],
    [
      `echo 'a b' "$HOME" \\ !x \`id\`\n`,
      `exec /bin/sh -c 'set -- "$(printf %b "echo \\0047a b\\0047 \\0042\\0044HOME\\0042 \\0134 \\0041x \\0140id\\0140\\0012_")"; exec /bin/sh -c "\${1%_}"'`,
    ],
    ['%s {a,b} ~ *#;&|<>()[]^=?-', `exec /bin/sh -c 'set -- "$(printf %b "%s {a,b} ~ *#;&|<>()[]^=?-_")"; exec /bin/sh -c "\${1%_}"'`],
    ['\t\r\x7f', `exec /bin/sh -c 'set -- "$(printf %b "\\0011\\0015\\0177_")"; exec /bin/sh -c "\${1%_}"'`],
    ['é€', `exec /bin/sh -c 'set -- "$(printf %b "\\0303\\0251\\0342\\0202\\0254_")"; exec /bin/sh -c "\${1%_}"'`],
  ])('%j → %s', (command, want) => {
    expect(wireCommand(command)).toBe(want);
  });

  it("holds no ', !, newline, and no backslash except before 0, whatever the command", () => {
    const r = rng(11);
    for (let i = 0; i < 500; i++) {
      const w = wireCommand(randomValue(r));
      const word = w.slice(w.indexOf("'") + 1, w.lastIndexOf("'"));
      expect(w.startsWith("exec /bin/sh -c '") && w.endsWith("'")).toBe(true);
      expect(word).not.toMatch(/['!\n]|\\[^0]/);
      expect(w).toMatch(/^[\x20-\x7e]*$/);
    }
  });

  it('refuses NUL', () => {
    expect(() => wireCommand('a\0b')).toThrow(/NUL/);
  });
});

describe.each(SHELLS)('the wire form through %s -c', (shell) => {
  it('the shell is installed', () => {
    expect(existsSync(shell), `${shell} missing: run .ci/install`).toBe(true);
  });

  it('random byte strings survive the round trip (quoted into printf, as the generated commands do)', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const r = rng(seed);
      const values = Array.from({ length: 25 }, () => randomValue(r));
      const command = `printf '%s\\0' ${values.map(quote).join(' ')}`;
      const got = viaLogin(shell, command);
      expect(got.stderr, `seed ${seed}`).toBe('');
      expect(got.status, `seed ${seed}`).toBe(0);
      expect(got.stdout.toString('utf8').split('\0').slice(0, -1), `seed ${seed}`).toEqual(values);
    }
  });

  it.each([
    ['exit status', 'exit 42'],
    ['a script ending in a backslash-newline (trailing newlines kept)', 'echo a \\\n'],
    ['a heredoc ended by the end of the script', 'cat <<EOF\nx\n\n'],
    ['$0, $# and $@ as sh -c sets them', 'echo "$0|$#|$@"'],
    ['stdin passes through', 'cat; echo; wc -c'],
    ['stderr and a failing command', 'echo out; echo err >&2; false'],
    ['history, quotes and backslashes in the script', `x='it'\\''s !! \\\\ \\' "$"'; printf '%s\\n' "$x" 'a\\b' "c!d" "e\nf"`],
    ['a syntax error', 'if then'],
  ])('%s: same as /bin/sh -c', (_what, command) => {
    const input = 'line one\nline two';
    const want = direct(command, input);
    const got = viaLogin(shell, command, input);
    expect({ ...got, stderr: got.stderr.replace(/^\/bin\/sh: \d+: /gm, 'sh: ') }).toEqual({
      ...want,
      stderr: want.stderr.replace(/^\/bin\/sh: \d+: /gm, 'sh: '),
    });
  });

  it('a TERM sent to the process sshd started reaches the command (the pid is kept)', async () => {
    const child = spawn(shell, ['-c', wireCommand(`trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' },
    });
    let out = '';
    const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    await new Promise<void>((res) =>
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready\n')) res();
      }),
    );
    child.kill('SIGTERM');
    expect(await closed).toBe(7);
    expect(out).toBe('ready\ngot TERM\n');
  });
});
