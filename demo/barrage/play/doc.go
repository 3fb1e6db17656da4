// Package play is `tide demo barrage` as a library: find or start tide, create the comments topic, apply
// examples/barrage (and a short config-autoscaler) through the API, wait for every resource to be Ready, print the
// page's URL, and, when asked to send, drive the HomePage's own send path headlessly (POST /api/send on the page,
// through the gateway) while following the page's event stream (GET /api/events), then report: comments sent,
// processed, shown, dead-lettered, lost, end-to-end latency, the processor's peak instances and its return to zero.
package play
