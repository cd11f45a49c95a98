/** Mode text forms accepted in hadesfiles: 0644, 0o644 (and quoted). A bare 644 is ambiguous. */
export function parseModeText(raw: string): { mode: number } | { error: string; hint: string } {
  const t = raw.trim();
  let m = /^0o([0-7]{1,4})$/i.exec(t) ?? /^0([0-7]{1,4})$/.exec(t);
  if (m) {
    const mode = parseInt(m[1]!, 8);
    if (mode > 0o7777) return { error: `mode ${t} is out of range`, hint: 'modes go up to 07777' };
    return { mode };
  }
  m = /^[1-7][0-7]{2,3}$/.exec(t);
  if (m) return { error: `ambiguous mode ${t}; write 0${t}`, hint: `modes are octal: write 0${t} (or "0${t}", 0o${t})` };
  return { error: `invalid mode ${JSON.stringify(raw)}`, hint: 'write an octal mode such as 0644 or 0o755' };
}
