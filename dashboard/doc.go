// Package dashboard is tide's web UI: one http.Handler, mounted at "/" on the API port, that serves an embedded
// single-page app (plain HTML, CSS and JavaScript with hand-drawn SVG charts; no build step, no CDN) and the JSON and
// server-sent-event endpoints it reads.
//
// The Dashboard samples a MetricsSource once per interval (one second by default, on an injected clock) into a
// bounded history (fifteen minutes by default), turns counters into rates, and streams each sample to every open
// page over GET /dashboard/api/stream. Resources (Services, Revisions, Brokers, Triggers, RocketMQSources) come from
// a ResourceSource; APIResources implements it by listing and watching the control-plane HTTP API. Recent log lines
// of a service come from a LogSource.
//
// The dashboard only reads: it never changes a resource, and it imports nothing of the subsystems it shows; the
// composition root adapts their numbers to the small interfaces declared here.
package dashboard
