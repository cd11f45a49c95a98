/**
 * `hades registry ls|inspect|push|pull|promote|sign|verify` — the registries a hadesfile declares,
 * from the command line. `--output json` prints one JSON document per command. The
 * handlers (registry-handlers.ts) load only when a registry command runs.
 */
import { Command, Option } from 'commander';

export function registryCommand(common: (c: Command) => Command, done: (code: number) => void): Command {
  const lazy =
    (name: 'ls' | 'inspect' | 'push' | 'pull' | 'promote') =>
    async (...args: unknown[]) => {
      const { handlers } = await import('./registry-handlers.js');
      done(await (handlers[name] as (...a: unknown[]) => Promise<number>)(...args));
    };
  const cmd = new Command('registry').description(
    'list, inspect, push, pull, promote, sign and verify artifacts in the declared registries',
  );
  // `--output` is long-only here: `pull -o PATH` is the destination.
  const sub = (c: Command) =>
    common(c).addOption(new Option('--output <mode>', 'plain or json').choices(['plain', 'json']).default('plain'));

  cmd.addCommand(
    sub(new Command('ls'))
      .description('artifact names, or the tags of one name (digest, size, created)')
      .argument('<registry>')
      .argument('[name]')
      .action(lazy('ls')),
  );

  cmd.addCommand(
    sub(new Command('inspect'))
      .description('what name:tag resolves to')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .action(lazy('inspect')),
  );

  cmd.addCommand(
    sub(new Command('push'))
      .description('publish a file or directory as name:tag (immutable: same content → unchanged, other content → refused)')
      .argument('<registry>')
      .argument('<path>', 'file or directory')
      .argument('<ref>', 'NAME:TAG')
      .option('--tag <tag>', 'extra tag (repeatable)', (v: string, p: string[]) => [...p, v], [])
      .option('--semver-aliases', 'also move vX.Y, vX and latest', false)
      .option('--artifact-type <type>', 'artifact media type')
      .action(lazy('push')),
  );

  cmd.addCommand(
    sub(new Command('pull'))
      .description('fetch name:tag to a local path, digest verified (directories are extracted, entries checked first)')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .option('-o, --out <path>', 'where to write the file (or extract the directory)')
      .addOption(new Option('--to <path>').hideHelp())
      .option('--offline', 'contact no registry: read NAME@sha256:… from the local artifact cache only (verified)', false)
      .option('--cache-dir <dir>', 'with --offline: the local artifact cache (default ~/.cache/hades)')
      .action(lazy('pull')),
  );

  cmd.addCommand(
    sub(new Command('promote'))
      .description('copy name:tag from one registry to another by digest (same digest at the destination)')
      .argument('<from>')
      .argument('<to>')
      .argument('<ref>', 'NAME:TAG')
      .option('--as <tag>', 'tag at the destination (default: the same)')
      .action(lazy('promote')),
  );
  const trust =
    (name: 'signCommand' | 'verifyCommand') =>
    async (...args: unknown[]) => {
      const m = await import('./registry-trust.js');
      done(await (m[name] as (...a: unknown[]) => Promise<number>)(...args));
    };
  cmd.addCommand(
    sub(new Command('sign'))
      .description('sign name:tag with an SSH key (ssh-keygen -Y sign, namespace hades-artifact), stored as an OCI referrer')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .option('--key <path>', "private key, or a .pub key whose private half is in ssh-agent (default: the registry's sign_with)")
      .option('--passphrase-env <name>', "the environment variable holding the key's passphrase")
      .action(trust('signCommand')),
  );
  cmd.addCommand(
    sub(new Command('verify'))
      .description('check that name:tag has a valid signature of a principal in allowed_signers (exit 0), else exit 1')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .option('--allowed-signers <file>', "OpenSSH allowed_signers file (default: the registry's verify.allowed_signers)")
      .action(trust('verifyCommand')),
  );
  cmd.addHelpText(
    'after',
    `
OCI credentials: username + password_env, registry_config (a docker config; its credHelpers /
credsStore helpers work), else HADES_REGISTRY_AUTH='{"host[:port]": {"username": "…", "password": "…"}}'
(several registries from one CI variable), else oras's defaults ($DOCKER_CONFIG, ~/.docker).
OCI mirrors (mirrors: [host[:port][/prefix], …]): reads by digest try each mirror, then the origin
(a failing mirror is a warning on stderr); tags are always resolved at the origin.`,
  );
  return cmd;
}
