package scenario

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/tide-run/tide/demo/fooddelivery"
	"github.com/tide-run/tide/demo/fooddelivery/simulator"
)

var quiet = slog.New(slog.DiscardHandler)

// platform stands in for what this package cannot start itself (tide's RocketMQ, RocketMQSource, Broker, Trigger
// and autoscaler live in other packages and are wired by `tide demo`): a Sender that delivers each order as a
// CloudEvent straight to a real order service over HTTP, dead-lettering 4xx answers as the Trigger would, and an
// instance count that follows the deliveries in flight. The order service, its SQLite store and everything in
// this package are real. The end-to-end run through tide is the demo's own test.
type platform struct {
	url      string
	inFlight atomic.Int64
	client   *http.Client
}

func (p *platform) Send(ctx context.Context, m simulator.Message) (string, error) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	e := event.New()
	e.SetID("msg-" + m.Key)
	e.SetSource("/apis/v1/namespaces/default/rocketmqsources/orders#" + m.Topic)
	e.SetType("dev.knative.rocketmq.event")
	e.SetTime(time.Now())
	e.SetData("application/json", m.Body)
	code, err := p.post(ctx, p.url+"/", e)
	if err != nil {
		return "", err
	}
	if code == http.StatusBadRequest { // not retryable: to the dead-letter sink, with Knative's extensions
		e.SetExtension("knativeerrorcode", "400")
		e.SetExtension("knativeerrordest", p.url+"/")
		if code, err = p.post(ctx, p.url+"/dead-letter", e); err != nil {
			return "", err
		}
	}
	if code != http.StatusAccepted {
		return "", fmt.Errorf("delivery answered %d", code)
	}
	return e.ID(), nil
}

func (p *platform) post(ctx context.Context, url string, e event.Event) (int, error) {
	ctx = binding.WithForceBinary(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// instances: one instance per 2 deliveries in flight (containerConcurrency 2), kept for 300 ms after the last one.
func (p *platform) instances() func(context.Context) (int, error) {
	var lastBusy atomic.Int64
	return func(context.Context) (int, error) {
		n := p.inFlight.Load()
		if n > 0 {
			lastBusy.Store(time.Now().UnixNano())
			return int(math.Ceil(float64(n) / 2)), nil
		}
		if time.Since(time.Unix(0, lastBusy.Load())) < 300*time.Millisecond {
			return 1, nil
		}
		return 0, nil
	}
}

func TestRunAccountsForEveryOrderAndWritesTheChart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "orders.db")
	store, err := fooddelivery.OpenStore(context.Background(), fooddelivery.StoreOptions{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := fooddelivery.NewService(fooddelivery.ServiceOptions{Store: store, Work: 20 * time.Millisecond,
		Instance: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	p := &platform{url: srv.URL, client: &http.Client{Timeout: 10 * time.Second}}

	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{
		Sender: p, DBPath: db, Instances: p.instances(),
		DayLength: 4 * time.Second, PeakRate: 150, Concurrency: 8, MalformedEvery: 10,
		SampleInterval: 20 * time.Millisecond, DrainTimeout: 10 * time.Second, ZeroTimeout: 10 * time.Second,
		OutDir: filepath.Join(dir, "out"), Progress: &progress, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	if s.Sent != 100 || s.Processed != 90 || s.DeadLettered != 10 || s.Lost != 0 || !s.OK() || !rep.Drained {
		t.Fatalf("summary %+v", s)
	}
	if s.PeakInstances < 1 || !s.ScaledToZero || s.LatencySamples != 90 || s.LatencyP50 < 20*time.Millisecond {
		t.Fatalf("instances/latency: %+v", s)
	}
	if len(s.Meals) != 3 {
		t.Fatalf("meals %+v", s.Meals)
	}
	text, err := os.ReadFile(rep.SummaryPath)
	if err != nil || !strings.Contains(string(text), "lost") || !strings.Contains(string(text), "dead-lettered") {
		t.Fatalf("summary file: %v\n%s", err, text)
	}
	svg, err := os.ReadFile(rep.ChartPath)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("<path")) {
		t.Fatalf("chart file: %v", err)
	}
	if !strings.Contains(progress.String(), "sent 100/100") || !strings.Contains(progress.String(), "scale to zero") {
		t.Fatalf("progress:\n%s", progress.String())
	}
}

func TestRunOptionErrors(t *testing.T) {
	if _, err := Run(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "DBPath") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Run(context.Background(), Options{DBPath: filepath.Join(t.TempDir(), "x.db")}); err == nil ||
		!strings.Contains(err.Error(), "NameServers") {
		t.Fatalf("err = %v", err)
	}
}
