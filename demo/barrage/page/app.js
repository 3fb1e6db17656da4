// The barrage page: the form starts a Send (POST /api/send, whose response streams its progress), and the stage shows
// every processed comment as it is read back from table storage (server-sent events from /api/events).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const stage = $("stage"), recent = $("recent"), status = $("status"), form = $("send-form"), button = $("send");
  const lanes = 12, laneFree = new Array(lanes).fill(0), seen = new Set(), latencies = [];
  let sentTotal = 0, processed = 0, traceURL = "";
  const state = { shown: 0, runs: {} };
  window.barrage = state; // for tests and the curious: comments put on the stage, in all and per run

  function setCount(id, v) { const el = $(id); el.textContent = String(v); el.dataset.value = String(v); }

  function traceLink(el, traceId) {
    if (traceURL && traceId) { el.href = traceURL.replace("{traceId}", encodeURIComponent(traceId)); }
    if (traceId) { el.title = "trace " + traceId; el.dataset.trace = traceId; }
  }

  function show(c) {
    if (seen.has(c.id)) return;
    seen.add(c.id);
    processed++;
    setCount("count-processed", processed);
    const lat = (c.processedNs - c.sentNs) / 1e6;
    if (lat >= 0) { latencies.push(lat); if (latencies.length > 2000) latencies.shift(); }
    const empty = $("stage-empty"); if (empty) empty.remove();
    flyQueue.push(c);
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.textContent = c.shown; traceLink(link, c.traceId);
    if (!link.href) { link.href = "#"; link.addEventListener("click", (e) => e.preventDefault()); }
    const meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = c.instance + " · " + Math.round(lat) + " ms";
    li.append(link, meta);
    recent.prepend(li);
    while (recent.childElementCount > 20) recent.lastElementChild.remove();
  }

  // The flying copies: a comment enters a lane only when the lane's last one has moved on (gap ms), so comments
  // that arrive together spread out; a long queue lowers the gap, so the stage keeps up with any rate.
  const flyQueue = [];
  function fly(c) {
    const a = document.createElement("a"); // a link to its trace, out of the tab order (the list is the keyboard way)
    a.className = "comment"; a.textContent = c.shown; a.tabIndex = -1; a.dataset.id = c.id;
    traceLink(a, c.traceId);
    let lane = 0;
    for (let i = 1; i < lanes; i++) if (laneFree[i] < laneFree[lane]) lane = i;
    laneFree[lane] = performance.now();
    a.style.top = (8 + lane * 31) + "px";
    a.style.setProperty("--fly", (4 + Math.random()).toFixed(2) + "s");
    a.addEventListener("animationend", () => a.remove());
    stage.appendChild(a);
    while (stage.childElementCount > 400) stage.firstElementChild.remove();
    state.shown++; // on the stage now
    if (c.run) state.runs[c.run] = (state.runs[c.run] || 0) + 1;
    stage.dataset.shown = String(state.shown);
  }
  setInterval(() => {
    const gap = flyQueue.length > 100 ? 0 : flyQueue.length > 30 ? 300 : 700, now = performance.now();
    while (flyQueue.length) {
      let lane = 0;
      for (let i = 1; i < lanes; i++) if (laneFree[i] < laneFree[lane]) lane = i;
      if (now - laneFree[lane] < gap) break;
      fly(flyQueue.shift());
    }
  }, 50);

  setInterval(() => {
    if (!latencies.length) return;
    const s = latencies.slice().sort((x, y) => x - y);
    $("latency-p50").textContent = Math.round(s[Math.floor(s.length / 2)]) + " ms";
  }, 1000);

  function listen() {
    const es = new EventSource("api/events");
    es.addEventListener("comment", (e) => { try { show(JSON.parse(e.data)); } catch (err) { console.warn(err); } });
    es.addEventListener("stats", (e) => { const s = JSON.parse(e.data); setCount("count-instances", s.instances); });
    // EventSource reconnects by itself, sending Last-Event-ID; the server replays what was missed.
  }

  async function send(ev) {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const body = {
      message: $("message").value,
      concurrency: Number($("concurrency").value),
      durationSeconds: Number($("duration").value),
      count: Number($("count").value || 0),
    };
    button.disabled = true; status.className = "status"; status.textContent = "Sending…";
    let base = sentTotal;
    try {
      const resp = await fetch("api/send", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!resp.ok) throw new Error((await resp.text()).trim() || resp.statusText);
      const reader = resp.body.getReader(), dec = new TextDecoder();
      let buf = "", run = "", planned = 0, last = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
          if (!line) continue;
          const p = JSON.parse(line);
          if (p.run) { run = p.run; planned = p.planned; }
          last = p;
          sentTotal = base + p.sent; setCount("count-sent", sentTotal);
          status.textContent = "Run " + run + ": sent " + p.sent + " of " + planned + (p.failed ? ", " + p.failed + " failed" : "");
        }
      }
      if (!last || !last.done) throw new Error("the send was interrupted");
      status.textContent = "Run " + run + " done: " + last.sent + " sent" + (last.failed ? ", " + last.failed + " failed" : "") + ".";
      state.lastRun = { run: run, sent: last.sent, failed: last.failed };
    } catch (err) {
      status.className = "status error"; status.textContent = "Send failed: " + err.message;
    } finally {
      button.disabled = false;
    }
  }

  fetch("api/config").then((r) => r.json()).then((c) => { traceURL = c.traceURL || ""; }).catch(() => {});
  form.addEventListener("submit", send);
  listen();
})();
