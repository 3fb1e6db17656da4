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

// rule forbids packages under from (module-relative prefix) to depend, directly or transitively through non-test
// code, on packages under any of the forbidden prefixes.
type rule struct {
	from      string
	forbidden []string
	why       string
	via       []string // packages whose own dependencies are not followed (the composition root, for `tide up`)
}

var rules = []rule{
	{"mq", []string{"controlplane", "eventing", "serving", "server", "dashboard", "apis", "demo"}, "the broker is a leaf subsystem", nil},
	{"serving", []string{"mq", "eventing", "server", "cli", "dashboard"}, "serving never imports the broker or eventing", nil},
	{"eventing", []string{"mq", "serving", "server", "cli", "dashboard", "controlplane/store"}, "eventing reaches RocketMQ only through the official client", nil},
	{"apis", []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane"}, "API types are leaves", nil},
	{"controlplane", []string{"mq", "eventing", "serving", "server", "cli", "dashboard"}, "the control plane knows kinds, not subsystems", nil},
	{"cli", []string{"controlplane/store", "controlplane/reconciler"}, "the CLI talks only to the API (tide up goes through server)", []string{"server"}},
	{"dashboard", []string{"mq", "eventing", "serving", "server", "cli", "controlplane/store"}, "the dashboard reads the API", nil},
	{"internal/gcfloor", []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"}, "the heap floor is a leaf library", nil},
	{"internal/residency", []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"}, "start-up page release is a leaf library", nil},
	{"internal/ratelog", []string{"mq", "eventing", "serving", "server", "cli", "dashboard", "controlplane", "apis", "demo"}, "the log rate limiter is a leaf library", nil},
}

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
			if !under(pkg, r.from) {
				continue
			}
			for dep, trail := range closure(pkg, r.via) {
				for _, f := range r.forbidden {
					if under(dep, f) {
						t.Errorf("%s imports %s (%s): %s", pkg, dep, strings.Join(trail, " -> "), r.why)
					}
				}
			}
		}
	}
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

// TestRulesCatchViolation guards the checker itself: a rule must flag a package under its prefix.
func TestRulesCatchViolation(t *testing.T) {
	if !under("serving/gateway", "serving") || under("servingx", "serving") || !under("mq", "mq") {
		t.Fatal("prefix matching is wrong")
	}
	if _, err := os.Stat("../../go.mod"); err != nil {
		t.Fatalf("archtest must sit two levels below the module root: %v", err)
	}
}
