/**
 * OCI platforms (`os/architecture[/variant]`, e.g. linux/amd64, linux/arm/v7) for
 * multi-platform artifacts: the syntax (config/platform-name.ts), the mapping of a host's
 * `uname -s` / `uname -m` to OCI names, and the choice of an index entry. Pure.
 */
import type { Descriptor } from './layout.js';
import { formatPlatform, PART, parsePlatform, type Platform } from '../config/platform-name.js';

export { formatPlatform, parsePlatform, type Platform };

/** The OCI name of `uname -m` (the Go/OCI names oras and container runtimes use). */
const MACHINES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  amd64: { architecture: 'amd64' },
  i386: { architecture: '386' },
  i486: { architecture: '386' },
  i586: { architecture: '386' },
  i686: { architecture: '386' },
  aarch64: { architecture: 'arm64' },
  arm64: { architecture: 'arm64' },
  armv5l: { architecture: 'arm', variant: 'v5' },
  armv6l: { architecture: 'arm', variant: 'v6' },
  armv7l: { architecture: 'arm', variant: 'v7' },
  armv8l: { architecture: 'arm', variant: 'v8' },
  ppc64le: { architecture: 'ppc64le' },
  ppc64: { architecture: 'ppc64' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  mips64: { architecture: 'mips64' },
  loongarch64: { architecture: 'loong64' },
};

/**
 * The two lines `uname -s; uname -m` printed → the host's platform, or the reason it can't be
 * mapped (an unknown kernel or machine is never guessed).
 */
export function platformFromUname(output: string): Platform | string {
  const [s, m] = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (s === undefined || m === undefined) return `uname printed ${JSON.stringify(output.slice(0, 80))}, not the kernel and machine names`;
  const os = s.toLowerCase();
  if (!PART.test(os)) return `uname -s printed ${JSON.stringify(s)}, not a kernel name`;
  const arch = MACHINES[m];
  if (!arch) return `uname -m printed ${JSON.stringify(m)}, which Hades does not map to an OCI architecture; name it with platform:`;
  return { os, ...arch };
}

/** An index entry with a platform. */
export interface PlatformEntry {
  platform: string;
  descriptor: Descriptor;
}

/** The entries of an image index that carry a platform, in index order. */
export function platformEntries(manifests: Descriptor[]): PlatformEntry[] {
  const out: PlatformEntry[] = [];
  for (const d of manifests) {
    const p = d.platform as Partial<Platform> | undefined;
    if (!p || typeof p.os !== 'string' || typeof p.architecture !== 'string') continue;
    out.push({
      platform: formatPlatform({
        os: p.os,
        architecture: p.architecture,
        ...(typeof p.variant === 'string' ? { variant: p.variant } : {}),
      }),
      descriptor: d,
    });
  }
  return out;
}

/**
 * The entry for `wanted`: an exact match; else, when `wanted` has no variant, the only entry
 * of that os/arch (linux/arm picks linux/arm/v7 if that is the one arm entry). Never a guess
 * between several.
 */
export function choosePlatform(entries: PlatformEntry[], wanted: string): PlatformEntry | undefined {
  const exact = entries.find((e) => e.platform === wanted);
  if (exact) return exact;
  if (wanted.split('/').length === 2) {
    const same = entries.filter((e) => e.platform.startsWith(`${wanted}/`));
    if (same.length === 1) return same[0];
  }
  return undefined;
}
