package server_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tide-run/tide/server"
)

// describedMetrics lists the metric families the registry's collectors declare (their descriptors), whether or not
// a series exists yet (most appear with the first traffic).
func describedMetrics(reg *prometheus.Registry) map[string]bool {
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for d := range ch {
		if m := re.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

var (
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)|"[^"]*"`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlWords    = map[string]bool{"sum": true, "rate": true, "irate": true, "increase": true, "histogram_quantile": true,
		"max": true, "min": true, "avg": true, "count": true, "by": true, "without": true, "on": true, "ignoring": true}
)

// queriedMetrics extracts the metric names a PromQL expression selects (label matchers, ranges, grouping clauses
// and strings removed; functions and keywords skipped).
func queriedMetrics(expr string) []string {
	var out []string
	for _, id := range promqlIdent.FindAllString(promqlMatchers.ReplaceAllString(expr, " "), -1) {
		if !promqlWords[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestGrafanaDashboardQueriesExportedMetrics: every metric docs/grafana/tide.json queries is one tide up exports
// (a histogram's _bucket, _sum and _count count as its family), and every family tide up exports is listed in
// docs/observability.md.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	p := newPlatform(t, server.Options{})
	have := describedMetrics(p.srv.Metrics())
	if len(have) < 40 {
		t.Fatalf("only %d metric families described: %v", len(have), have)
	}
	raw, err := os.ReadFile("../docs/grafana/tide.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("docs/grafana/tide.json: %v", err)
	}
	queried := 0
	for _, pn := range dash.Panels {
		if pn.Type != "row" && len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			names := queriedMetrics(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric in %q", pn.Title, tg.Expr)
			}
			for _, n := range names {
				queried++
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suf); ok && have[b] {
						base = b
					}
				}
				if !have[base] {
					t.Errorf("panel %q queries %s, which tide does not export", pn.Title, n)
				}
			}
		}
	}
	if queried < 40 {
		t.Errorf("the dashboard queries only %d metrics", queried)
	}
	doc, err := os.ReadFile("../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for n := range have {
		if !strings.Contains(string(doc), "`"+n+"`") && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/observability.md does not list: %s", strings.Join(missing, ", "))
	}
}
