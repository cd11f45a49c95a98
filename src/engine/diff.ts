/**
 * A small unified line diff (what `hades plan --check` shows for text files): the common
 * head and tail are trimmed, the middle is aligned by a longest-common-subsequence table
 * (bounded: past MAX_CELLS the middle is shown as replaced wholesale — still a correct
 * diff, just not a minimal one). Pure; no dependency.
 */

export type DiffOp = { op: ' ' | '-' | '+'; text: string; oldNo: number; newNo: number };

const MAX_CELLS = 4_000_000;

/** Splits text into lines the way `diff` does (a final newline ends the last line; no newline: noted). */
export function splitLines(text: string): { lines: string[]; noFinalNewline: boolean } {
  if (text === '') return { lines: [], noFinalNewline: false };
  const noFinalNewline = !text.endsWith('\n');
  const lines = (noFinalNewline ? text : text.slice(0, -1)).split('\n');
  return { lines, noFinalNewline };
}

/** Every line of both sides as kept (' '), removed ('-') or added ('+'), in order. */
export function diffLines(a: string[], b: string[]): DiffOp[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const ops: DiffOp[] = [];
  for (let i = 0; i < head; i++) ops.push({ op: ' ', text: a[i]!, oldNo: i + 1, newNo: i + 1 });
  const mid: Array<' ' | '-' | '+'> = [];
  const n = am.length;
  const m = bm.length;
  if (n * m > MAX_CELLS) {
    for (let i = 0; i < n; i++) mid.push('-');
    for (let j = 0; j < m; j++) mid.push('+');
  } else {
    // lcs[i][j] = LCS length of am[i..] and bm[j..]
    const w = m + 1;
    const lcs = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i * w + j] = am[i] === bm[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        mid.push(' ');
        i++;
        j++;
      } else if (j < m && (i === n || lcs[i * w + j + 1]! > lcs[(i + 1) * w + j]!)) {
        mid.push('+');
        j++;
      } else {
        mid.push('-');
        i++;
      }
    }
  }
  let oi = head;
  let ni = head;
  for (const op of mid) {
    if (op === ' ') ops.push({ op, text: am[oi - head]!, oldNo: ++oi, newNo: ++ni });
    else if (op === '-') ops.push({ op, text: am[oi - head]!, oldNo: ++oi, newNo: ni });
    else ops.push({ op, text: bm[ni - head]!, oldNo: oi, newNo: ++ni });
  }
  for (let k = 0; k < tail; k++) ops.push({ op: ' ', text: a[a.length - tail + k]!, oldNo: ++oi, newNo: ++ni });
  return ops;
}

/**
 * The unified diff of two texts (`---`/`+++` headers, `@@ -l,s +l,s @@` hunks, `context`
 * lines around each change). `show` may replace a line's text for display (redaction); the
 * alignment is always computed on the real lines. Empty string when the texts are equal.
 */
export function unifiedDiff(
  oldText: string,
  newText: string,
  labels: { old: string; new: string },
  show: (line: string, side: 'old' | 'new') => string = (l) => l,
  context = 3,
): string {
  if (oldText === newText) return '';
  const a = splitLines(oldText);
  const b = splitLines(newText);
  // A last line that differs only in its final newline is a change: compared with a mark the texts cannot hold (split text has no \n).
  const NONL = '\n';
  const mark = (t: { lines: string[]; noFinalNewline: boolean }) =>
    t.noFinalNewline && a.noFinalNewline !== b.noFinalNewline ? [...t.lines.slice(0, -1), `${t.lines.at(-1)}${NONL}`] : t.lines;
  const ops = diffLines(mark(a), mark(b)).map((o) => (o.text.endsWith(NONL) ? { ...o, text: o.text.slice(0, -1) } : o));
  const out = [`--- ${labels.old}`, `+++ ${labels.new}`];
  let k = 0;
  while (k < ops.length) {
    while (k < ops.length && ops[k]!.op === ' ') k++;
    if (k >= ops.length) break;
    const start = Math.max(0, k - context);
    let end = k;
    // extend while the next change is within 2*context of the last one
    for (;;) {
      while (end < ops.length && ops[end]!.op !== ' ') end++;
      let next = end;
      while (next < ops.length && ops[next]!.op === ' ') next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    const stop = Math.min(ops.length, end + context);
    const hunk = ops.slice(start, stop);
    const oldLines = hunk.filter((o) => o.op !== '+').length;
    const newLines = hunk.filter((o) => o.op !== '-').length;
    const first = hunk[0]!;
    const o0 = oldLines ? hunk.find((o) => o.op !== '+')!.oldNo : first.oldNo;
    const n0 = newLines ? hunk.find((o) => o.op !== '-')!.newNo : first.newNo;
    out.push(`@@ -${range(o0, oldLines)} +${range(n0, newLines)} @@`);
    for (const o of hunk) {
      out.push(`${o.op}${show(o.text, o.op === '+' ? 'new' : 'old')}`);
      if (o.op !== '+' && o.oldNo === a.lines.length && a.noFinalNewline) out.push('\\ No newline at end of file');
      else if (o.op === '+' && o.newNo === b.lines.length && b.noFinalNewline) out.push('\\ No newline at end of file');
    }
    k = stop;
  }
  return out.join('\n');
}

function range(start: number, count: number): string {
  return count === 1 ? `${start}` : `${start},${count}`;
}
