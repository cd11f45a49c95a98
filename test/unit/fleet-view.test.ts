import { describe, expect, it } from 'vitest';
import { fitLine, type HostRow, renderFinal, renderFrame, type StepView } from '../../src/report/fleet-view.js';
import { formatAmount, formatProgress, ProgressTracker } from '../../src/report/progress.js';
import { progressMeter } from '../../src/engine/progress.js';
import type { HadesEvent } from '../../src/engine/events.js';

function fleet(n: number, perBatch: number, phase: (i: number) => Partial<HostRow>): StepView {
  const hosts: HostRow[] = [];
  for (let i = 0; i < n; i++) hosts.push({ host: `web-${i + 1}`, batch: Math.floor(i / perBatch), phase: 'waiting', ...phase(i) });
  return { title: 'step 4/6: rollout — job deploy', batches: Math.ceil(n / perBatch), hosts };
}

describe('the fleet frame', () => {
  it('256 hosts in 64 batches: never more lines than the terminal has, failed hosts named, running hosts with progress', () => {
    const view = fleet(256, 4, (i) =>
      i < 40
        ? { phase: i === 7 || i === 21 ? 'failed' : 'ok', ...(i === 7 ? { message: 'copy /opt/app — exit 1' } : {}) }
        : i < 44
          ? {
              phase: 'running',
              action: 'pull app:v2',
              output: `line of ${i}`,
              progress: { bytes: 48 * 2 ** 20, total: 200 * 2 ** 20, rate: 31 * 2 ** 20 },
            }
          : {},
    );
    for (const rows of [5, 8, 12, 24, 40, 100]) {
      const lines = renderFrame(view, { rows, cols: 80 });
      expect(lines.length).toBeLessThanOrEqual(rows - 1);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(79);
      expect(lines.join('\n')).toContain('web-8');
    }
    const big = renderFrame(view, { rows: 40, cols: 120 });
    expect(big[0]).toBe('⠋ step 4/6: rollout — job deploy · batch 11/64 · 38 ok, 2 failed, 4 running, 212 waiting');
    expect(big.slice(1, 6)).toEqual([
      '  batches 1–6/64: 22 ok, 2 failed',
      '  batch 7/64: 4 ok',
      '  batch 8/64: 4 ok',
      '  batch 9/64: 4 ok',
      '  batch 10/64: 4 ok',
    ]);
    expect(big).toContain('  ✖ web-8: failed — copy /opt/app — exit 1');
    expect(big).toContain('  ✖ web-22: failed');
    expect(big).toContain('  batch 11/64: 4 running');
    expect(big).toContain('    ⠋ web-41: pull app:v2  48.0/200 MiB  31.0 MiB/s');
    expect(big).toContain('      │ line of 40');
  });

  it('a small terminal keeps the header, a failed host and a running host, and counts the rest', () => {
    const view = fleet(64, 64, (i) => (i < 3 ? { phase: 'failed' } : i < 30 ? { phase: 'running', action: 'run' } : { phase: 'ok' }));
    const lines = renderFrame(view, { rows: 6, cols: 60 });
    expect(lines).toEqual([
      '⠋ step 4/6: rollout — job deploy · 34 ok, 3 failed, 27 run…',
      '  ✖ 3 failed: web-1, web-2, web-3',
      '  ⠋ web-4: run',
      '  ⠋ web-5: run',
      '  … 25 more running',
    ]);
  });

  it('finished batches show one count line each when there is room', () => {
    const view = fleet(12, 4, (i) => (i < 8 ? { phase: 'ok' } : i === 8 ? { phase: 'running', action: 'copy a' } : {}));
    expect(renderFrame(view, { rows: 40, cols: 100 }, 1)).toEqual([
      '⠙ step 4/6: rollout — job deploy · batch 3/3 · 8 ok, 1 running, 3 waiting',
      '  batch 1/3: 4 ok',
      '  batch 2/3: 4 ok',
      '  batch 3/3: 1 running, 3 waiting',
      '    ⠙ web-9: copy a',
    ]);
  });

  it('the final lines: outcome, counts, failed hosts by name', () => {
    const view = fleet(8, 4, (i) => ({ phase: i === 2 ? 'failed' : 'ok', ...(i === 2 ? { message: 'run — exit 3' } : {}) }));
    expect(renderFinal(view, 'failed', 1500, 100)).toEqual([
      '✖ step 4/6: rollout — job deploy: 7 ok, 1 failed (2 batches) in 1.5s — failed',
      '  ✖ web-3: failed — run — exit 3',
    ]);
  });

  it('fitLine: control characters dropped, wide characters counted twice, cut with an ellipsis', () => {
    expect(fitLine('a\tb\x1b[31mc', 20)).toBe('a b[31mc');
    expect(fitLine('日本語のテキスト', 7)).toBe('日本語…');
    expect(fitLine('abcdef', 6)).toBe('abcdef');
    expect(fitLine('abcdefg', 6)).toBe('abcde…');
  });
});

describe('progress', () => {
  it('formats amounts in the unit of the total', () => {
    expect(formatAmount(48 * 2 ** 20, 200 * 2 ** 20)).toBe('48.0/200 MiB');
    expect(formatAmount(512, 2048)).toBe('0.5/2.0 KiB');
    expect(formatProgress({ bytes: 3 * 2 ** 30, rate: 2 ** 20 })).toBe('3.0 GiB  1.0 MiB/s');
  });

  it('the engine meter: nothing for a transfer shorter than 500 ms; at most one event per 500 ms; ends at the total', () => {
    let t = 0;
    const got: Array<{ bytes?: number; total?: number }> = [];
    const quick = progressMeter(
      (e) => got.push(e),
      () => t,
    );
    quick.report(10, 100);
    t = 100;
    quick.report(100, 100);
    quick.finish();
    expect(got).toEqual([]);
    t = 0;
    const slow = progressMeter(
      (e) => got.push({ bytes: e.bytes, total: e.total }),
      () => t,
    );
    for (let b = 1; b <= 40; b++) {
      t = b * 50;
      slow.report(b * 25, 1000);
    }
    slow.finish();
    expect(got).toEqual([
      { bytes: 250, total: 1000 },
      { bytes: 500, total: 1000 },
      { bytes: 750, total: 1000 },
      { bytes: 1000, total: 1000 },
    ]);
  });

  it('plain output prints a progress line every 5 s once a transfer has run that long', () => {
    const tr = new ProgressTracker();
    const ev = (s: number, bytes?: number): HadesEvent => ({
      type: 'action.progress',
      runId: 'r',
      ts: new Date(s * 1000).toISOString(),
      host: 'h',
      stepIndex: 0,
      actionIndex: 0,
      bytes,
    });
    tr.start({ ...ev(0), type: 'action.start' });
    const printed = [];
    for (let s = 0.5; s <= 12; s += 0.5) {
      tr.update(ev(s, s * 1000));
      if (tr.shouldPrint(ev(s, s * 1000))) printed.push(s);
    }
    expect(printed).toEqual([5, 10]);
    expect(tr.update(ev(12.5, 12500)).rate).toBe(1000);
  });
});
