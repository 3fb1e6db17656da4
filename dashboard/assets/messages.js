// tide dashboard: the message-trace page. Reads /dashboard/api/messagetraces/<id or key> (the API's
// /tide/v1/messagetraces, what `tide mq trace` prints) and draws each message as a timeline: produced, stored,
// consumed by each group (each attempt), delivered to its sink with the status and latency, retried or
// dead-lettered. Each step's OpenTelemetry trace links to the trace page (/dashboard/traces#<trace id>); the event a
// source made of a message links to its own trace here. The location hash holds the key, so
// /dashboard/messages#order-123 opens that message directly.
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
    for (const k of kids) if (k !== null && k !== undefined) el.append(k);
    return el;
  };
  const traceLink = id => id ? h('a', { href: '/dashboard/traces#' + id, class: 'trace-link', text: 'trace ' + id }) : null;
  const clock = ms => new Date(ms).toISOString().slice(11, 23);

  // steps turns one message's trace into timeline rows: [time ms, class, what, detail nodes...].
  function steps(m) {
    const rows = [];
    for (const p of m.published || []) {
      rows.push([p.timestamp, 'produced', 'produced', `by group ${p.group}${p.clientHost ? ' from ' + p.clientHost : ''} to topic ${p.topic}, ` +
        `${p.bodyLength} bytes, ${p.success ? 'sent' : 'send FAILED'} in ${p.costMs || 0} ms`]);
    }
    if (m.stored) {
      const s = m.stored;
      rows.push([s.storeTime, 'stored', 'stored', `topic ${s.topic} queue ${s.queueId} offset ${s.queueOffset} on ${s.storeHost}` +
        (s.tags ? `, tags ${s.tags}` : '') + (s.keys ? `, keys ${s.keys}` : ''), m.traceId ? ' · ' : null, traceLink(m.traceId)]);
    }
    for (const g of m.consumed || []) {
      for (const a of g.attempts || []) {
        const at = a.start || a.end;
        const attempt = a.retryTimes ? `retry ${a.retryTimes}` : 'attempt 1';
        const result = a.done ? `${a.result} in ${a.costMs} ms` : 'no result yet';
        rows.push([at, 'consumed', `consumed by ${g.group}`, `${attempt}: ${result}`]);
        if (a.outcome) {
          const cls = a.outcome === 'Delivered' ? 'delivered' : a.outcome === 'DeadLettered' ? 'deadlettered' : 'retried';
          const what = a.outcome === 'Delivered' ? 'delivered' : a.outcome === 'DeadLettered' ? 'dead-lettered' : 'delivery failed';
          const ev = a.event ? h('span', {}, 'event ', h('a', { href: '#' + encodeURIComponent(a.event), class: 'event-link', text: a.event }), ' ') : null;
          rows.push([a.end || at, cls, what, ev, `to ${a.sink || '?'}: status ${a.status || '-'}` +
            (a.attempts > 1 ? ` after ${a.attempts} attempts` : '') + `, ${a.deliveryMs || 0} ms`, a.traceId ? ' · ' : null, traceLink(a.traceId)]);
        }
        if (a.then === 'dlq') rows.push([a.end || at, 'deadlettered', 'moved to %DLQ%', `%DLQ%${g.group}: retries exhausted, or parked`]);
        else if (a.then === 'retry' || (a.done && !a.success && !a.outcome)) rows.push([a.end || at, 'retried', 'back to RocketMQ', 'to be consumed again']);
      }
    }
    for (const r of m.recalls || []) rows.push([r.timestamp, 'recalled', 'recalled', `by group ${r.group}`]);
    // Produced, then stored (the clients stamp their record when the send returns, after the broker stored it),
    // then the consumers' steps by time.
    const rank = c => c === 'produced' ? 0 : c === 'stored' ? 1 : 2;
    return rows.sort((x, y) => rank(x[1]) - rank(y[1]) || (x[0] || 0) - (y[0] || 0));
  }

  async function show(key) {
    const out = $('#msg-result');
    if (!key) { out.replaceChildren(); return; }
    $('#msg-key').value = key;
    out.replaceChildren(h('p', { class: 'muted', text: 'reading the message trace of ' + key + '…' }));
    let l;
    try {
      const res = await fetch('/dashboard/api/messagetraces/' + encodeURIComponent(key), { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error((await res.text()).trim() || res.statusText);
      l = await res.json();
    } catch (e) {
      out.replaceChildren(h('p', { class: 'muted', text: 'message trace unavailable: ' + e.message }));
      return;
    }
    if (!l.messages.length) {
      out.replaceChildren(h('p', { class: 'muted', text: `no message and no trace records for ${key} (a message id or key? sent with tracing on?)` }));
      return;
    }
    const t0 = Math.min(...l.messages.flatMap(m => steps(m).map(r => r[0]).filter(Boolean)));
    out.replaceChildren(...l.messages.map(m => {
      const rows = steps(m);
      const topic = m.stored ? m.stored.topic : '';
      return h('div', { class: 'panel msg', 'data-msg': m.msgId },
        h('h3', {}, 'message ' + m.msgId, h('small', { text: topic ? 'topic ' + topic : 'not stored on this broker' })),
        h('ol', { class: 'msg-steps' }, ...rows.map(([at, cls, what, ...detail]) =>
          h('li', { class: 'msg-step s-' + cls, 'data-step': cls },
            h('span', { class: 'at', title: at ? clock(at) : '', text: at ? `+${Math.max(at - t0, 0)} ms` : '-' }),
            h('span', { class: 'what', text: what }),
            h('span', { class: 'detail' }, ...detail)))),
        rows.length ? null : h('p', { class: 'muted', text: 'no trace records: the producer and consumers did not have tracing on' }));
    }));
  }

  $('#msg-search').addEventListener('submit', ev => {
    ev.preventDefault();
    const key = $('#msg-key').value.trim();
    if (key) location.hash = encodeURIComponent(key);
  });
  window.addEventListener('hashchange', () => show(decodeURIComponent(location.hash.slice(1))));
  show(decodeURIComponent(location.hash.slice(1)));
})();
