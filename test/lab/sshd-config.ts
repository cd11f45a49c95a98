/** The sshd_config of a lab host (and of startSshd's extra sshds), and where its files live. */
import * as path from 'node:path';

export interface SshdPaths {
  listen: string;
  hostKey: string;
  pidFile: string;
  authorizedKeysDir: string;
  logLevel: string;
  extra?: string[];
}

export function sshdConfig(p: SshdPaths): string {
  return [
    // Extra lines first: for most keywords sshd keeps the first value it reads.
    ...(p.extra ?? []),
    `ListenAddress ${p.listen}:22`,
    `HostKey ${p.hostKey}`,
    `PidFile ${p.pidFile}`,
    `AuthorizedKeysFile ${p.authorizedKeysDir}/%u`,
    'StrictModes no', // the keys live under /tmp (world-writable parent)
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    'MaxSessions 64',
    'MaxStartups 200:30:400',
    'MaxAuthTries 10',
    'AllowTcpForwarding yes',
    'UseDNS no',
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
    `LogLevel ${p.logLevel}`,
    '',
  ].join('\n');
}

export function labPaths(dir: string, name: string, listen: string, logLevel: string, extra?: string[]): SshdPaths {
  return {
    listen,
    hostKey: path.join(dir, name, 'ssh_host_ed25519_key'),
    pidFile: path.join(dir, name, 'sshd.pid'),
    authorizedKeysDir: path.join(dir, 'authorized_keys'),
    logLevel,
    ...(extra ? { extra } : {}),
  };
}
