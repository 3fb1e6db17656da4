package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/tide-run/tide"

// rule forbids packages under from (module-relative prefix), except those under exceptFrom, to depend, directly or
// transitively through non-test code, on packages under any of the forbidden prefixes, except those under allow.
type rule struct {
	from       string
	forbidden  []string
	why        string
	via        []string // packages whose own dependencies are not followed (the composition root, for `tide up`)
	exceptFrom []string // packages under from that this rule does not cover (they have a rule of their own)
	allow      []string // packages under a forbidden prefix that may be imported all the same
}

// products are the subsystems tide runs; only the composition root (server) wires them together.
var products = []string{"mq", "eventing", "serving"}

var rules = []rule{
	{from: "mq", forbidden: []string{"controlplane", "eventing", "serving", "server", "dashboard", "apis", "demo"},
		why: "the broker is a leaf subsystem"},
	{from: "serving", forbidden: []string{"mq", "eventing", "server", "cli", "dashboard"},
		why: "serving never imports the broker or eventing"},
	{from: "serving", exceptFrom: []string{"serving/runtime", "serving/reconciler"}, forbidden: []string{"controlplane"},
		why: "serving's data plane (gateway, activator, autoscaler, process) knows no control plane; only serving/runtime and serving/reconciler drive it from the store"},
	{from: "eventing", forbidden: []string{"serving", "server", "cli", "dashboard"},
		why: "eventing never imports serving; only server wires products together"},
	{from: "eventing", exceptFrom: []string{"eventing/runtime", "eventing/bus"}, forbidden: []string{"mq", "controlplane"}, via: []string{"eventing/bus"},
		why: "eventing's data plane reaches RocketMQ only through the bus and knows no control plane; only eventing/runtime drives it from the store"},
	{from: "eventing/bus", forbidden: []string{"mq", "controlplane"}, allow: []string{"mq/remoting", "mq/message", "mq/acl", "mq/mqmeta"},
		why: "the bus reaches RocketMQ through the official client or tide's protocol-level remoting client (native.go), never the broker"},
	{from: "eventing/trigger", forbidden: []string{"eventing/ingress"},
		why: "the Trigger dispatcher and the Broker ingress share the Broker contract through eventing/contract, not each other"},
	{from: "eventing/runtime", forbidden: []string{"mq"}, allow: []string{"mq/admin"}, via: []string{"mq/admin", "eventing/bus"},
		why: "the eventing runtime reaches RocketMQ through the bus and tide's protocol-level admin client only"},
	// Clients speak RocketMQ's protocols (or the official client) and its vocabulary (mq/mqmeta, mq/message,
	// mq/remoting), never the broker's internals, so they work the same against Apache RocketMQ. cli and demo start
	// the embeddable server through mq's root package or server, whose own dependencies are not followed here.
	{from: "cli", forbidden: brokerInternals, via: []string{"server", "mq"},
		why: "clients never import the broker's internals (use mq/mqmeta, mq/admin, mq/remoting)"},
	{from: "demo", forbidden: brokerInternals, via: []string{"server", "mq"},
		why: "clients never import the broker's internals (use mq/mqmeta, mq/admin, mq/remoting)"},
	{from: "dashboard", forbidden: brokerInternals,
		why: "clients never import the broker's internals (use mq/mqmeta, mq/admin, mq/remoting)"},
	{from: "eventing", forbidden: brokerInternals,
		why: "clients never import the broker's internals (use mq/mqmeta, mq/admin, mq/remoting)"},
	{from: "mq/admin", forbidden: brokerInternals,
		why: "clients never import the broker's internals (use mq/mqmeta, mq/admin, mq/remoting)"},
	{from: "mq/internal", exceptFrom: []string{"mq/internal/grpcproxy"}, forbidden: []string{"mq/internal/grpcproxy"},
		why: "the RocketMQ 5 gRPC endpoint sits on the broker (its in-process API, proxyapi.go); the broker and the store never import it"},
	{from: "mq/mqmeta", forbidden: []string{"mq", "controlplane", "eventing", "serving", "server", "cli", "dashboard", "apis", "demo"}, why: "the broker's vocabulary is a leaf: broker and clients share it"},
	{from: "mq/msgtrace", forbidden: []string{"mq", "controlplane", "eventing", "serving", "server", "cli", "dashboard", "apis", "demo"}, why: "message-trace records are a leaf: the admin client, the CLI and the dashboard share it"},
	{from: "apis", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane"},
		why: "API types are leaves"},
	{from: "controlplane", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "apis", "demo"},
		why: "the control plane knows kinds, not products: it imports no product package"},
	{from: "controlplane/client", forbidden: []string{"controlplane/api", "controlplane/store", "controlplane/registry", "controlplane/reconciler"},
		why: "the API's Go client shares only wire types (controlplane/discovery) with the server"},
	{from: "controlplane/discovery", forbidden: []string{"controlplane/api", "controlplane/client", "controlplane/store", "controlplane/registry", "controlplane/reconciler"},
		why: "the kind table on the wire is a leaf both the API server and its client use"},
	{from: "cli", forbidden: []string{"controlplane/store", "controlplane/reconciler"},
		why: "the CLI talks only to the API (tide up goes through server)", via: []string{"server"}},
	{from: "dashboard", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "controlplane/store"},
		why: "the dashboard reads the API"},
	{from: "internal/gcfloor", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "the heap floor is a leaf library"},
	{from: "internal/residency", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "start-up page release is a leaf library"},
	{from: "internal/tailbuf", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "the test harnesses' log buffer is a leaf library"},
	{from: "internal/crdgen", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "demo"},
		why: "the CRD generator reads only the API types"},
	{from: "internal/kubetest", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "the real-Kubernetes test harness is a leaf: tests bring their own resources"},
	{from: "internal/kafkatest", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "the Apache Kafka test harness is a leaf: tests bring their own sources and sinks"},
	{from: "internal/ratelog", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "the log rate limiter is a leaf library"},
	{from: "internal/tracing", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"},
		why: "tracing (provider, span store, propagation) is a leaf library every product uses"},
	{from: "internal/h1", forbidden: []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo", "internal"},
		why: "the lean HTTP/1.1 response parser is a leaf library (standard library only) the gateway and Trigger delivery share"},
	{from: "internal/tracing/traceapi", forbidden: []string{"internal/tracing"},
		why: "the trace API's wire types are a leaf the CLI and controlplane/client use"},
}

// brokerInternals are the embedded broker's implementation: its request handlers, storage and name server. Go's
// internal rule already keeps packages outside mq/ from importing them; this rule also keeps mq's own clients
// (mq/admin, mq/mqmeta) off them.
var brokerInternals = []string{"mq/internal"}

// runtimes are the packages that turn a product into part of the platform (its reconcilers and runtime). Only the
// composition root imports them, and within a product only the product's own packages do.
var runtimes = []string{"eventing/runtime", "serving/runtime", "serving/reconciler"}

// TestImportDirection walks every non-test Go file in the module, builds the package import graph, and checks each
// rule against the transitive closure, so an indirect path (a -> b -> forbidden) is caught too.
func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	graph := map[string]map[string]bool{} // module-relative package dir -> module-relative imports
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		for _, cg := range f.Comments {
			if strings.Contains(cg.Text(), "go:build tools") || strings.HasPrefix(strings.TrimSpace(cg.Text()), "+build tools") {
				return nil
			}
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if graph[rel] == nil {
			graph[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if p == module {
				graph[rel]["."] = true
			} else if strings.HasPrefix(p, module+"/") {
				graph[rel][strings.TrimPrefix(p, module+"/")] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(graph) < 2 {
		t.Fatalf("found only %d packages under %s; the walk is broken", len(graph), root)
	}

	closure := func(pkg string, stop []string) map[string][]string { // dependency -> path from pkg to it
		paths := map[string][]string{}
		var visit func(p string, trail []string)
		visit = func(p string, trail []string) {
			for dep := range graph[p] {
				if _, seen := paths[dep]; seen {
					continue
				}
				next := append(append([]string{}, trail...), dep)
				paths[dep] = next
				if !slices.ContainsFunc(stop, func(s string) bool { return under(dep, s) }) {
					visit(dep, next)
				}
			}
		}
		visit(pkg, []string{pkg})
		return paths
	}

	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		for _, r := range rules {
			if !under(pkg, r.from) || underAny(pkg, r.exceptFrom) {
				continue
			}
			for dep, trail := range closure(pkg, r.via) {
				if underAny(dep, r.allow) {
					continue
				}
				for _, f := range r.forbidden {
					if under(dep, f) {
						t.Errorf("%s imports %s (%s): %s", pkg, dep, strings.Join(trail, " -> "), r.why)
					}
				}
			}
		}
		for dep := range graph[pkg] {
			if !slices.Contains(runtimes, dep) || under(pkg, "server") || sameProduct(pkg, dep) {
				continue
			}
			t.Errorf("%s imports %s: only server wires a product's runtime and reconcilers into the platform", pkg, dep)
		}
	}
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

func underAny(pkg string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return under(pkg, p) })
}

// sameProduct reports whether a and b belong to the same product (mq, eventing, serving).
func sameProduct(a, b string) bool {
	return slices.ContainsFunc(products, func(p string) bool { return under(a, p) && under(b, p) })
}

// TestRulesCatchViolation guards the checker itself: a rule must flag a package under its prefix.
func TestRulesCatchViolation(t *testing.T) {
	if !under("serving/gateway", "serving") || under("servingx", "serving") || !under("mq", "mq") {
		t.Fatal("prefix matching is wrong")
	}
	if _, err := os.Stat("../../go.mod"); err != nil {
		t.Fatalf("archtest must sit two levels below the module root: %v", err)
	}
}
