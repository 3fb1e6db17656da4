package play

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/demo/fooddelivery/scenario"
	"github.com/tide-run/tide/demo/internal/rollout"
	foodbundle "github.com/tide-run/tide/examples/food-delivery"
	"github.com/tide-run/tide/server"
)

// Defaults of Options.
const (
	DefaultServer     = client.DefaultServer
	DefaultNameServer = "127.0.0.1:9876"
	DefaultDataDir    = "./.tide-demo"
	DefaultOutDir     = "./food-delivery-demo"
	DefaultReadyWait  = 5 * time.Minute
	Namespace         = "default"
	OrderService      = "order-service"
	// Topic is the RocketMQ topic of orders (the bundle's RocketMQSource spec.topic).
	Topic              = "orders"
	topicQueues        = 8
	sourceDirAnnotaton = "tide.dev/source-dir" // must match serving/runtime.SourceDirAnnotation
)

// ErrOptions is wrapped by option errors; ErrNotReady when resources stay not Ready past ReadyTimeout.
var (
	ErrOptions  = errors.New("food-delivery demo options")
	ErrNotReady = errors.New("food-delivery demo: resources not ready")
	// ErrNotImplemented: a resource's kind is not acted on by this build of tide (its Ready reason is
	// NotImplemented), so the demo cannot run on it.
	ErrNotImplemented = errors.New("food-delivery demo: this tide does not run every kind of the bundle")
)

// Options configure Run. Zero values take the documented defaults.
type Options struct {
	// Server is the API of a running tide. When its /readyz answers 200 the demo uses it; otherwise the demo starts
	// a tide in this process with Platform. Default DefaultServer.
	Server string
	// Token is the API token of the tide at Server, when it requires one (tide --token, $TIDE_TOKEN).
	Token string
	// NameServers of the running tide's RocketMQ (only used with a running tide; a started one reports its own).
	// Default DefaultNameServer.
	NameServers []string
	// Platform configures the tide the demo starts when none answers at Server. Zero: server.DefaultOptions with
	// DataDir DefaultDataDir (./.tide-demo, kept apart from `tide up`'s ./.tide).
	Platform *server.Options
	// Keep leaves a started tide running: Run returns it in Result.Platform and the caller stops it.
	Keep bool
	// SourceDir is where the ko:// image of the order service is built (any directory inside the tide module).
	// Default the working directory.
	SourceDir string
	// OutDir receives summary.txt, effect.svg and the order service's orders.db. Default DefaultOutDir.
	OutDir string
	// ReadyTimeout bounds the wait for the bundle's resources to be Ready (the first ko:// build takes a while).
	// Default DefaultReadyWait.
	ReadyTimeout time.Duration

	// The day, passed to scenario.Options (defaults there: 3-minute day, 200 orders/s at lunch).
	DayLength      time.Duration
	PeakRate       float64
	Concurrency    int
	MalformedEvery int
	DrainTimeout   time.Duration
	ZeroTimeout    time.Duration

	// Progress receives the demo's progress lines; nil for none.
	Progress io.Writer
	// OnReady is called once the bundle is Ready, before the day starts, with the API URL (tests open the
	// dashboard there).
	OnReady func(apiURL string)
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Result is what Run did and found.
type Result struct {
	Report scenario.Report
	// APIURL is the tide the demo ran against; DashboardURL its dashboard.
	APIURL, DashboardURL string
	// Started is true when the demo started tide itself; Platform is that tide when Options.Keep left it running.
	Started  bool
	Platform *server.Server
}

// Run plays the demo. An error means the demo could not run; lost orders are in Result.Report.Summary (OK()).
func Run(ctx context.Context, opts Options) (res Result, err error) {
	if opts.Server == "" {
		opts.Server = DefaultServer
	}
	if opts.OutDir == "" {
		opts.OutDir = DefaultOutDir
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if opts.SourceDir == "" {
		if opts.SourceDir, err = os.Getwd(); err != nil {
			return res, fmt.Errorf("%w: SourceDir: %w", ErrOptions, err)
		}
	}
	outDir, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return res, fmt.Errorf("%w: OutDir: %w", ErrOptions, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return res, fmt.Errorf("food-delivery demo: %w", err)
	}

	// Find or start tide.
	plat, err := rollout.FindOrStart(ctx, rollout.Find{Demo: "food-delivery demo", Server: opts.Server, Token: opts.Token,
		NameServers: opts.NameServers, DefaultNameServer: DefaultNameServer, Platform: opts.Platform,
		DataDir: DefaultDataDir, Logger: opts.Logger, Progress: progress, NotImplemented: ErrNotImplemented})
	if err != nil {
		return res, err
	}
	if plat.Started != nil {
		res.Started = true
		defer func() {
			if opts.Keep && err == nil {
				res.Platform = plat.Started
				return
			}
			if serr := plat.Stop(progress); serr != nil && err == nil {
				err = fmt.Errorf("food-delivery demo: stop tide: %w", serr)
			}
		}()
	}
	c, nameServers := plat.Client, plat.NameServers
	res.APIURL = strings.TrimSuffix(c.Server(), "/")
	res.DashboardURL = res.APIURL + "/"

	if err := rollout.EnsureTopic(ctx, nameServers[0], Topic, topicQueues, "food-delivery demo", progress); err != nil {
		return res, err
	}
	dbPath := filepath.Join(outDir, "orders.db")
	applied, err := applyBundle(ctx, c, opts.SourceDir, dbPath, progress)
	if err != nil {
		return res, err
	}
	if err := rollout.WaitReady(ctx, c, applied, rollout.Wait{Timeout: opts.ReadyTimeout, Progress: progress,
		Note: "the first build of the order service takes a while", NotReady: ErrNotReady, NotImplemented: ErrNotImplemented}); err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "dashboard: %s\n", res.DashboardURL)
	if opts.OnReady != nil {
		opts.OnReady(res.APIURL)
	}

	revKind, err := c.KindFor(ctx, "serving.knative.dev/v1", "Revision")
	if err != nil {
		return res, fmt.Errorf("food-delivery demo: %w", err)
	}
	instances := func(ctx context.Context) (int, error) {
		return rollout.ReadyInstances(ctx, c, revKind, Namespace, OrderService)
	}
	// A new Service starts with one instance (Knative's initial scale); the day starts in a quiet valley, so let
	// it go back to zero first, and the chart starts at zero.
	if err := waitZero(ctx, instances, opts.ZeroTimeout, progress); err != nil {
		return res, err
	}
	res.Report, err = scenario.Run(ctx, scenario.Options{NameServers: nameServers, DBPath: dbPath,
		Instances: instances, DayLength: opts.DayLength, PeakRate: opts.PeakRate, Concurrency: opts.Concurrency,
		MalformedEvery: opts.MalformedEvery, DrainTimeout: opts.DrainTimeout, ZeroTimeout: opts.ZeroTimeout,
		OutDir: outDir, Progress: opts.Progress, Logger: opts.Logger})
	return res, err
}

// appliedObject is an applied object the demo waits for (rollout.HasReady kinds).
type appliedObject = rollout.Object

// applyBundle applies the demo's platform settings and the bundle, in the seed's order, through the API.
func applyBundle(ctx context.Context, c *client.Client, sourceDir, dbPath string, progress io.Writer) ([]appliedObject, error) {
	var out []appliedObject
	for _, name := range append(foodbundle.DemoFiles(), foodbundle.Files()...) {
		b, err := foodbundle.Read(name)
		if err != nil {
			return nil, err
		}
		docs, err := client.ReadManifests([]string{"-"}, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("food-delivery demo: %s: %w", name, err)
		}
		for _, d := range docs {
			if d.Err != nil {
				return nil, fmt.Errorf("food-delivery demo: %s (document %d): %w", name, d.Index, d.Err)
			}
			obj := d.Object
			if obj.GetKind() == "Service" && obj.GetName() == OrderService {
				if err := localizeOrderService(obj, sourceDir, dbPath); err != nil {
					return nil, fmt.Errorf("food-delivery demo: %s: %w", name, err)
				}
			}
			r, err := c.Apply(ctx, obj, Namespace)
			if err != nil {
				return nil, fmt.Errorf("food-delivery demo: apply %s: %w", name, err)
			}
			fmt.Fprintf(progress, "%s %s\n", r.Describe(), r.Action)
			if rollout.HasReady(obj.GetKind()) {
				k, err := c.KindFor(ctx, obj.GetAPIVersion(), obj.GetKind())
				if err != nil {
					return nil, fmt.Errorf("food-delivery demo: %w", err)
				}
				ns := obj.GetNamespace()
				if ns == "" {
					ns = Namespace
				}
				out = append(out, appliedObject{Kind: k, Namespace: ns, Name: obj.GetName()})
			}
		}
	}
	return out, nil
}

// localizeOrderService points the order service at the demo's database (ORDER_DB, absolute, so every instance
// writes the file the demo reads whatever its working directory) and records where its ko:// image is built, as
// `tide apply` records its working directory.
func localizeOrderService(obj *unstructured.Unstructured, sourceDir, dbPath string) error {
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	if anns[sourceDirAnnotaton] == "" {
		anns[sourceDirAnnotaton] = sourceDir
	}
	obj.SetAnnotations(anns)
	containers, ok, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return fmt.Errorf("spec.template.spec.containers: %w", err)
	}
	if !ok || len(containers) == 0 {
		return fmt.Errorf("spec.template.spec.containers: missing")
	}
	c0, ok := containers[0].(map[string]any)
	if !ok {
		return errors.New("spec.template.spec.containers[0]: not an object")
	}
	env, _ := c0["env"].([]any)
	kept := env[:0:0]
	for _, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == "ORDER_DB" {
			continue
		}
		kept = append(kept, e)
	}
	c0["env"] = append(kept, map[string]any{"name": "ORDER_DB", "value": dbPath})
	containers[0] = c0
	return unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
}

// waitZero waits until the order service has no instance (up to timeout, default 2 minutes; not reaching zero is
// reported but does not stop the demo).
func waitZero(ctx context.Context, instances func(context.Context) (int, error), timeout time.Duration, progress io.Writer) error {
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	announced := false
	for {
		n, err := instances(ctx)
		if err == nil && n == 0 {
			return nil
		}
		if !announced {
			fmt.Fprintf(progress, "waiting for the order service to scale to zero before the day starts (%d instances now)\n", n)
			announced = true
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(progress, "the order service still has %d instances after %v; starting the day anyway\n", n, timeout)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
