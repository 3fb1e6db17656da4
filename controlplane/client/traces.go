package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tide-run/tide/internal/tracing/traceapi"
)

// TraceQuery selects traces for Traces (all fields optional).
type TraceQuery struct {
	// Attr is "key" or "key=value": traces with a span carrying that attribute.
	Attr string
	// Name: traces with a span of that name.
	Name  string
	Limit int
}

// Traces lists the most recent traces tide holds in memory (GET /tide/v1/traces), newest first.
func (c *Client) Traces(ctx context.Context, q TraceQuery) (traceapi.List, error) {
	v := url.Values{}
	if q.Attr != "" {
		v.Set("attr", q.Attr)
	}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out traceapi.List
	return out, c.getTraceJSON(ctx, traceapi.TracesPath, v, &out)
}

// Trace returns the spans tide holds for one trace (GET /tide/v1/traces/{id}).
func (c *Client) Trace(ctx context.Context, traceID string) (traceapi.Trace, error) {
	var out traceapi.Trace
	return out, c.getTraceJSON(ctx, traceapi.TracesPath+"/"+url.PathEscape(traceID), nil, &out)
}

func (c *Client) getTraceJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusNotFound && len(b) == 0 {
			return fmt.Errorf("GET %s: 404: this tide serves no traces (older than the tracing feature?)", path)
		}
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, string(b))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decoding the answer: %w", path, err)
	}
	return nil
}

// PostSpans adds spans a program recorded itself to tide's trace store (POST /tide/v1/traces), so they show in the
// same trace as tide's (set ParentSpanID to the span of the traceparent the program received). At most
// traceapi.MaxPostedSpans per call.
func (c *Client) PostSpans(ctx context.Context, spans []traceapi.Span) error {
	resp, err := c.do(ctx, http.MethodPost, traceapi.TracesPath, nil, traceapi.Spans{Spans: spans})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST %s: %s: %s", traceapi.TracesPath, resp.Status, string(b))
	}
	return nil
}
