/** The HADES_* variables every command gets (pure: the planner uses it). */
export function builtinEnv(b: {
  plan: string;
  runId: string;
  step: string;
  target: string;
  hostName: string;
  hostAddr: string;
}): Record<string, string> {
  return {
    HADES_PLAN: b.plan,
    HADES_RUN_ID: b.runId,
    HADES_STEP: b.step,
    HADES_TARGET: b.target,
    HADES_HOST_NAME: b.hostName,
    HADES_HOST_ADDR: b.hostAddr,
  };
}
