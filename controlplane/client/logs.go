package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogOptions select instance logs (`tide logs`).
type LogOptions struct {
	// Revision limits a service's logs to one revision.
	Revision string
	// Instance limits the logs to one instance ID.
	Instance string
	// TailLines is how many of the newest lines to return first; 0 means the server's default.
	TailLines int
	// Follow keeps streaming new lines until ctx ends.
	Follow bool
}

// LogLine is one line an instance printed.
type LogLine struct {
	Time     time.Time `json:"time"`
	Revision string    `json:"revision"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"`
	Text     string    `json:"text"`
}

// ServiceLogs streams the instance logs of a Knative Service (every revision, or opts.Revision) to f, oldest
// first, until the stream ends (or, with Follow, until ctx ends).
func (c *Client) ServiceLogs(ctx context.Context, ns, service string, opts LogOptions, f func(LogLine)) error {
	return c.logs(ctx, "/apis/serving.knative.dev/v1/namespaces/"+url.PathEscape(nsOr(ns))+"/services/"+url.PathEscape(service)+"/log", opts, f)
}

// RevisionLogs streams the instance logs of one Revision to f.
func (c *Client) RevisionLogs(ctx context.Context, ns, revision string, opts LogOptions, f func(LogLine)) error {
	opts.Revision = ""
	return c.logs(ctx, "/apis/serving.knative.dev/v1/namespaces/"+url.PathEscape(nsOr(ns))+"/revisions/"+url.PathEscape(revision)+"/log", opts, f)
}

func nsOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func (c *Client) logs(ctx context.Context, path string, opts LogOptions, f func(LogLine)) error {
	q := url.Values{}
	if opts.Revision != "" {
		q.Set("revision", opts.Revision)
	}
	if opts.Instance != "" {
		q.Set("instance", opts.Instance)
	}
	if opts.TailLines > 0 {
		q.Set("tailLines", strconv.Itoa(opts.TailLines))
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return statusError(resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decode log line: %w", err)
		}
		f(l)
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
