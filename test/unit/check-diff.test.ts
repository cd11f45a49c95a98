/** The unified diff of `--check` (src/engine/diff.ts) and the redaction of lines that depend on a secret (engine/check.ts). */
import { describe, expect, it } from 'vitest';
import { SECRET_MARK, secretFilter } from '../../src/engine/check.js';
import { unifiedDiff } from '../../src/engine/diff.js';

const L = { old: 'a (on h)', new: 'a (planned)' };
const lines = (n: number, f: (i: number) => string = (i) => `l${i}`) => Array.from({ length: n }, (_, i) => `${f(i + 1)}\n`).join('');

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', L)).toBe('');
  });
  it('one change in the middle: 3 lines of context, removed before added', () => {
    const a = lines(10);
    const b = a.replace('l5\n', 'L5\n');
    expect(unifiedDiff(a, b, L)).toBe(
      ['--- a (on h)', '+++ a (planned)', '@@ -2,7 +2,7 @@', ' l2', ' l3', ' l4', '-l5', '+L5', ' l6', ' l7', ' l8'].join('\n'),
    );
  });
  it('changes far apart make two hunks; close ones one', () => {
    const a = lines(20);
    const far = a.replace('l2\n', 'X\n').replace('l18\n', 'Y\n');
    expect(
      unifiedDiff(a, far, L)
        .split('\n')
        .filter((l) => l.startsWith('@@')),
    ).toEqual(['@@ -1,5 +1,5 @@', '@@ -15,6 +15,6 @@']);
    const near = a.replace('l5\n', 'X\n').replace('l11\n', 'Y\n');
    expect(
      unifiedDiff(a, near, L)
        .split('\n')
        .filter((l) => l.startsWith('@@')),
    ).toEqual(['@@ -2,13 +2,13 @@']);
  });
  it('a new file, an emptied file, an insertion only', () => {
    expect(unifiedDiff('', 'x\ny\n', L)).toBe(['--- a (on h)', '+++ a (planned)', '@@ -0,0 +1,2 @@', '+x', '+y'].join('\n'));
    expect(unifiedDiff('x\n', '', L)).toBe(['--- a (on h)', '+++ a (planned)', '@@ -1 +0,0 @@', '-x'].join('\n'));
    expect(unifiedDiff('a\nb\n', 'a\nn\nb\n', L)).toBe(['--- a (on h)', '+++ a (planned)', '@@ -1,2 +1,3 @@', ' a', '+n', ' b'].join('\n'));
  });
  it('says when a side has no final newline', () => {
    expect(unifiedDiff('a\nb', 'a\nc', L)).toBe(
      [
        '--- a (on h)',
        '+++ a (planned)',
        '@@ -1,2 +1,2 @@',
        ' a',
        '-b',
        '\\ No newline at end of file',
        '+c',
        '\\ No newline at end of file',
      ].join('\n'),
    );
  });
  it('a last line that differs only in its final newline is a change', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb', L)).toBe(
      ['--- a (on h)', '+++ a (planned)', '@@ -1,2 +1,2 @@', ' a', '-b', '+b', '\\ No newline at end of file'].join('\n'),
    );
  });
  it('aligns on the longest common subsequence', () => {
    expect(unifiedDiff('a\nb\nc\nd\n', 'b\nc\nx\nd\n', L)).toBe(
      ['--- a (on h)', '+++ a (planned)', '@@ -1,4 +1,4 @@', '-a', ' b', ' c', '+x', ' d'].join('\n'),
    );
  });
});

describe('secretFilter: lines that depend on a secret are hidden on both sides', () => {
  const hidden = '*** (line hidden: the render uses a secret)';
  const real = 'user=app\npassword=NEW\nport=1\n';
  const masked = `user=app\npassword=${SECRET_MARK.toUpperCase()}\nport=1\n`;
  it('the host side: a line matching a secret line of the template (old value unknown) is hidden, others shown', () => {
    const d = unifiedDiff('user=app\npassword=OLD\nport=2\n', real, L, secretFilter(real, masked));
    expect(d).toBe(
      ['--- a (on h)', '+++ a (planned)', '@@ -1,3 +1,3 @@', ' user=app', `-${hidden}`, '-port=2', `+${hidden}`, '+port=1'].join('\n'),
    );
    expect(d).not.toContain('OLD');
    expect(d).not.toContain('NEW');
  });
  it('no masked render, or one of another line count: every changed line is hidden', () => {
    for (const m of [undefined, 'one line']) {
      const d = unifiedDiff('user=app\npassword=OLD\n', real, L, secretFilter(real, m));
      for (const l of d.split('\n').slice(3)) expect(l.slice(1)).toBe(hidden);
      expect(d).not.toMatch(/OLD|NEW|user=app|port/);
    }
  });
  it('a masked line whose mark a filter changed beyond recognition: every host line not in the render is hidden', () => {
    const m = 'user=app\npassword=c2VjcmV0\nport=1\n';
    const d = unifiedDiff('user=app\npassword=OLD\nextra=1\n', real, L, secretFilter(real, m));
    expect(d).not.toContain('OLD');
    expect(d).not.toContain('extra=1');
    expect(d).toContain(' user=app');
  });
});
