/**
 * vitest global setup: starts one real-sshd lab for the whole suite and hands its
 * description to tests (`inject('lab')`, helpers in ./helpers.ts).
 *
 * Missing prerequisites (not root, no sshd/unshare/...) FAIL the suite. The only way to
 * run without the lab is an explicit HADES_SKIP_LAB=1 (then lab = null and lab tests are
 * skipped, saying why) — and that is refused when CI=true.
 */
import type { TestProject } from 'vitest/node';
import { type LabInfo, labPrerequisites, startLab } from './lab.js';

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabInfo | null;
    labSkipReason: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  const ci = process.env.CI === 'true';
  if (process.env.HADES_SKIP_LAB === '1') {
    if (ci) throw new Error('HADES_SKIP_LAB=1 is not allowed when CI=true: the lab tests must run in CI');
    project.provide('lab', null);
    project.provide('labSkipReason', 'HADES_SKIP_LAB=1 is set');
    return;
  }
  const missing = labPrerequisites();
  if (missing.length) {
    throw new Error(
      `the real-sshd test lab cannot start: missing ${missing.join(', ')}.\n` +
        `Run .ci/install as root, or set HADES_SKIP_LAB=1 to skip the lab tests explicitly (not allowed in CI).`,
    );
  }
  // h1..h6 are for the action/rollout tests (they count logins on them); the transport
  // tests use h7 and h8, the failure-budget/batch tests h9..h14 (BUDGET_HOSTS), so that
  // parallel test files don't disturb each other's counts; the host-lock tests h15..h17 (LOCK_HOSTS).
  const hosts = Number(process.env.HADES_LAB_HOSTS ?? 17);
  const lab = await startLab({ hosts: Math.max(17, hosts) });
  const i = lab.info;
  console.log(
    `[lab] ${i.hosts.length} sshd hosts at ${i.base}.1-${i.hosts.length} + jump ${i.jumpHost?.addr} + hidden, up in ${i.startMs} ms (${i.dir})`,
  );
  project.provide('lab', lab.info);
  project.provide('labSkipReason', '');
  return async () => {
    await lab.stop();
  };
}
