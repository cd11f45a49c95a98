/**
 * `hades doctor` — what this machine (the orchestrator) has of the tools Hades runs locally:
 * Node.js, the oras CLI (for `type: oci` registries) and tar (extracting directory artifacts in
 * `hades registry pull`). Hosts are not contacted: they need a POSIX sh, tar and sha256sum.
 * Exit 0 when everything is usable, 1 otherwise. `--output json` prints one JSON document.
 */
import { execa } from 'execa';
import { findExecutable, MIN_ORAS_VERSION, orasVersion } from '../registry/oci/oras.js';
import { EXIT } from '../errors.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  version?: string;
  path?: string;
  /** What it is needed for. */
  purpose: string;
  /** Why it is not usable, and how to fix it. */
  problem?: string;
}

const MIN_NODE = '20.19.0';

function older(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}

async function checkNode(): Promise<DoctorCheck> {
  const version = process.versions.node;
  const ok = !older(version, MIN_NODE);
  return {
    name: 'node',
    ok,
    version,
    path: process.execPath,
    purpose: 'runs hades',
    ...(ok ? {} : { problem: `Node.js ${version} is older than the minimum ${MIN_NODE}` }),
  };
}

async function checkOras(bin: string): Promise<DoctorCheck> {
  const purpose = `type: oci registries (minimum ${MIN_ORAS_VERSION})`;
  const v = await orasVersion(bin);
  if ('error' in v)
    return {
      name: 'oras',
      ok: false,
      ...(v.version ? { version: v.version } : {}),
      ...(v.path ? { path: v.path } : {}),
      purpose,
      problem: v.error,
    };
  return { name: 'oras', ok: true, version: v.version, path: v.path, purpose };
}

async function checkTar(): Promise<DoctorCheck> {
  const purpose = 'extracting directory artifacts in `hades registry pull`';
  const path = await findExecutable('tar');
  if (!path) return { name: 'tar', ok: false, purpose, problem: 'tar was not found on PATH: install GNU tar (apt-get install tar)' };
  const r = await execa(path, ['--version'], {
    reject: false,
    timeout: 10_000,
    stdin: 'ignore',
    env: { PATH: process.env.PATH ?? '' },
    extendEnv: false,
  });
  const first = String(r.stdout ?? '').split('\n')[0] ?? '';
  const m = /(\d+\.\d+(?:\.\d+)?)/.exec(first);
  if (r.failed || !m)
    return {
      name: 'tar',
      ok: false,
      path,
      purpose,
      problem: `\`${path} --version\` failed: ${String(r.stderr ?? '')
        .trim()
        .slice(0, 200)}`,
    };
  return { name: 'tar', ok: true, version: `${m[1]}${/GNU/.test(first) ? ' (GNU)' : ''}`, path, purpose };
}

export async function runDoctor(env: Record<string, string | undefined> = process.env): Promise<DoctorCheck[]> {
  return Promise.all([checkNode(), checkOras(env.HADES_ORAS || 'oras'), checkTar()]);
}

export async function doctorCommand(opts: { output?: 'plain' | 'json' } = {}): Promise<number> {
  const checks = await runDoctor();
  const ok = checks.every((c) => c.ok);
  if (opts.output === 'json') {
    process.stdout.write(`${JSON.stringify({ ok, checks })}\n`);
  } else {
    const lines = checks.map((c) =>
      c.ok
        ? `ok      ${c.name} ${c.version} (${c.path}) — ${c.purpose}`
        : `missing ${c.name}${c.version ? ` ${c.version}` : ''}${c.path ? ` (${c.path})` : ''} — ${c.purpose}\n        ${c.problem}`,
    );
    lines.push('hosts are not contacted here; for pull/copy actions they need a POSIX sh, tar and sha256sum');
    if (checks.some((c) => c.name === 'oras' && !c.ok)) lines.push('(oras is needed only for type: oci registries)');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return ok ? EXIT.ok : EXIT.failed;
}
