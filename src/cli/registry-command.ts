/**
 * `hades registry ls|inspect|push|pull|promote|sign|verify|tag|exists|rm|gc` — the registries a
 * hadesfile declares, from the command line. `--output json` prints one JSON document per
 * command. The handlers (registry-handlers.ts; registry-lifecycle.ts for tag/exists/rm/gc;
 * registry-trust.ts for sign/verify) load only when a registry command runs.
 */
import { Command, Option } from 'commander';

export function registryCommand(common: (c: Command) => Command, done: (code: number) => void): Command {
  const lazy =
    (name: 'ls' | 'inspect' | 'push' | 'pull' | 'promote') =>
    async (...args: unknown[]) => {
      const { handlers } = await import('./registry-handlers.js');
      done(await (handlers[name] as (...a: unknown[]) => Promise<number>)(...args));
    };
  const life =
    (name: 'tag' | 'exists' | 'rm' | 'gc') =>
    async (...args: unknown[]) => {
      const { lifecycleHandlers } = await import('./registry-lifecycle.js');
      done(await (lifecycleHandlers[name] as (...a: unknown[]) => Promise<number>)(...args));
    };
  const cmd = new Command('registry').description(
    'list, inspect, push, pull, promote, sign, verify, tag, check, remove and garbage-collect artifacts in the declared registries',
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
        'manifest annotation (repeatable; created and title are set by Hades; a value holding a known secret is refused, exit 2)',
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .option('--config <file>', 'a JSON file stored as the manifest config blob (refused if it holds a known secret)')
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
      .option('--offline', 'contact no registry: read NAME@sha256:… from the local artifact cache only (verified)', false)
      .option('--cache-dir <dir>', 'with --offline: the local artifact cache (default ~/.cache/hades)')

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
  cmd.addCommand(
    sub(new Command('tag'))
      .description('add tags to the digest an existing tag points to (never moves a tag: same rule as push)')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG (or NAME@sha256:…)')
      .argument('<newtag...>', 'new immutable tags (not alias-shaped: vX, vX.Y, latest are moved only by --semver-aliases)')
      .action(life('tag')),
  );

  cmd.addCommand(
    sub(new Command('exists'))
      .description('exit 0 if the artifact is there, 1 if not, 2 on error; no output unless --output json')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG or NAME@sha256:…')
      .action(life('exists')),
  );

  cmd.addCommand(
    sub(new Command('rm'))
      .description('delete one tag (needs --force; recorded in an audit log). filesystem: only the tag goes, blobs stay until gc')
      .argument('<registry>')
      .argument('<ref>', 'NAME:TAG')
      .option('--force', 'really delete it', false)
      .option('--with-shared-tags', 'oci: also delete the other tags on the same manifest (a registry deletes manifests, not tags)', false)
      .option('--log-dir <dir>', 'where the audit log goes (default: .hades/runs beside the hadesfile)')
      .addHelpText(
        'after',
        `
An oci registry deletes manifests, not tags: removing a tag removes every tag on its
manifest, so rm refuses (naming them) unless --with-shared-tags. Registries may refuse
deletes (distribution / docker-registry: unless storage.delete.enabled: true): exit 1.`,
      )
      .action(life('rm')),
  );

  cmd.addCommand(
    sub(new Command('gc'))
      .description('filesystem: remove the blobs and manifests no tag reaches; prints what it removed and the bytes freed')
      .argument('<registry>')
      .option('--dry-run', 'only say what would be removed', false)
      .option('--grace <duration>', 'keep unreferenced blobs younger than this (default 1h; 0s for none)')
      .option('--log-dir <dir>', 'where the audit log goes (default: .hades/runs beside the hadesfile)')
      .addHelpText(
        'after',
        `
gc runs under each artifact's layout lock. Pushes register the blobs they write before
their tags are committed (.inflight/ in the layout), and gc never removes those, whatever
the grace period; the grace period also covers writers that don't register (oras, older
Hades). Removals are recorded in an audit log (not with --dry-run).`,
      )
      .action(life('gc')),
  );
  return cmd;
}
