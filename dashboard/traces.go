package dashboard

import "net/http"

// serveTracesPage serves the trace page (assets/traces.html): recent traces from the API's /tide/v1/traces and one
// trace as a waterfall, selected by the location hash (/dashboard/traces#<trace id>).
func serveTracesPage(w http.ResponseWriter, _ *http.Request) {
	b, err := assets.ReadFile("assets/traces.html")
	if err != nil {
		http.Error(w, "traces page missing from the build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
