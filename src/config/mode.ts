/** File modes, decided from the YAML source token (YAML 1.2 reads 0644 as decimal 644). */

export type ModeResult = { mode: number } | { error: string; hint: string };

/**
 * Parse a mode from its source token text: `0644`, `"0644"`, `'0644'`, `0o644`, `"0o644"` → 0o644.
 * A bare `644` is ambiguous (decimal or octal?) and is refused; so is anything above 07777.
 */
export function parseModeToken(raw: string): ModeResult {
  let t = raw.trim();
  if (t.length >= 2 && ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")))) t = t.slice(1, -1).trim();
  const octalForm = /^0o([0-7]+)$/.exec(t) ?? /^0([0-7]*)$/.exec(t);
  if (octalForm) {
    const mode = octalForm[1] === '' ? 0 : parseInt(octalForm[1]!, 8);
    if (mode > 0o7777) return { error: `mode ${t} is out of range`, hint: 'modes go up to 07777 (setuid, setgid, sticky and rwx bits)' };
    return { mode };
  }
  if (/^[1-9][0-7]*$/.test(t) && !/[89]/.test(t)) {
    return { error: `ambiguous mode ${t}; write 0${t}`, hint: `modes are octal: write 0${t} (or "0${t}", 0o${t})` };
  }
  if (/^0o?[0-9]+$/.test(t) || /^[1-9][0-9]*$/.test(t)) {
    return { error: `invalid mode ${t}: 8 and 9 are not octal digits`, hint: 'write an octal mode such as 0644 or 0o755' };
  }
  return { error: `invalid mode ${JSON.stringify(t)}`, hint: 'write an octal mode such as 0644 or 0o755' };
}
