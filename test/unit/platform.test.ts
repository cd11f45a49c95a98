import { describe, expect, it } from 'vitest';
import { choosePlatform, parsePlatform, platformEntries, platformFromUname } from '../../src/registry/platform.js';
import { PLATFORM_PROBE, platformProbeCommand } from '../../src/shell/platform.js';

describe('platforms', () => {
  it('parses os/arch[/variant] and refuses anything else', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    for (const bad of ['amd64', 'linux/', 'Linux/amd64', 'linux/amd64/v1/x', 'linux amd64', ''])
      expect(typeof parsePlatform(bad), bad).toBe('string');
  });

  it('maps uname -s / uname -m to OCI names', () => {
    expect(platformFromUname('Linux\nx86_64\n')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(platformFromUname('Linux\naarch64\n')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(platformFromUname('Linux\narmv7l\n')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(platformFromUname('Darwin\narm64\n')).toEqual({ os: 'darwin', architecture: 'arm64' });
    expect(platformFromUname('FreeBSD\namd64\n')).toEqual({ os: 'freebsd', architecture: 'amd64' });
    expect(platformFromUname('Linux\ni686\n')).toEqual({ os: 'linux', architecture: '386' });
    expect(platformFromUname('Linux\nvax\n')).toMatch(/uname -m printed "vax", which Hades does not map/);
    expect(platformFromUname('Linux\n')).toMatch(/not the kernel and machine names/);
  });

  it('chooses an exact entry, or the only variant of os/arch; never guesses between several', () => {
    const d = (p: Record<string, string>) => ({ mediaType: 'm', digest: `sha256:${'0'.repeat(64)}`, size: 1, platform: p });
    const entries = platformEntries([d({ os: 'linux', architecture: 'amd64' }), d({ os: 'linux', architecture: 'arm', variant: 'v7' })]);
    expect(entries.map((e) => e.platform)).toEqual(['linux/amd64', 'linux/arm/v7']);
    expect(choosePlatform(entries, 'linux/arm')?.platform).toBe('linux/arm/v7');
    expect(choosePlatform(entries, 'linux/arm/v6')).toBeUndefined();
    const two = platformEntries([
      d({ os: 'linux', architecture: 'arm', variant: 'v6' }),
      d({ os: 'linux', architecture: 'arm', variant: 'v7' }),
    ]);
    expect(choosePlatform(two, 'linux/arm')).toBeUndefined();
  });

  it('the probe is one read-only uname pair, run like a run: command (env on stdin)', () => {
    expect(PLATFORM_PROBE).toBe('uname -s; uname -m');
    expect(platformProbeCommand()).toBe(`sh -c 'set -a; eval "$(cat)"; set +a; exec sh -c '\\''uname -s; uname -m'\\'''`);
  });
});
