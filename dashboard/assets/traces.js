// tide dashboard: the trace page. Reads /dashboard/api/traces (the answers of the API's /tide/v1/traces, under the
// dashboard's path so the dashboard's token cookie counts)
// and draws one trace as a waterfall. The location hash holds the selected trace ID, so a link such as
// /dashboard/traces#4bf92f3577b34da6a3ce929d0e0e4736 opens that trace directly (the barrage demo links its
// comments this way).
(function () {
  'use strict';
  const $ = s => document.querySelector(s);
  const h = (tag, attrs, ...kids) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v);
    }
    for (const k of kids) el.append(k);
    return el;
  };
  const dur = ms => ms < 1 ? `${Math.round(ms * 1000)}µs` : ms < 1000 ? `${ms.toFixed(1)}ms` : `${(ms / 1000).toFixed(2)}s`;

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error((await res.text()).trim() || res.statusText);
    return res.json();
  }

  async function loadList() {
    const attr = $('#trace-attr').value.trim();
    let url = '/dashboard/api/traces?limit=100';
    if (attr) url += '&attr=' + encodeURIComponent(attr);
    const body = $('#trace-list tbody');
    try {
      const l = await getJSON(url);
      $('#trace-note').textContent = l.enabled ? `last ${l.capacity} spans are kept` : 'tracing is disabled (OTEL_SDK_DISABLED=true)';
      body.replaceChildren(...l.traces.map(t => {
        const tr = h('tr', { 'data-trace': t.traceId, class: t.errors ? 'err' : '' },
          h('td', { class: 'id' }, h('a', { href: '#' + t.traceId, text: t.traceId })),
          h('td', { text: t.root }),
          h('td', { text: new Date(t.start).toLocaleTimeString() }),
          h('td', { text: dur(t.durationNs / 1e6) }),
          h('td', { text: String(t.spans) }),
          h('td', { text: String(t.errors) }));
        return tr;
      }));
      if (!l.traces.length) body.replaceChildren(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'no traces yet' })));
    } catch (e) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'traces unavailable: ' + e.message })));
    }
  }

  // order returns the spans depth-first (children under their parent, in start order) with their depth.
  function order(spans) {
    const held = new Set(spans.map(s => s.spanId));
    const kids = new Map();
    const roots = [];
    for (const s of spans) {
      if (s.parentSpanId && held.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
        if (!kids.has(s.parentSpanId)) kids.set(s.parentSpanId, []);
        kids.get(s.parentSpanId).push(s);
      } else roots.push(s);
    }
    const byStart = (a, b) => Date.parse(a.start) - Date.parse(b.start);
    const out = [];
    const seen = new Set();
    const walk = (s, d) => {
      if (seen.has(s.spanId)) return;
      seen.add(s.spanId);
      out.push([s, d]);
      for (const k of (kids.get(s.spanId) || []).sort(byStart)) walk(k, d + 1);
    };
    for (const r of roots.sort(byStart)) walk(r, 0);
    for (const s of spans) walk(s, 0); // spans in a parent cycle reach no root: show them at the top
    return out;
  }

  async function showTrace(id) {
    if (!/^[0-9a-f]{32}$/.test(id)) { $('#trace-view').hidden = true; return; }
    $('#trace-view').hidden = false;
    $('#trace-title').textContent = id;
    const wf = $('#waterfall');
    let t;
    try {
      t = await getJSON('/dashboard/api/traces/' + id);
    } catch (e) {
      wf.replaceChildren(h('div', { class: 'muted', text: e.message }));
      return;
    }
    const rows = order(t.spans);
    const t0 = Math.min(...t.spans.map(s => Date.parse(s.start)));
    const t1 = Math.max(...t.spans.map(s => Date.parse(s.end)));
    const total = Math.max(t1 - t0, 0.001);
    // Date.parse keeps milliseconds only; the exact duration comes from the nanosecond timestamps' difference.
    const ms = s => (nanos(s.end) - nanos(s.start)) / 1e6;
    $('#trace-title').textContent = `${id} · ${t.spans.length} spans · ${dur(total)}`;
    wf.replaceChildren(...rows.map(([s, depth]) => {
      const left = (Date.parse(s.start) - t0) / total * 100;
      const width = Math.max(ms(s) / total * 100, 0.3);
      const row = h('div', { class: 'wf-row', role: 'row', tabindex: '0', 'data-span': s.spanId, 'data-name': s.name },
        h('div', { class: 'wf-name', role: 'cell', style: `padding-left:${depth * 14}px`, title: s.name },
          s.name, h('span', { class: 'kind', text: s.kind + (s.service ? ' · ' + s.service : '') })),
        h('div', { class: 'wf-track', role: 'cell' },
          h('div', { class: `wf-bar k-${s.kind}${s.status === 'error' ? ' err' : ''}`, style: `left:${left}%;width:${width}%` })),
        h('div', { class: 'wf-dur', role: 'cell', text: dur(ms(s)) }));
      const select = () => {
        wf.querySelectorAll('.wf-row.sel').forEach(r => r.classList.remove('sel'));
        row.classList.add('sel');
        const pre = $('#span-detail');
        pre.classList.remove('idle');
        const lines = [`${s.name}  (${s.kind}${s.service ? ', ' + s.service : ''})`, `span ${s.spanId}  parent ${s.parentSpanId || '-'}`,
          `status ${s.status}${s.statusMessage ? ': ' + s.statusMessage : ''}`];
        for (const k of Object.keys(s.attributes || {}).sort()) lines.push(`  ${k} = ${s.attributes[k]}`);
        for (const e of s.events || []) lines.push(`  event ${e.name} at +${dur((nanos(e.time) - nanos(s.start)) / 1e6)}`);
        pre.textContent = lines.join('\n');
        // A span that processed a RocketMQ message links to that message's trace (the message page).
        const msgId = (s.attributes || {})['messaging.message.id'];
        if (msgId) pre.append('\n', h('a', { href: '/dashboard/messages#' + encodeURIComponent(msgId), class: 'msg-link', text: 'message trace of ' + msgId }));
      };
      row.addEventListener('click', select);
      row.addEventListener('keydown', ev => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(); } });
      return row;
    }));
  }

  // nanos reads an RFC 3339 timestamp with up to nanosecond precision as nanoseconds since the epoch (a Number:
  // exact enough for differences within one trace).
  function nanos(ts) {
    const m = /\.(\d+)/.exec(ts);
    const frac = m ? (m[1] + '000000000').slice(0, 9) : '000000000';
    const whole = Date.parse(ts.replace(/\.\d+/, ''));
    return whole * 1e6 + Number(frac);
  }

  $('#trace-filter').addEventListener('submit', ev => {
    ev.preventDefault();
    const id = $('#trace-id').value.trim().toLowerCase();
    if (id) location.hash = id;
    loadList();
  });
  window.addEventListener('hashchange', () => showTrace(location.hash.slice(1).toLowerCase()));
  loadList();
  showTrace(location.hash.slice(1).toLowerCase());
  setInterval(loadList, 5000);
})();
