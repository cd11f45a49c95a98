/**
 * OCI platform names (`os/architecture[/variant]`, e.g. linux/amd64, linux/arm/v7): the syntax
 * hadesfiles and the CLI accept. Pure; registry/platform.ts builds on it (uname mapping, choice).
 */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const PART = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** "linux/arm64" → Platform, or the reason it is not a platform. */
export function parsePlatform(text: string): Platform | string {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !PART.test(p)))
    return `${JSON.stringify(text)} is not a platform: write os/arch or os/arch/variant in lower case (e.g. linux/amd64, linux/arm/v7)`;
  const [os, architecture, variant] = parts as [string, string, string?];
  return { os, architecture, ...(variant !== undefined ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
