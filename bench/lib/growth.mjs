/**
 * How time and peak RSS grow with the number of hosts (issue 16): a markdown table and a
 * hand-written SVG plot (no dependencies) from the rollout benchmark's results
 * ({n, case, tool, ms[], rssKb[]} records, as bench/RESULTS.json holds them).
 */
import { stats } from './util.mjs';

const TOOLS = { hades: 'Hades', 'hades-tty': 'Hades, TTY view', ansible: 'Ansible (tuned)', raw: 'raw ssh' };
const COLORS = { hades: '#1f6feb', 'hades-tty': '#8250df', ansible: '#cf222e', raw: '#57606a' };

function median(results, n, c, t, field = 'ms') {
  const r = results.find((x) => x.n === n && x.case === c && x.tool === t);
  return r?.[field]?.length ? stats(r[field]).median : undefined;
}

/** The growth table: per size, each tool's median time per case, and Hades' peak RSS. */
export function growthTable(results) {
  const sizes = [...new Set(results.map((r) => r.n))].sort((a, b) => a - b);
  const tools = Object.keys(TOOLS).filter((t) => results.some((r) => r.tool === t));
  const cases = ['fresh', 'noop'].filter((c) => results.some((r) => r.case === c));
  const L = [`| hosts | ${cases.flatMap((c) => tools.map((t) => `${c} ${TOOLS[t]}`)).join(' | ')} | Hades peak RSS (max) |`];
  L.push(`|---:|${cases.flatMap(() => tools.map(() => '---:')).join('|')}|---:|`);
  for (const n of sizes) {
    const cells = cases.flatMap((c) =>
      tools.map((t) => {
        const m = median(results, n, c, t);
        return m === undefined ? '-' : `${(m / 1000).toFixed(2)} s`;
      }),
    );
    const rss = results.filter((r) => r.n === n && r.tool.startsWith('hades')).flatMap((r) => r.rssKb);
    L.push(`| ${n} | ${cells.join(' | ')} | ${rss.length ? `${(Math.max(...rss) / 1024).toFixed(0)} MB` : '-'} |`);
  }
  return L;
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One panel: x = hosts (log scale), y = value; a polyline per series. */
function panel(x0, y0, w, h, title, yLabel, sizes, series) {
  const values = series.flatMap((s) => s.points.map((p) => p[1]));
  const yMax = Math.max(1e-9, ...values) * 1.1;
  const lx = (n) => (sizes.length === 1 ? 0.5 : (Math.log(n) - Math.log(sizes[0])) / (Math.log(sizes.at(-1)) - Math.log(sizes[0])));
  const px = (n) => x0 + 50 + lx(n) * (w - 70);
  const py = (v) => y0 + h - 30 - (v / yMax) * (h - 60);
  const out = [`<text x="${x0 + w / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`];
  out.push(`<line x1="${x0 + 50}" y1="${py(0)}" x2="${x0 + w - 20}" y2="${py(0)}" stroke="#888"/>`);
  out.push(`<line x1="${x0 + 50}" y1="${py(0)}" x2="${x0 + 50}" y2="${y0 + 26}" stroke="#888"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (yMax / 4) * k;
    out.push(`<text x="${x0 + 46}" y="${py(v) + 4}" text-anchor="end" font-size="10">${v >= 10 ? v.toFixed(0) : v.toFixed(1)}</text>`);
  }
  out.push(
    `<text x="${x0 + 12}" y="${y0 + h / 2}" font-size="10" transform="rotate(-90 ${x0 + 12} ${y0 + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
  );
  for (const n of sizes) out.push(`<text x="${px(n)}" y="${py(0) + 14}" text-anchor="middle" font-size="10">${n}</text>`);
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h - 2}" text-anchor="middle" font-size="10">hosts (log scale)</text>`);
  for (const s of series) {
    if (!s.points.length) continue;
    const pts = s.points.map(([n, v]) => `${px(n).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ''} points="${pts}"/>`);
    for (const [n, v] of s.points) out.push(`<circle cx="${px(n).toFixed(1)}" cy="${py(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  return out;
}

/** The plot: fresh time, no-op time, Hades peak RSS, each against the number of hosts. */
export function growthSvg(results) {
  const sizes = [...new Set(results.map((r) => r.n))].sort((a, b) => a - b);
  const tools = Object.keys(TOOLS).filter((t) => results.some((r) => r.tool === t));
  const W = 300;
  const H = 240;
  const timeSeries = (c) =>
    tools.map((t) => ({
      name: TOOLS[t],
      color: COLORS[t],
      dash: t === 'raw',
      points: sizes
        .map((n) => [n, median(results, n, c, t)])
        .filter((p) => p[1] !== undefined)
        .map(([n, v]) => [n, v / 1000]),
    }));
  const rss = [
    {
      name: 'Hades peak RSS',
      color: COLORS.hades,
      points: sizes
        .map((n) => [n, results.filter((r) => r.n === n && r.tool.startsWith('hades')).flatMap((r) => r.rssKb)])
        .filter(([, v]) => v.length)
        .map(([n, v]) => [n, Math.max(...v) / 1024]),
    },
  ];
  const parts = [
    ...panel(0, 0, W, H, 'fresh release', 'seconds (median)', sizes, timeSeries('fresh')),
    ...panel(W, 0, W, H, 'no-op re-run', 'seconds (median)', sizes, timeSeries('noop')),
    ...panel(2 * W, 0, W, H, 'orchestrator peak RSS', 'MB (max of runs)', sizes, rss),
  ];
  const legend = tools.map(
    (t, i) =>
      `<g transform="translate(${20 + i * 170},${H + 14})"><line x1="0" y1="-4" x2="24" y2="-4" stroke="${COLORS[t]}" stroke-width="2"${t === 'raw' ? ' stroke-dasharray="5,3"' : ''}/><text x="30" y="0" font-size="11">${esc(TOOLS[t])}</text></g>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H + 24}" font-family="sans-serif" font-size="12" role="img">\n<title>Hades rollout benchmark: wall time of a fresh release and a no-op re-run, and the orchestrator's peak RSS, against the number of hosts</title>\n<rect width="100%" height="100%" fill="white"/>\n${[...parts, ...legend].join('\n')}\n</svg>\n`;
}
