/** Node system errors, the same test for every registry module. */

/** Whether `e` is a system error whose `code` is one of `codes` (ENOENT, EEXIST, …). */
export function isCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}
