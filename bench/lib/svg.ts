/** A small hand-written SVG line chart: categorical x axis, one or two y axes, a legend. */

export interface Series {
  name: string;
  color: string;
  values: (number | null)[];
  /** Which y axis (default left). */
  axis?: 'left' | 'right';
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  xTicks: string[];
  leftLabel: string;
  rightLabel?: string;
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A 'nice' upper bound and step for an axis from 0 to max. */
function niceScale(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

const fmt = (n: number) => (n >= 1000 ? `${Math.round(n / 100) / 10}k` : `${Math.round(n * 10) / 10}`);

/** Renders one chart into a <g> placed at (x, y) with the given size. */
export function lineChart(spec: ChartSpec, x: number, y: number, width: number, height: number): string {
  const m = { top: 40, right: spec.rightLabel ? 64 : 20, bottom: 70, left: 64 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const axisMax = (axis: 'left' | 'right') =>
    Math.max(0, ...spec.series.filter((s) => (s.axis ?? 'left') === axis).flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v))));
  const left = niceScale(axisMax('left'));
  const right = niceScale(axisMax('right'));
  const n = spec.xTicks.length;
  const px = (i: number) => m.left + (n === 1 ? pw / 2 : (i * pw) / (n - 1));
  const py = (v: number, axis: 'left' | 'right') => m.top + ph - (v / (axis === 'left' ? left.top : right.top)) * ph;
  const out: string[] = [`<g transform="translate(${x},${y})">`];
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  // grid and left ticks
  for (let v = 0; v <= left.top + 1e-9; v += left.step) {
    const yy = py(v, 'left');
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${yy + 4}" text-anchor="end" font-size="11">${fmt(v)}</text>`);
  }
  if (spec.rightLabel) {
    for (let v = 0; v <= right.top + 1e-9; v += right.step) {
      out.push(`<text x="${m.left + pw + 6}" y="${py(v, 'right') + 4}" font-size="11" fill="#555">${fmt(v)}</text>`);
    }
    out.push(
      `<text transform="translate(${width - 12},${m.top + ph / 2}) rotate(90)" text-anchor="middle" font-size="12" fill="#555">${esc(spec.rightLabel)}</text>`,
    );
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  spec.xTicks.forEach((t, i) => out.push(`<text x="${px(i)}" y="${m.top + ph + 16}" text-anchor="middle" font-size="11">${esc(t)}</text>`));
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 34}" text-anchor="middle" font-size="12">${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(16,${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(spec.leftLabel)}</text>`);
  for (const s of spec.series) {
    const axis = s.axis ?? 'left';
    const pts = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : `${px(i).toFixed(1)},${py(v, axis).toFixed(1)}`));
    const path = pts.filter(Boolean).join(' ');
    out.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
    for (const p of pts) if (p) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${s.color}"/>`);
  }
  // legend, below the axis label
  let lx = m.left;
  for (const s of spec.series) {
    const ly = m.top + ph + 54;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
    out.push(`<text x="${lx + 22}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
    lx += 30 + s.name.length * 6.2;
  }
  out.push('</g>');
  return out.join('\n');
}

export function svgDocument(width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
