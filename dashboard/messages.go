package dashboard

import "net/http"

// serveMessagesPage serves the message-trace page (assets/messages.html): one message's life by id or key, read from
// the API's message trace (the server mounts it at /dashboard/api/messagetraces/{key}), selected by the location
// hash (/dashboard/messages#<id or key>). It links each step's OpenTelemetry trace to the trace page.
func serveMessagesPage(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("assets/messages.html")
	if err != nil {
		http.Error(w, "messages page missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
