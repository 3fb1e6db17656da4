// Package promtest scrapes a /metrics endpoint over HTTP in tests and reads it with Prometheus' own text parser
// (github.com/prometheus/common/expfmt), so what tests assert is what a Prometheus server would ingest.
package promtest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is one scrape, by metric family name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (asking for the text format) with the given headers ("Authorization: Bearer ..."), checks the
// answer is 200 text/plain, and parses it; a body the parser refuses is an error.
func Scrape(url string, header http.Header) (Families, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET %s: Content-Type %q, want text/plain", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("GET %s: Prometheus' text parser: %w", url, err)
	}
	return fams, nil
}

// MustScrape is Scrape failing the test on error.
func MustScrape(t testing.TB, url string, header http.Header) Families {
	t.Helper()
	f, err := Scrape(url, header)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Value sums the samples of family name whose labels include every pair of match (a counter's or gauge's value;
// a histogram's sample count; a summary's count). ok is false when no sample matches.
func (f Families) Value(name string, match map[string]string) (v float64, ok bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !matches(m, match) {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			v += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

// Has reports whether family name has a sample whose labels include match.
func (f Families) Has(name string, match map[string]string) bool {
	_, ok := f.Value(name, match)
	return ok
}

func matches(m *dto.Metric, match map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range match {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Names lists the families' names, sorted.
func (f Families) Names() []string {
	out := make([]string, 0, len(f))
	for n := range f {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WaitValue scrapes url until family name (samples matching match, summed) reaches want exactly, or fails the
// test after timeout with the last value seen. Values only ever counted up make "reaches" deterministic.
func WaitValue(t testing.TB, url string, header http.Header, name string, match map[string]string, want float64, timeout time.Duration) Families {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var (
		last  float64
		found bool
		err   error
		fams  Families
	)
	for {
		fams, err = Scrape(url, header)
		if err == nil {
			last, found = fams.Value(name, match)
			if found && last == want {
				return fams
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v: %v (found %v, scrape error %v) after %v, want %v", name, match, last, found, err, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
