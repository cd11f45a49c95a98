/**
 * The credentials a connection offers: identity files (the endpoint's, or the default
 * ~/.ssh keys) parsed with their passphrase from the environment, and the agent.
 * Reads files and the environment only: no connection, so it is unit-tested without sshd.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ParsedKey } from 'ssh2';
import { DEFAULT_IDENTITIES, type SshEndpoint, endpointError, whereOf } from './endpoint.js';

const { utils } = ssh2;

export interface Credential {
  label: string;
  method: (user: string) => AnyAuthMethod;
}

export interface Credentials {
  /** What to offer, in order. */
  list: Credential[];
  /** Identity files skipped, and why (quoted when authentication fails). */
  notes: string[];
}

export type CredentialEndpoint = Pick<
  SshEndpoint,
  'name' | 'addr' | 'port' | 'identityFiles' | 'identitySource' | 'passphraseEnv' | 'identitiesOnly'
>;

function tildify(p: string): string {
  const home = os.homedir();
  return home && p.startsWith(home + path.sep) ? `~${p.slice(home.length)}` : p;
}

/**
 * Keys and agent to offer, in order; throws on a broken explicit identity. `env` supplies
 * HOME (default keys), the passphrase_env variable and SSH_AUTH_SOCK.
 */
export function loadCredentials(ep: CredentialEndpoint, env: NodeJS.ProcessEnv): Credentials {
  const err = (message: string, cause?: unknown) => endpointError(ep, message, cause);
  const list: Credential[] = [];
  const notes: string[] = [];
  const explicit = ep.identitySource === 'host';
  const files =
    ep.identityFiles.length > 0
      ? ep.identityFiles
      : DEFAULT_IDENTITIES.map((n) => path.join(env.HOME || os.homedir(), '.ssh', n)).filter((f) => fs.existsSync(f));
  const source = ep.identityFiles.length > 0 ? ep.identitySource : 'default';
  const keys: Credential[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (e) {
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message;
      if (explicit) throw err(`identity_file ${file} ${msg}`, e);
      notes.push(`${tildify(file)} ${msg}`);
      continue;
    }
    let parsed = utils.parseKey(data);
    if (parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message)) {
      const envName = ep.passphraseEnv;
      const pass = envName !== undefined && source !== 'default' ? env[envName] : undefined;
      if (pass === undefined) {
        if (source === 'default') {
          notes.push(`${tildify(file)} skipped: encrypted (use identity_file with passphrase_env, or an agent)`);
          continue;
        }
        throw err(
          envName
            ? `identity_file ${file} is encrypted and the environment variable ${envName} (passphrase_env) is not set`
            : `identity_file ${file} is encrypted; set passphrase_env to the name of an environment variable holding its passphrase, or load it into ssh-agent`,
        );
      }
      parsed = utils.parseKey(data, pass);
      if (parsed instanceof Error) {
        throw err(`cannot decrypt identity_file ${file} with the passphrase from ${envName}: ${parsed.message}`, parsed);
      }
    }
    if (parsed instanceof Error) {
      if (source !== 'default' && explicit) throw err(`cannot read identity_file ${file}: ${parsed.message}`, parsed);
      notes.push(`${tildify(file)} skipped: ${parsed.message}`);
      continue;
    }
    const key: ParsedKey = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    if (!key.isPrivateKey()) {
      if (explicit) throw err(`identity_file ${file} is not a private key`);
      notes.push(`${tildify(file)} skipped: not a private key`);
      continue;
    }
    keys.push({ label: `publickey (key ${tildify(file)})`, method: (username) => ({ type: 'publickey', username, key }) });
  }
  const agentSock = env.SSH_AUTH_SOCK;
  const agent: Credential | undefined =
    agentSock && !ep.identitiesOnly
      ? { label: 'agent (SSH_AUTH_SOCK)', method: (username) => ({ type: 'agent', username, agent: agentSock }) }
      : undefined;
  // Explicit identities first (the operator asked for them); with defaults, the agent first, like OpenSSH.
  if (source === 'default') {
    if (agent) list.push(agent);
    list.push(...keys);
  } else {
    list.push(...keys);
    if (agent) list.push(agent);
  }
  if (list.length === 0) {
    throw err(
      `no credentials to offer to ${whereOf(ep)}: ` +
        (source === 'default'
          ? `no identity_file, SSH_AUTH_SOCK is not set, and none of ${DEFAULT_IDENTITIES.map((n) => `~/.ssh/${n}`).join(', ')} is usable`
          : `none of the identity files is usable`) +
        (notes.length ? ` (${notes.join('; ')})` : ''),
    );
  }
  return { list, notes };
}
