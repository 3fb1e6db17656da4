package play

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tide-run/tide/controlplane/client"
	"github.com/tide-run/tide/demo/internal/rollout"
	barragebundle "github.com/tide-run/tide/examples/barrage"
	"github.com/tide-run/tide/server"
)

// Defaults of Options.
const (
	DefaultServer     = client.DefaultServer
	DefaultNameServer = "127.0.0.1:9876"
	DefaultDataDir    = "./.tide-demo"
	DefaultOutDir     = "./barrage-demo"
	DefaultReadyWait  = 5 * time.Minute
	Namespace         = barragebundle.Namespace
	Processor         = barragebundle.ProcessorService
	HomePage          = barragebundle.HomePageService
	topicQueues       = 8
	sourceDirKey      = "tide.dev/source-dir" // must match serving/runtime.SourceDirAnnotation
)

// Errors.
var (
	ErrOptions  = errors.New("barrage demo options")
	ErrNotReady = errors.New("barrage demo: resources not ready")
	// ErrNotImplemented: this tide does not act on a kind of the bundle (Ready reason NotImplemented).
	ErrNotImplemented = errors.New("barrage demo: this tide does not run every kind of the bundle")
)

// Options configure Run. Zero values take the documented defaults.
type Options struct {
	// Server is the API of a running tide; when its /readyz answers the demo uses it, else it starts one with
	// Platform (default server.DefaultOptions with DataDir DefaultDataDir).
	Server   string
	Token    string
	Platform *server.Options
	// NameServers of the running tide's RocketMQ (a started tide reports its own). Default DefaultNameServer.
	NameServers []string
	// Kafka, when set (host:port,...), puts the queue on that Kafka cluster as the seed does: the page publishes
	// to Kafka and a KafkaSource feeds the Broker (examples/barrage/kafka); the demo creates the topic there.
	Kafka string
	// Keep leaves a started tide running (Result.Platform); the caller stops it.
	Keep bool
	// SourceDir is where the ko:// images are built (inside the tide module). Default the working directory.
	SourceDir string
	// OutDir receives summary.txt and the table's barrage.db. Default DefaultOutDir.
	OutDir       string
	ReadyTimeout time.Duration

	// Send, when not empty, is the comment text to send through the page; without it the demo stops after Ready.
	Send        string
	Concurrency int           // default 10
	Duration    time.Duration // default 10s
	Count       int           // default: one per sender per second
	// DrainTimeout bounds the wait for the last comments after the Send (default 60s); ZeroTimeout the wait for
	// the processor to scale back to zero (default 90s).
	DrainTimeout, ZeroTimeout time.Duration

	// Progress receives progress lines; nil for none.
	Progress io.Writer
	// OnReady is called once the bundle is Ready, with the page's and the API's URLs.
	OnReady func(pageURL, apiURL string)
	Logger  *slog.Logger
}

// Result is what Run did and found.
type Result struct {
	Summary  Summary
	Sent     bool // a Send ran (Summary is meaningful)
	PageURL  string
	APIURL   string
	Started  bool
	Platform *server.Server
	// SummaryPath is summary.txt in OutDir (when a Send ran).
	SummaryPath string
}

// Run plays the demo. An error means it could not run; lost comments are in Result.Summary (OK()).
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
	if opts.Concurrency == 0 {
		opts.Concurrency = 10
	}
	if opts.Duration == 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = time.Minute
	}
	if opts.ZeroTimeout <= 0 {
		opts.ZeroTimeout = 90 * time.Second
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
		return res, fmt.Errorf("barrage demo: %w", err)
	}

	plat, err := rollout.FindOrStart(ctx, rollout.Find{Demo: "barrage demo", Server: opts.Server, Token: opts.Token,
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
				err = fmt.Errorf("barrage demo: stop tide: %w", serr)
			}
		}()
	}
	c, nameServers := plat.Client, plat.NameServers
	res.APIURL = strings.TrimSuffix(c.Server(), "/")

	files := barragebundle.Files()
	if opts.Kafka != "" {
		files = barragebundle.KafkaFiles()
		if err := ensureKafkaTopic(ctx, opts.Kafka, barragebundle.Topic, topicQueues, progress); err != nil {
			return res, err
		}
	} else if err := rollout.EnsureTopic(ctx, nameServers[0], barragebundle.Topic, topicQueues, "barrage demo", progress); err != nil {
		return res, err
	}
	dbPath := filepath.Join(outDir, "barrage.db")
	env := map[string]string{"BARRAGE_DB": dbPath}
	if acceptsSpans(ctx, res.APIURL) {
		// The programs export their spans (sender, receiver, result, process) to this tide's OTLP receiver, and
		// the page links each comment to its trace in the dashboard.
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = res.APIURL
		env["BARRAGE_TRACE_URL"] = res.APIURL + "/dashboard/traces#{traceId}"
	} else {
		fmt.Fprintln(progress, "this tide takes no spans without its token: comments will not link to traces")
	}
	applied, err := applyBundle(ctx, c, opts.SourceDir, env, nameServers, opts.Kafka, files, progress)
	if err != nil {
		return res, err
	}
	if err := rollout.WaitReady(ctx, c, applied, rollout.Wait{Timeout: opts.ReadyTimeout, Progress: progress,
		Note: "the first build of the two programs takes a while", NotReady: ErrNotReady, NotImplemented: ErrNotImplemented}); err != nil {
		return res, err
	}
	svcKind, err := c.KindFor(ctx, "serving.knative.dev/v1", "Service")
	if err != nil {
		return res, fmt.Errorf("barrage demo: %w", err)
	}
	page, err := c.Get(ctx, svcKind, Namespace, HomePage)
	if err != nil {
		return res, fmt.Errorf("barrage demo: %w", err)
	}
	res.PageURL, _, _ = unstructured.NestedString(page.Object, "status", "url")
	if res.PageURL == "" {
		return res, fmt.Errorf("%w: service %s has no status.url", ErrNotReady, HomePage)
	}
	fmt.Fprintf(progress, "page: %s\n", res.PageURL)
	if opts.OnReady != nil {
		opts.OnReady(res.PageURL, res.APIURL)
	}
	if opts.Send == "" {
		return res, nil
	}
	revKind, err := c.KindFor(ctx, "serving.knative.dev/v1", "Revision")
	if err != nil {
		return res, fmt.Errorf("barrage demo: %w", err)
	}
	instances := func(ctx context.Context) (int, error) {
		return rollout.ReadyInstances(ctx, c, revKind, Namespace, Processor)
	}
	res.Summary, err = drive(ctx, driveOptions{PageURL: res.PageURL, Text: opts.Send, Concurrency: opts.Concurrency,
		Duration: opts.Duration, Count: opts.Count, DrainTimeout: opts.DrainTimeout, ZeroTimeout: opts.ZeroTimeout,
		Instances: instances, Progress: progress})
	if err != nil {
		return res, err
	}
	res.Sent = true
	res.SummaryPath = filepath.Join(outDir, "summary.txt")
	var b bytes.Buffer
	_ = res.Summary.WriteText(&b)
	if err := os.WriteFile(res.SummaryPath, b.Bytes(), 0o644); err != nil {
		return res, fmt.Errorf("barrage demo: %w", err)
	}
	return res, nil
}

// appliedObject is an applied object the demo waits for (rollout.HasReady kinds).
type appliedObject = rollout.Object

// applyBundle applies the demo's platform settings and the bundle through the API, as `tide apply` does.
// common is the environment both services get; with kafka set, the page publishes to that Kafka (the seed's
// KAFKA_SERVER; its placeholder SASL user is cleared) and the KafkaSource reads from it.
func applyBundle(ctx context.Context, c *client.Client, sourceDir string, common map[string]string, nameServers []string,
	kafka string, files []string, progress io.Writer) ([]appliedObject, error) {
	var out []appliedObject
	for _, name := range append(barragebundle.DemoFiles(), files...) {
		b, err := barragebundle.Read(name)
		if err != nil {
			return nil, err
		}
		docs, err := client.ReadManifests([]string{"-"}, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("barrage demo: %s: %w", name, err)
		}
		for _, d := range docs {
			if d.Err != nil {
				return nil, fmt.Errorf("barrage demo: %s (document %d): %w", name, d.Index, d.Err)
			}
			obj := d.Object
			if obj.GetKind() == "Service" {
				env := maps.Clone(common)
				if obj.GetName() != HomePage {
					delete(env, "BARRAGE_TRACE_URL")
				} else {
					env["ROCKETMQ_NAMESRV"] = strings.Join(nameServers, ";")
					if kafka != "" {
						env["BARRAGE_QUEUE"], env["KAFKA_SERVER"], env["KAFKA_USER"], env["KAFKA_PWD"] = "kafka", kafka, "", ""
					}
				}
				if err := localize(obj, sourceDir, env); err != nil {
					return nil, fmt.Errorf("barrage demo: %s: %w", name, err)
				}
			}
			if obj.GetKind() == "KafkaSource" && kafka != "" {
				if err := unstructured.SetNestedStringSlice(obj.Object, strings.Split(kafka, ","), "spec", "bootstrapServers"); err != nil {
					return nil, fmt.Errorf("barrage demo: %s: %w", name, err)
				}
			}
			r, err := c.Apply(ctx, obj, Namespace)
			if err != nil {
				return nil, fmt.Errorf("barrage demo: apply %s: %w", name, err)
			}
			fmt.Fprintf(progress, "%s %s\n", r.Describe(), r.Action)
			if rollout.HasReady(obj.GetKind()) {
				k, err := c.KindFor(ctx, obj.GetAPIVersion(), obj.GetKind())
				if err != nil {
					return nil, fmt.Errorf("barrage demo: %w", err)
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

// localize records where the ko:// image is built (as `tide apply` records its working directory) and sets env
// (replacing entries of the same names): the table file, absolute so every instance of both services shares it,
// the page's queue (RocketMQ name servers; with --kafka the Kafka settings), and where spans go and traces are
// shown.
func localize(obj *unstructured.Unstructured, sourceDir string, env map[string]string) error {
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	if anns[sourceDirKey] == "" {
		anns[sourceDirKey] = sourceDir
	}
	obj.SetAnnotations(anns)
	containers, ok, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil || !ok || len(containers) == 0 {
		return fmt.Errorf("spec.template.spec.containers: missing (%v)", err)
	}
	c0, ok := containers[0].(map[string]any)
	if !ok {
		return errors.New("spec.template.spec.containers[0]: not an object")
	}
	list, _ := c0["env"].([]any)
	kept := list[:0:0]
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if _, replaced := env[fmt.Sprint(m["name"])]; replaced {
				continue
			}
		}
		kept = append(kept, e)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		kept = append(kept, map[string]any{"name": k, "value": env[k]})
	}
	c0["env"] = kept
	containers[0] = c0
	return unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
}

// acceptsSpans reports whether the tide at apiURL takes OTLP spans from a program without its token (an empty
// export answered 200): true for a tide on loopback, false where the API requires its token.
func acceptsSpans(ctx context.Context, apiURL string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/v1/traces", http.NoBody)
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
