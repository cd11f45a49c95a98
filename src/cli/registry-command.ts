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
      .description('what name:tag resolves to (a multi-platform artifact: its platforms; annotations and config)')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .option('--platform <os/arch>', 'the entry of a multi-platform artifact for this platform')
      .action(lazy('inspect')),
  );

  cmd.addCommand(
    sub(new Command('push'))
      .description('publish a file or directory as name:tag (immutable: same content → unchanged, other content → refused)')
      .argument('<registry>')
      .argument('<path>', 'file or directory (left out with --platform)')
      .argument('[ref]', 'NAME:TAG')
      .option('--tag <tag>', 'extra tag (repeatable)', (v: string, p: string[]) => [...p, v], [])
      .option('--semver-aliases', 'also move vX.Y, vX and latest', false)
      .option('--artifact-type <type>', 'artifact media type')
      .option(
        '--platform <os/arch=path>',
        'one payload per platform, pushed as an OCI image index (repeatable; instead of <path>)',
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .option(
        '--annotation <key=value>',
        'manifest annotation (repeatable; created and title are set by Hades)',
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .option('--config <file>', 'a JSON file stored as the manifest config blob')
      .option('--config-media-type <type>', 'media type of --config (default application/vnd.hades.config.v1+json)')
      .action(lazy('push')),
  );

  cmd.addCommand(
    sub(new Command('pull'))
      .description('fetch name:tag to a local path, digest verified (directories are extracted, entries checked first)')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .option('-o, --out <path>', 'where to write the file (or extract the directory)')
      .addOption(new Option('--to <path>').hideHelp())
      .option(
        '--platform <os/arch>',
        "a multi-platform artifact's platform (default this machine's); repeatable: each to <out>/<os>/<arch>[/<variant>]/<file>",
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .option('--all-platforms', 'every platform of a multi-platform artifact, to <out>/<os>/<arch>[/<variant>]/<file>', false)
      .option('--config-only', 'write only the config blob (verified) to -o', false)
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
  return cmd;
}
