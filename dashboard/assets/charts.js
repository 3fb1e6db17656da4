// Hand-drawn SVG time-series charts with up to two y axes. No library: the page must work offline from the binary.
//
// drawChart(container, spec) replaces the container's SVG. spec:
//   { height, t0, t1 (ms, the visible window), gap (ms; a longer gap between points breaks a line),
//     left:  { title, color, integer, series: [...] },
//     right: { title, color, integer, series: [...] } (optional),
//     format: { left: v => string, right: v => string } (optional) }
// a series: { id, label, color, points: [[t, v], ...] sorted by t, step (bool), area (bool), dash (bool) }
// Every series' path carries data-series, data-times and data-values (the points inside the window), so tests and
// curious users can read what is drawn from the DOM.
'use strict';

const TideCharts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const M = { top: 14, right: 56, bottom: 26, left: 52 };

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // esc makes a string safe inside the tooltip's HTML (labels carry names that come from the platform).
  function esc(v) {
    return String(v).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  function niceStep(x) {
    if (!(x > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(x)));
    const f = x / exp;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * exp;
  }

  // scale returns the axis top and tick values for data up to vmax.
  function scale(vmax, integer) {
    if (!(vmax > 0)) vmax = integer ? 1 : 1;
    let step = niceStep(vmax / 4);
    if (integer) step = Math.max(1, Math.round(step));
    const top = Math.max(step, Math.ceil(vmax / step - 1e-9) * step);
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(+v.toFixed(6));
    return { top, ticks };
  }

  const TIME_STEPS = [5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3];
  function pad(n) { return String(n).padStart(2, '0'); }
  function clock(t, seconds) {
    const d = new Date(t);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + (seconds ? ':' + pad(d.getSeconds()) : '');
  }

  function fmt(v) {
    if (v === undefined || v === null || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (v / 1e3).toFixed(1).replace(/\.0$/, '') + 'k';
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
    return v.toFixed(2).replace(/0$/, '').replace(/\.0?$/, '');
  }

  // visible keeps the points in [t0, t1] plus one before t0, so a line enters from the left edge.
  function visible(points, t0, t1) {
    let i = 0;
    while (i < points.length && points[i][0] < t0) i++;
    return points.slice(Math.max(0, i - 1)).filter(p => p[0] <= t1);
  }

  function pathFor(pts, x, y, step, gap) {
    let d = '';
    let prev = null;
    for (const p of pts) {
      const px = x(p[0]).toFixed(1), py = y(p[1]).toFixed(1);
      if (!prev || p[0] - prev[0] > gap) d += 'M' + px + ' ' + py;
      else if (step) d += 'H' + px + 'V' + py;
      else d += 'L' + px + ' ' + py;
      prev = p;
    }
    return d;
  }

  function areaFor(pts, x, y, step, gap, y0) {
    // One closed shape per unbroken run.
    let d = '';
    let run = [];
    const flush = () => {
      if (run.length === 0) return;
      d += pathFor(run, x, y, step, Infinity) + 'V' + y0.toFixed(1) + 'H' + x(run[0][0]).toFixed(1) + 'Z';
      run = [];
    };
    let prev = null;
    for (const p of pts) {
      if (prev && p[0] - prev[0] > gap) flush();
      run.push(p);
      prev = p;
    }
    flush();
    return d;
  }

  function drawChart(container, spec) {
    const width = Math.max(280, container.clientWidth || 560);
    const height = spec.height || 220;
    const iw = width - M.left - M.right, ih = height - M.top - M.bottom;
    const t0 = spec.t0, t1 = spec.t1;
    const gap = spec.gap || Infinity;
    const x = t => M.left + ((t - t0) / Math.max(1, t1 - t0)) * iw;

    const axes = [['left', spec.left], ['right', spec.right]].filter(a => a[1]);
    const scales = {};
    for (const [side, ax] of axes) {
      let vmax = 0;
      for (const s of ax.series) for (const p of visible(s.points, t0, t1)) vmax = Math.max(vmax, p[1]);
      scales[side] = scale(vmax, ax.integer);
    }
    const yOf = side => v => M.top + ih - (v / scales[side].top) * ih;

    const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
      'aria-label': spec.label || 'chart' });
    const clipId = 'clip' + Math.random().toString(36).slice(2);
    el('rect', { x: M.left, y: M.top - 2, width: iw, height: ih + 4 }, el('clipPath', { id: clipId }, el('defs', {}, svg)));

    // Grid and left ticks (the grid follows the left axis; right ticks sit on the same lines when they line up).
    const g = el('g', { class: 'tick' }, svg);
    const main = axes[0][0];
    for (const v of scales[main].ticks) {
      const yy = yOf(main)(v);
      el('line', { class: v === 0 ? 'baseline' : 'gridline', x1: M.left, x2: M.left + iw, y1: yy, y2: yy }, g);
    }
    for (const [side, ax] of axes) {
      const f = (spec.format && spec.format[side]) || fmt;
      for (const v of scales[side].ticks) {
        const t = el('text', {
          x: side === 'left' ? M.left - 8 : M.left + iw + 8, y: yOf(side)(v) + 4,
          'text-anchor': side === 'left' ? 'end' : 'start', style: `fill:${ax.color}`, 'fill-opacity': .85,
        }, g);
        t.textContent = f(v);
      }
      const tx = side === 'left' ? 13 : width - 6;
      const title = el('text', {
        class: 'axis-title', fill: ax.color, x: tx, y: M.top + ih / 2, 'text-anchor': 'middle',
        transform: `rotate(${side === 'left' ? -90 : 90} ${tx} ${M.top + ih / 2})`,
      }, svg);
      title.textContent = ax.title;
    }

    // Time axis.
    const range = t1 - t0;
    const tstep = TIME_STEPS.find(s => range / s <= 8) || TIME_STEPS[TIME_STEPS.length - 1];
    for (let t = Math.ceil(t0 / tstep) * tstep; t <= t1; t += tstep) {
      const xx = x(t);
      el('line', { class: 'gridline', x1: xx, x2: xx, y1: M.top, y2: M.top + ih, 'stroke-opacity': .5 }, g);
      const lbl = el('text', { x: xx, y: height - 8, 'text-anchor': 'middle' }, g);
      lbl.textContent = clock(t, tstep < 60e3);
    }

    // Series: areas first, then lines, so lines stay on top.
    const plot = el('g', { 'clip-path': `url(#${clipId})` }, svg);
    let any = false;
    const drawn = [];
    for (const [side, ax] of axes) {
      const y = yOf(side);
      for (const s of ax.series) {
        const pts = visible(s.points, t0, t1);
        if (pts.length) any = true;
        drawn.push({ s, side, pts });
        if (s.area && pts.length) {
          el('path', { d: areaFor(pts, x, y, s.step, gap, M.top + ih), fill: s.color, 'fill-opacity': .18,
            stroke: 'none' }, plot);
        }
      }
    }
    for (const { s, side, pts } of drawn) {
      const inWindow = pts.filter(p => p[0] >= t0);
      const attrs = {
        d: pathFor(pts, x, yOf(side), s.step, gap), fill: 'none', stroke: s.color,
        'stroke-width': s.width || 2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round',
        'data-series': s.id, 'data-axis': side,
        'data-times': inWindow.map(p => p[0]).join(','),
        'data-values': inWindow.map(p => +(+p[1]).toFixed(3)).join(','),
      };
      if (s.dash) attrs['stroke-dasharray'] = '5 4';
      el('path', attrs, plot);
    }
    if (!any) {
      const t = el('text', { class: 'nodata', x: M.left + iw / 2, y: M.top + ih / 2, 'text-anchor': 'middle' }, svg);
      t.textContent = spec.empty || 'waiting for samples…';
    }

    // Crosshair and tooltip: nearest sample under the pointer.
    const cross = el('line', { class: 'crosshair', y1: M.top, y2: M.top + ih, visibility: 'hidden' }, svg);
    const hit = el('rect', { x: M.left, y: M.top, width: iw, height: ih, fill: 'transparent' }, svg);
    const tip = document.getElementById('tooltip');
    hit.addEventListener('mousemove', ev => {
      const box = svg.getBoundingClientRect();
      const px = (ev.clientX - box.left) * (width / box.width);
      const t = t0 + ((px - M.left) / iw) * (t1 - t0);
      const rows = [];
      let at = null;
      for (const { s, side, pts } of drawn) {
        let best = null;
        for (const p of pts) if (p[0] <= t + 1 && (!best || p[0] > best[0])) best = p;
        if (!best) continue;
        at = at === null ? best[0] : Math.max(at, best[0]);
        const f = (spec.format && spec.format[side]) || fmt;
        rows.push(`<div class="row"><span class="dot" style="background:${esc(s.color)}"></span>${esc(s.label)}: <b>${esc(f(best[1]))}</b></div>`);
      }
      if (!rows.length || !tip) return;
      cross.setAttribute('x1', x(at)); cross.setAttribute('x2', x(at)); cross.setAttribute('visibility', 'visible');
      tip.innerHTML = `<div class="t">${clock(at, true)}</div>` + rows.join('');
      tip.hidden = false;
      tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 200) + 'px';
      tip.style.top = (ev.clientY + 14) + 'px';
    });
    hit.addEventListener('mouseleave', () => {
      cross.setAttribute('visibility', 'hidden');
      if (tip) tip.hidden = true;
    });

    container.replaceChildren(svg);
    return svg;
  }

  return { drawChart, fmt, clock };
})();
