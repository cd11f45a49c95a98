/**
 * `hades registry ls|inspect|push|pull|promote` — the registries a hadesfile declares,
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
  const cmd = new Command('registry').description('list, inspect, push, pull and promote artifacts in the declared registries');
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
