/**
 * The remote command line does not depend on the login shell. sshd runs the exec string as
 * `$SHELL -c STRING`; the lab users hades-fish and hades-tcsh log in with fish and tcsh,
 * which read POSIX quoting differently. Through the built CLI, the same plan on three real
 * hosts (bash, fish, tcsh logins) must leave exactly the same files and print exactly the
 * same output.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TransportPool } from '../../src/transport/pool.js';
import { describeLab, hostSpec } from '../lab/helpers.js';
import { type ExtraSshd, startSshd } from '../lab/lab.js';
import { jsonEvents, runCli } from '../helpers/cli.js';

/** An env value and file contents with everything a shell might reinterpret. */
const ODD = `it's a \\ back\\\\slash, a bang! !! !$, $HOME \${X} "dq" \`id\` %s \\' \\0
second line ~ * {a,b} # end`;

describeLab('commands under a non-POSIX login shell (real sshd, fish and tcsh users)', (lab) => {
  const users = { bash: lab.bashUser, fish: lab.fishUser, tcsh: lab.tcshUser };
  const sshds: Record<string, ExtraSshd> = {};
  let dir = '';
  let env: Record<string, string> = {};

  beforeAll(async () => {
    for (const name of Object.keys(users)) sshds[name] = await startSshd(lab, { name: `login-${name}` });
    dir = mkdtempSync(join(tmpdir(), 'hades-login-shell-'));
    mkdirSync(join(dir, 'home'));
    mkdirSync(join(dir, 'files'));
    writeFileSync(
      join(dir, 'files', 'blob.bin'),
      Buffer.concat([Buffer.from(`${ODD}\n`), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]),
    );
    writeFileSync(
      join(dir, 'known_hosts'),
      `${Object.values(sshds)
        .map((s) => s.knownHostsLine)
        .join('\n')}\n`,
    );
    // Each host's /srv is a private tmpfs: its login user owns it, as an app user would.
    for (const [name, user] of Object.entries(users)) onHost(name, `chown ${user} /srv`);
    env = { HOME: join(dir, 'home'), SSH_AUTH_SOCK: '' };
  });
  afterAll(async () => {
    await Promise.all(Object.values(sshds).map((s) => s.stop()));
  });

  function onHost(name: string, script: string): string {
    return execFileSync('nsenter', ['-t', String(sshds[name]!.host.pid), '-m', '--', 'sh', '-c', script], { encoding: 'utf8' });
  }

  it('run with quotes, backslashes, !, $ and newlines, env values with them, mkdir of a quoted path, copy and become: identical on bash, fish and tcsh logins', async () => {
    const hosts = Object.entries(users)
      .map(([name, user]) => `  ${name}: { addr: ${sshds[name]!.host.addr}, user: ${user}, identity_file: ${lab.clientKey} }`)
      .join('\n');
    writeFileSync(
      join(dir, 'hadesfile.yaml'),
      `hosts:
${hosts}
targets:
  all: [${Object.keys(users).join(', ')}]
known_hosts: [${join(dir, 'known_hosts')}]
jobs:
  deploy:
    env: { ODD:, DIR: }
    actions:
      - mkdir: { path: "\${DIR}", mode: 0750 }
      - copy: { src: files/blob.bin, dst: "\${DIR}/blob's copy.bin", mode: 0640 }
      - name: quoting
        run: |
          printf '%s|' 'single '\\''quoted'\\''' "back\\\\slash" 'a\\b' 'bang! !! !$' "dollar \\$HOME \${HOME+set}" "$ODD" > "$DIR/out"
          echo "line two!" >> "$DIR/out"
          printf '%s\\n' 'multi
          line' "$(printf '%s' "$ODD" | wc -c)" >> "$DIR/out"
          cat "$DIR/out"
      - name: stdin is empty, the user is the login user
        run: test "$(cat | wc -c)" = 0 && id -un
      - become: true
        name: become
        run: id -un > "$DIR/root-was" && printf '%s' "$ODD" >> "$DIR/root-was" && cat "$DIR/root-was"
plans:
  p:
    env:
      ODD: ${JSON.stringify(ODD.replace(/\$/g, '$$$$'))}
      DIR: "/srv/it's a dir"
    steps:
      - { name: all, job: deploy, targets: all }
`,
    );
    const r = await runCli(['plan', 'p', '--output', 'json'], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const ev = jsonEvents(r.stdout);
    const output = (host: string) =>
      ev
        .filter((e) => e.type === 'action.output' && e.host === host)
        .map((e) => `${e.stream ?? ''}:${e.data}`)
        .join('\n');
    const files = (name: string) =>
      onHost(
        name,
        `cd /srv && find . -printf '%p %M %s\\n' | LC_ALL=C sort && for f in "it's a dir"/*; do printf '%s ' "$f"; sha256sum < "$f"; done; cat "it's a dir/out" "it's a dir/root-was"`,
      );

    const runOut = `single 'quoted'|back\\slash|a\\b|bang! !! !$|dollar $HOME set|${ODD}|line two!\nmulti\nline\n${Buffer.byteLength(ODD)}\n`;
    const want = files('bash');
    expect(want).toContain(`./it's a dir drwxr-x---`);
    expect(want).toContain(`./it's a dir/blob's copy.bin -rw-r----- ${Buffer.byteLength(ODD) + 1 + 256}`);
    expect(want).toContain(`${runOut}root\n${ODD}`);
    expect(output('bash')).toBe(
      [...`${runOut}`.split('\n').slice(0, -1), lab.bashUser, 'root', ...ODD.split('\n')].map((l) => `stdout:${l}`).join('\n'),
    );
    for (const name of ['fish', 'tcsh']) {
      expect(files(name), name).toBe(want);
      expect(output(name).replaceAll(users[name as keyof typeof users], 'USER'), name).toBe(
        output('bash').replaceAll(lab.bashUser, 'USER'),
      );
    }
  });

  it('over the transport: exit status, $$, stdin bytes and an abort (SIGTERM over the channel) behave as under bash', async () => {
    const pool = new TransportPool({
      hosts: new Map(),
      knownHostsFiles: [join(dir, 'known_hosts')],
    });
    try {
      for (const [name, user] of Object.entries(users)) {
        const spec = hostSpec(lab, 'h7', { name: `login-${name}`, addr: sshds[name]!.host.addr, port: 22, user });
        const t = pool.get(spec);
        expect(await t.exec(`echo "$0" "$#"; echo err >&2; exit 3`), name).toEqual({ exitCode: 3, stdout: '/bin/sh 0\n', stderr: 'err\n' });
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        expect((await t.exec('od -An -tx1 -v | tr -d " \n"', { stdin: bytes })).stdout, name).toBe(bytes.toString('hex'));
        // sshd would cut the string at a NUL and run the rest: refused before anything is sent.
        await expect(t.exec('echo a\0; touch /tmp/never'), name).rejects.toThrow(/cannot run the command: command contains a NUL byte/);
        // The command's shell is the very process sshd started (it signals that pid).
        expect((await t.exec('kill -9 $$')).signal, name).toBe('SIGKILL');
        const ac = new AbortController();
        let out = '';
        const r = await t.exec(`trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`, {
          signal: ac.signal,
          onStdout: (c) => {
            out += c.toString();
            if (out.includes('ready')) ac.abort();
          },
        });
        expect({ exitCode: r.exitCode, stdout: r.stdout }, name).toEqual({ exitCode: 7, stdout: 'ready\ngot TERM\n' });
      }
    } finally {
      await pool.closeAll();
    }
  });
});
