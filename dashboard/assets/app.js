// The tide dashboard page: one EventSource (GET /dashboard/api/stream) feeds the whole page; log lines are polled
// from /dashboard/api/logs for the selected service. Everything is rendered with the DOM API (no framework).
'use strict';

(() => {
  const { drawChart, fmt, clock } = TideCharts;
  const $ = sel => document.querySelector(sel);

  const state = {
    interval: 1000, window: 900000, range: 300000,
    samples: [],        // oldest first; each has _svc/_topic maps added on arrival
    resources: [], resourcesError: '', status: {},
    logs: false, selected: '', now: 0,
  };

  // ---- helpers -------------------------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else if (k === 'text') e.textContent = attrs[k];
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const key = (ns, name) => ns + '/' + name;
  const int = n => Number(n || 0).toLocaleString('en-US');

  function badge(r) {
    if (!r) return h('span', { class: 'badge unknown', text: 'unknown' });
    if (r.ready === 'True') return h('span', { class: 'badge ready', text: 'Ready' });
    if (r.ready === 'False') return h('span', { class: 'badge notready', text: 'Not ready', title: r.message || '' });
    return h('span', { class: 'badge unknown', text: r.ready ? 'Unknown' : 'Pending', title: r.message || '' });
  }

  function age(created) {
    const t = Date.parse(created);
    if (!created || Number.isNaN(t) || !state.now) return '';
    let s = Math.max(0, Math.round((state.now - t) / 1000));
    if (s < 90) return s + 's';
    if (s < 5400) return Math.round(s / 60) + 'm';
    if (s < 172800) return Math.round(s / 3600) + 'h';
    return Math.round(s / 86400) + 'd';
  }

  function index(sample) {
    sample._svc = new Map(sample.services.map(s => [key(s.namespace, s.name), s]));
    sample._topic = new Map(sample.topics.map(t => [t.topic, t]));
    return sample;
  }

  function latest() { return state.samples[state.samples.length - 1]; }

  // windowBounds is the charts' time range: the chosen range ending at the newest sample, but never starting before
  // the oldest one, so a young history fills the plot instead of hugging its right edge.
  function windowBounds() {
    const last = latest();
    const t1 = last ? last.t : state.now;
    const first = state.samples.length ? state.samples[0].t : t1;
    const t0 = Math.max(t1 - state.range, Math.min(first, t1 - 30 * state.interval));
    return { t0, t1 };
  }

  // series collects [t, f(sample)] over the history, skipping samples where f returns undefined.
  function series(f) {
    const out = [];
    for (const s of state.samples) {
      const v = f(s);
      if (v !== undefined) out.push([s.t, v]);
    }
    return out;
  }

  // ---- stream --------------------------------------------------------------------------------------------------
  function connect() {
    const conn = $('#conn');
    const es = new EventSource('/dashboard/api/stream');
    es.addEventListener('open', () => { conn.className = 'pill live'; conn.textContent = 'live'; });
    es.addEventListener('error', () => { conn.className = 'pill down'; conn.textContent = 'reconnecting'; });
    es.addEventListener('init', ev => {
      const d = JSON.parse(ev.data);
      state.interval = d.interval; state.window = d.window; state.now = d.now; state.logs = d.logs;
      state.samples = d.samples.map(index);
      setResources(d.resources);
      state.status = d.status || {};
      renderAll();
      fetchLogs();
    });
    es.addEventListener('sample', ev => {
      const s = index(JSON.parse(ev.data));
      state.samples.push(s);
      state.now = s.t;
      const cut = s.t - state.window;
      while (state.samples.length && state.samples[0].t < cut) state.samples.shift();
      renderLive();
    });
    es.addEventListener('resources', ev => { setResources(JSON.parse(ev.data)); renderResources(); renderLive(); });
    es.addEventListener('status', ev => { state.status = JSON.parse(ev.data); renderBanner(); });
  }

  function setResources(r) {
    state.resources = (r && r.items) || [];
    state.resourcesError = (r && r.error) || '';
  }

  function resourcesOf(kind) { return state.resources.filter(r => r.kind === kind); }
  function findResource(kind, ns, name) {
    return state.resources.find(r => r.kind === kind && r.namespace === ns && r.name === name);
  }

  // ---- rendering -------------------------------------------------------------------------------------------------
  function renderAll() { renderBanner(); renderResources(); renderLive(); }
  function renderLive() { renderOverview(); renderServices(); renderTopics(); renderDeliveries(); renderLogSelect(); }

  function renderBanner() {
    const msgs = [];
    if (state.status.metricsError) msgs.push('Metrics unavailable: ' + state.status.metricsError);
    if (state.status.resourcesError) msgs.push('Control-plane API: ' + state.status.resourcesError);
    const b = $('#banner');
    b.hidden = msgs.length === 0;
    b.textContent = msgs.join(' · ');
  }

  function tile(label, value, sub, cls) {
    return h('div', { class: 'tile ' + (cls || '') },
      h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value }),
      h('div', { class: 'sub', text: sub || '' }));
  }

  function renderOverview() {
    const s = latest();
    const svcs = resourcesOf('Service');
    const readySvcs = svcs.filter(r => r.ready === 'True').length;
    let inst = 0, desired = 0, rate = 0, produce = 0, lag = 0, delivered = 0, dead = 0, retried = 0;
    if (s) {
      for (const p of s.services) { inst += p.ready; desired += p.desired; rate += p.rate; }
      for (const t of s.topics) { produce += t.rate; for (const g of t.groups) lag += g.lag; }
      for (const d of s.deliveries) { delivered += d.delivered; dead += d.deadLettered; retried += d.retried; }
    }
    const notReady = state.resources.filter(r => r.ready !== 'True').length;
    $('#overview').replaceChildren(
      tile('Services ready', `${readySvcs}/${svcs.length}`, notReady ? `${notReady} resource(s) not ready` : 'all resources ready',
        svcs.length && readySvcs === svcs.length && !notReady ? 'good' : (svcs.length ? 'bad' : '')),
      tile('Instances', String(inst), `desired ${desired}`),
      tile('Requests / s', fmt(rate), 'across services'),
      tile('Produced / s', fmt(produce), 'into RocketMQ topics'),
      tile('Events delivered', int(delivered), `${int(retried)} retries`),
      tile('Dead-lettered', int(dead), `consumer lag ${int(lag)}`, dead > 0 ? 'bad' : ''),
    );
  }

  // Service cards are created once and updated in place, so a hovered chart keeps its place.
  const cards = new Map();

  function serviceKeys() {
    const keys = new Set(resourcesOf('Service').map(r => key(r.namespace, r.name)));
    const s = latest();
    if (s) for (const p of s.services) keys.add(key(p.namespace, p.name));
    return [...keys].sort();
  }

  function renderServices() {
    const root = $('#service-cards');
    const keys = serviceKeys();
    if (!keys.length) {
      cards.clear();
      root.replaceChildren(h('div', { class: 'empty', text: 'No services yet. Deploy one with tide apply -f service.yaml.' }));
      return;
    }
    for (const k of [...cards.keys()]) if (!keys.includes(k)) { cards.get(k).el.remove(); cards.delete(k); }
    root.querySelectorAll('.empty').forEach(e => e.remove());
    const { t0, t1 } = windowBounds();
    keys.forEach((k, i) => {
      let c = cards.get(k);
      if (!c) {
        c = makeServiceCard(k);
        cards.set(k, c);
      }
      if (root.children[i] !== c.el) root.insertBefore(c.el, root.children[i] || null);
      updateServiceCard(c, k, t0, t1);
    });
  }

  function makeServiceCard(k) {
    const [ns, name] = k.split('/');
    const c = {};
    c.badge = h('span');
    c.url = h('a', { class: 'url', target: '_blank', rel: 'noopener' });
    c.stats = h('div', { class: 'stats' });
    c.chart = h('div', { class: 'chart', 'data-chart': 'instances' });
    c.chips = h('div', { class: 'chips' });
    c.el = h('div', { class: 'card service-card', 'data-service': k, 'data-name': name, 'data-namespace': ns },
      h('div', { class: 'card-head' },
        h('span', { class: 'title', text: name }), h('span', { class: 'ns', text: ns }), c.badge,
        h('a', { href: '#logs', class: 'ns', text: 'logs ›', onclick: () => selectService(k) }), c.url),
      c.stats,
      h('div', { class: 'legend' },
        h('span', {}, h('span', { class: 'sw area', style: 'background:var(--inst)' }), 'ready instances (left)'),
        h('span', {}, h('span', { class: 'sw dash', style: 'background:var(--desired)' }), 'desired instances (left)'),
        h('span', {}, h('span', { class: 'sw', style: 'background:var(--rate)' }), 'requests / s (right)')),
      c.chart, c.chips);
    return c;
  }

  function stat(label, value, small) {
    return h('div', { class: 'stat' }, h('div', { class: 'k', text: label }),
      h('div', { class: 'v' }, value, small ? h('small', { text: ' ' + small }) : null));
  }

  function updateServiceCard(c, k, t0, t1) {
    const [ns, name] = k.split('/');
    const r = findResource('Service', ns, name);
    c.badge.replaceChildren(badge(r));
    c.badge.title = r && r.ready !== 'True' ? [r.reason, r.message].filter(Boolean).join(': ') : '';
    c.url.textContent = (r && r.url) || '';
    if (r && r.url) c.url.href = r.url; else c.url.removeAttribute('href');
    c.el.classList.toggle('selected', state.selected === k);

    const cur = latest() && latest()._svc.get(k);
    const peak = Math.max(0, ...series(s => (s._svc.get(k) || {}).ready).map(p => p[1]));
    c.stats.replaceChildren(
      stat('instances', String(cur ? cur.ready : 0), `ready · ${cur ? cur.desired : 0} desired`),
      stat('requests / s', fmt(cur ? cur.rate : 0)),
      stat('in flight', fmt(cur ? cur.concurrency : 0)),
      stat('peak instances', String(peak), 'in history'),
    );
    if (r && r.ready === 'False') {
      c.stats.append(h('div', { class: 'stat' }, h('div', { class: 'k', text: 'reason' }),
        h('div', { class: 'v', style: 'font-size:14px;color:#fda4af', text: [r.reason, r.message].filter(Boolean).join(': ') })));
    }

    // A sample without this service (its source failed that second) is a gap, not a zero.
    const get = f => s => { const p = s._svc.get(k); return p ? f(p) : undefined; };
    drawChart(c.chart, {
      label: `instances and request rate of ${k}`,
      height: 260, t0, t1, gap: state.interval * 5,
      left: { title: 'instances', color: '#38bdf8', integer: true, series: [
        { id: 'ready', label: 'ready instances', color: '#38bdf8', step: true, area: true, width: 2.5,
          points: series(get(p => p.ready)) },
        { id: 'desired', label: 'desired instances', color: '#c4b5fd', step: true, dash: true, width: 1.5,
          points: series(get(p => p.desired)) },
      ] },
      right: { title: 'requests / s', color: '#fb923c', series: [
        { id: 'rate', label: 'requests / s', color: '#fb923c', points: series(get(p => p.rate)) },
      ] },
    });

    const revs = resourcesOf('Revision').filter(x => x.namespace === ns && x.service === name);
    const revPoints = new Map(((cur && cur.revisions) || []).map(x => [x.name, x]));
    const names = [...new Set([...revs.map(x => x.name), ...revPoints.keys()])].sort();
    c.chips.replaceChildren(...names.map(n => {
      const p = revPoints.get(n);
      const rr = revs.find(x => x.name === n);
      const dot = rr ? (rr.ready === 'True' ? '● ' : rr.ready === 'False' ? '✕ ' : '◌ ') : '';
      return h('span', { class: 'chip', title: rr && rr.message ? rr.message : 'revision' },
        dot, h('b', { text: n }), p ? ` · ${p.ready}/${p.desired} inst · ${fmt(p.rate)} rps` : '');
    }));
  }

  const PALETTE = ['#f472b6', '#a78bfa', '#facc15', '#2dd4bf', '#60a5fa', '#fb7185'];

  function renderTopics() {
    const root = $('#topic-cards');
    const s = latest();
    const all = s ? s.topics.map(t => t.topic) : [];
    const topics = all.filter(t => !isSystemTopic(t));
    const hidden = all.length - topics.length;
    if (!topics.length) {
      root.replaceChildren(h('div', { class: 'empty', text: 'No topics reported yet.' +
        (hidden ? ` (${hidden} system topic(s) hidden)` : '') }));
      return;
    }
    const { t0, t1 } = windowBounds();
    root.replaceChildren(...topics.map(name => {
      const cur = s._topic.get(name);
      const groups = cur.groups.map(g => g.group);
      const chart = h('div', { class: 'chart', 'data-chart': 'topic' });
      // Bars are relative to the largest lag in the history, so a single group's bar still says "how bad is now".
      let maxLag = 1;
      for (const x of state.samples) { const tt = x._topic.get(name); if (tt) for (const g of tt.groups) maxLag = Math.max(maxLag, g.lag); }
      const card = h('div', { class: 'card topic-card', 'data-topic': name },
        h('div', { class: 'card-head' }, h('span', { class: 'title mono', text: name }),
          h('span', { class: 'ns', text: `${int(cur.produced)} messages · ${fmt(cur.rate)}/s` })),
        h('div', { class: 'legend' },
          h('span', {}, h('span', { class: 'sw', style: 'background:var(--produce)' }), 'produced / s (left)'),
          ...groups.map((g, i) => h('span', {}, h('span', { class: 'sw', style: `background:${PALETTE[i % PALETTE.length]}` }),
            `lag of ${g} (right)`))),
        chart,
        cur.groups.length ? h('table', {},
          h('thead', {}, h('tr', {}, h('th', { text: 'consumer group' }), h('th', { class: 'num', text: 'lag' }), h('th', { text: '' }))),
          h('tbody', {}, ...cur.groups.map((g, i) => h('tr', { 'data-group': g.group },
            h('td', { class: 'mono', text: g.group }), h('td', { class: 'num', text: int(g.lag) }),
            h('td', { style: 'width:45%' }, h('div', { class: 'lagbar',
              style: `width:${(100 * g.lag / maxLag).toFixed(1)}%;background:${PALETTE[i % PALETTE.length]}` })))))) : null);
      drawChart(chart, {
        label: `produce rate and lag of ${name}`, height: 170, t0, t1, gap: state.interval * 5,
        left: { title: 'msgs / s', color: '#34d399', series: [
          { id: 'produced', label: 'produced / s', color: '#34d399', points: series(x => (x._topic.get(name) || {}).rate) },
        ] },
        right: { title: 'lag', color: '#f472b6', integer: true, series: groups.map((g, i) => ({
          id: 'lag:' + g, label: 'lag ' + g, color: PALETTE[i % PALETTE.length],
          points: series(x => { const t = x._topic.get(name); const gg = t && t.groups.find(y => y.group === g); return gg ? gg.lag : undefined; }),
        })) },
      });
      return card;
    }), ...(hidden ? [h('div', { class: 'muted', style: 'font-size:12px',
      text: `${hidden} RocketMQ system topic(s) hidden (retry, dead-letter, scheduling)` })] : []));
  }

  // isSystemTopic: RocketMQ's own topics (%RETRY%group, %DLQ%group, TBW102, SCHEDULE_TOPIC_XXXX, RMQ_SYS_...) are
  // bookkeeping, not the user's traffic; dead letters show per Trigger in Delivery instead.
  function isSystemTopic(t) {
    return t.startsWith('%') || /^(TBW102|SELF_TEST_TOPIC|OFFSET_MOVED_EVENT|SCHEDULE_TOPIC_XXXX|TRANS_CHECK_MAX_TIME_TOPIC|RMQ_SYS_.*)$/.test(t);
  }

  function renderDeliveries() {
    const root = $('#deliveries');
    const s = latest();
    const rows = s ? s.deliveries : [];
    if (!rows.length) {
      root.replaceChildren(h('div', { class: 'muted', text: 'No Triggers or Sources reported yet.' }));
      return;
    }
    const { t0, t1 } = windowBounds();
    const chart = h('div', { class: 'chart', 'data-chart': 'delivery' });
    const sum = f => x => x.deliveries.reduce((a, d) => a + f(d), 0);
    root.replaceChildren(
      h('div', { class: 'legend' },
        h('span', {}, h('span', { class: 'sw', style: 'background:var(--ready)' }), 'delivered / s'),
        h('span', {}, h('span', { class: 'sw', style: 'background:var(--retry)' }), 'retried / s'),
        h('span', {}, h('span', { class: 'sw', style: 'background:var(--dead)' }), 'dead-lettered / s')),
      chart,
      h('table', {},
        h('thead', {}, h('tr', {}, h('th', { text: 'kind / name' }), h('th', { text: 'ready' }),
          h('th', { class: 'num', text: 'delivered' }), h('th', { class: 'num', text: 'retried' }),
          h('th', { class: 'num', text: 'dead-lettered' }), h('th', { text: 'outcome' }))),
        h('tbody', {}, ...rows.map(d => {
          const total = Math.max(1, d.delivered + d.retried + d.deadLettered);
          const r = findResource(d.kind, d.namespace, d.name);
          return h('tr', { class: d.deadLettered > 0 ? 'dead' : '', 'data-kind': d.kind, 'data-name': d.name },
            h('td', {}, h('span', { class: 'muted', text: d.kind + ' ' }), h('b', { text: d.name })),
            h('td', {}, badge(r)),
            h('td', { class: 'num' }, int(d.delivered), h('span', { class: 'rate', text: fmt(d.deliveredRate) + '/s' })),
            h('td', { class: 'num' }, int(d.retried), h('span', { class: 'rate', text: fmt(d.retriedRate) + '/s' })),
            h('td', { class: 'num' }, int(d.deadLettered), h('span', { class: 'rate', text: fmt(d.deadLetteredRate) + '/s' })),
            h('td', {}, h('div', { class: 'dbar', title: 'delivered / retried / dead-lettered' },
              h('span', { style: `width:${100 * d.delivered / total}%;background:var(--ready)` }),
              h('span', { style: `width:${100 * d.retried / total}%;background:var(--retry)` }),
              h('span', { style: `width:${100 * d.deadLettered / total}%;background:var(--dead)` }))));
        }))));
    drawChart(chart, {
      label: 'delivery rates', height: 150, t0, t1, gap: state.interval * 5,
      left: { title: 'events / s', color: '#94a3b8', series: [
        { id: 'delivered', label: 'delivered / s', color: '#22c55e', points: series(sum(d => d.deliveredRate)) },
        { id: 'retried', label: 'retried / s', color: '#facc15', points: series(sum(d => d.retriedRate)) },
        { id: 'dead', label: 'dead-lettered / s', color: '#f43f5e', points: series(sum(d => d.deadLetteredRate)) },
      ] },
    });
  }

  const KIND_ORDER = ['Service', 'Configuration', 'Route', 'Revision', 'Broker', 'Trigger'];
  function renderResources() {
    const root = $('#resource-groups');
    if (!state.resources.length) {
      root.replaceChildren(h('div', { class: 'empty', text: state.resourcesError
        ? 'The control-plane API is not answering.' : 'No resources yet.' }));
      return;
    }
    const kinds = [...new Set(state.resources.map(r => r.kind))].sort((a, b) => {
      const ia = KIND_ORDER.indexOf(a), ib = KIND_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    root.replaceChildren(...kinds.map(kind => {
      const items = resourcesOf(kind);
      const plural = kind.endsWith('s') ? kind : kind + 's';
      return h('div', { class: 'panel kind-group', 'data-kind': kind },
        h('h3', {}, plural, h('span', { class: 'count', text: String(items.length) })),
        h('table', { class: 'res' },
          h('colgroup', {}, ...[15, 8, 8, 24, 25, 14, 6].map(w => h('col', { style: `width:${w}%` }))),
          h('thead', {}, h('tr', {}, h('th', { text: 'name' }), h('th', { text: 'namespace' }), h('th', { text: 'ready' }),
            h('th', { text: 'reason' }), h('th', { text: 'details' }), h('th', { text: 'url' }), h('th', { text: 'age' }))),
          h('tbody', {}, ...items.map(r => h('tr', { 'data-kind': r.kind, 'data-name': r.name, 'data-namespace': r.namespace },
            h('td', {}, h('b', { text: r.name })),
            h('td', { class: 'muted', text: r.namespace }),
            h('td', {}, badge(r)),
            h('td', {}, r.reason ? h('span', { class: r.ready === 'False' ? 'reason' : 'reason pending', text: r.reason }) : null,
              r.message ? h('div', { class: 'message', text: r.message }) : null),
            h('td', {}, h('div', { class: 'details' }, ...r.details.map(d => h('span', {}, d.key + ' ', h('b', { text: d.value }))))),
            h('td', { class: 'mono' }, r.url ? h('a', { href: r.url, target: '_blank', rel: 'noopener', text: r.url }) : ''),
            h('td', { class: 'muted', text: age(r.created) }))))));
    }));
  }

  // ---- logs ----------------------------------------------------------------------------------------------------
  function renderLogSelect() {
    const sel = $('#log-service');
    const keys = serviceKeys();
    if (!state.selected && keys.length) state.selected = keys[0];
    const have = [...sel.options].map(o => o.value).join('|');
    if (have !== keys.join('|')) {
      sel.replaceChildren(...keys.map(k => h('option', { value: k, text: k })));
    }
    sel.value = state.selected;
    if (!state.logs) $('#log-note').textContent = '';
  }

  function selectService(k) {
    state.selected = k;
    $('#log-service').value = k;
    for (const [ck, c] of cards) c.el.classList.toggle('selected', ck === k);
    fetchLogs();
  }

  let logSeq = 0;
  async function fetchLogs() {
    const pre = $('#log-lines');
    if (!state.logs || !state.selected) {
      pre.classList.add('idle');
      pre.textContent = state.logs ? 'Select a service to see its instances\' output.'
        : 'No log source is wired into this dashboard.';
      return;
    }
    pre.classList.remove('idle');
    const [ns, name] = state.selected.split('/');
    const seq = ++logSeq;
    let body;
    try {
      const res = await fetch(`/dashboard/api/logs?namespace=${encodeURIComponent(ns)}&service=${encodeURIComponent(name)}&limit=300`);
      body = await res.json();
      if (!res.ok) { $('#log-note').textContent = body.error || res.statusText; return; }
    } catch (e) {
      $('#log-note').textContent = 'logs unavailable: ' + e.message;
      return;
    }
    if (seq !== logSeq) return; // a newer request is in flight
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.replaceChildren(...body.lines.map(l => h('div', { class: l.stream === 'stderr' ? 'err' : '' },
      h('span', { class: 'ts', text: clock(Date.parse(l.time), true) + ' ' }),
      h('span', { class: 'src', text: [l.revision, l.instance].filter(Boolean).join('/') + ' ' }),
      l.text)));
    if (!body.lines.length) pre.textContent = 'no output yet';
    $('#log-note').textContent = `${body.lines.length} line(s)`;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  // ---- wiring ----------------------------------------------------------------------------------------------------
  document.querySelectorAll('.range button').forEach(b => b.addEventListener('click', () => {
    document.querySelectorAll('.range button').forEach(x => x.classList.toggle('on', x === b));
    state.range = Number(b.dataset.range);
    renderLive();
  }));
  $('#log-service').addEventListener('change', ev => selectService(ev.target.value));
  window.addEventListener('resize', () => renderLive());
  setInterval(fetchLogs, 2000);
  connect();
})();
