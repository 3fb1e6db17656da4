package gateway

// Benchmarks for docs/BENCHMARKS.md ("Serving"). Each compares tide with a direct peer in the same run:
//
//	go test -run '^$' -bench 'ColdStart' -benchtime 100x ./serving/gateway
//	go test -run '^$' -bench 'Latency|Throughput' -benchtime 3s ./serving/gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/tide-run/tide/serving/process"
)

func reportPercentiles(b *testing.B, lat []time.Duration, unit string, scale time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		i := int(q * float64(len(lat)-1))
		return float64(lat[i]) / float64(scale)
	}
	b.ReportMetric(p(0.50), "p50-"+unit)
	b.ReportMetric(p(0.99), "p99-"+unit)
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

func doGet(b *testing.B, c *http.Client, url, host string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkColdStart measures zero to first byte for the ko:// hello program (built once in TestMain, so the build
// is excluded): "tide" goes through the gateway while the revision is at zero, so the activator holds the request,
// pokes (here: a stand-in autoscaler that scales to 1, as the KPA does at zero), the Pool starts the process and
// probes it every 10 ms until ready, then the request is released. "direct-exec" is the peer: exec the
// same binary and poll it with GET every millisecond until it answers.
func BenchmarkColdStart(b *testing.B) {
	b.Run("tide", func(b *testing.B) {
		autoscaler := &scaleOnPoke{pools: map[types.NamespacedName]*process.Pool{}}
		gw := New(Options{Poker: autoscaler})
		srv := serve(b, gw)
		p, key := deploy(b, gw, revSpec{name: "hello-00001", image: helloImage})
		autoscaler.pools[key] = p
		if err := gw.SetRoute("default", "hello", []Target{{Revision: "hello-00001", Percent: 100}}); err != nil {
			b.Fatal(err)
		}
		c := benchClient()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			doGet(b, c, srv.URL+"/", "hello.default.localhost")
			lat = append(lat, time.Since(start))
			b.StopTimer()
			p.SetScale(0)
			for len(p.Instances()) > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StartTimer()
		}
		reportPercentiles(b, lat, "ms", time.Millisecond)
	})
	b.Run("direct-exec", func(b *testing.B) {
		bin, err := builder.Build(context.Background(), ".", helloImage)
		if err != nil {
			b.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			l, err := freeLoopbackPort()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			cmd := exec.Command(bin)
			cmd.Env = []string{"PORT=" + l, "PATH=" + os.Getenv("PATH")}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			for {
				resp, err := c.Get("http://127.0.0.1:" + l + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					break
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.StartTimer()
		}
		reportPercentiles(b, lat, "ms", time.Millisecond)
	})
}

// freeLoopbackPort binds :0, reads the port and releases it, as the process package does for instances.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port), nil
}

// helloBackend starts one hello instance behind a gateway and returns the gateway URL and the instance address.
func helloBackend(b *testing.B) (gwURL, direct string) {
	gw := New(Options{})
	srv := serve(b, gw)
	p, _ := deploy(b, gw, revSpec{name: "hello-00001", image: helloImage})
	if err := gw.SetRoute("default", "hello", []Target{{Revision: "hello-00001", Percent: 100}}); err != nil {
		b.Fatal(err)
	}
	p.SetScale(1)
	waitReady(b, p, 1)
	return srv.URL, "http://" + p.Instances()[0].Addr
}

// BenchmarkLatency measures sequential request latency for the same hello process, direct and through the gateway,
// over keep-alive connections. The difference of the p50s is the gateway's added latency.
func BenchmarkLatency(b *testing.B) {
	gwURL, direct := helloBackend(b)
	for _, tc := range []struct{ name, url string }{{"direct", direct}, {"gateway", gwURL}} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchClient()
			doGet(b, c, tc.url+"/", "hello.default.localhost") // warm the connection
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				doGet(b, c, tc.url+"/", "hello.default.localhost")
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat, "us", time.Microsecond)
		})
	}
}

// BenchmarkThroughput drives the same hello process with 16 concurrent clients per core, direct and through the
// gateway; compare req/s.
func BenchmarkThroughput(b *testing.B) {
	gwURL, direct := helloBackend(b)
	for _, tc := range []struct{ name, url string }{{"direct", direct}, {"gateway", gwURL}} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchClient()
			b.SetParallelism(16)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					doGet(b, c, tc.url+"/", "hello.default.localhost")
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
