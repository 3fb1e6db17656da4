package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n")
	write("b.json", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}`)
	write("c.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\nmetadata: {name: e}\n")
	write("ignored.txt", "not a manifest")
	docs, err := ReadManifests([]string{dir, "-"}, strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stdin}\n"))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		source string
		index  int
		name   string
		err    string
	}
	wants := []want{
		{"a.yaml", 1, "a", ""},
		{"a.yaml", 2, "", "apiVersion: Required value"},
		{"b.json", 1, "s", ""},
		{"b.json", 1, "c", ""},
		{"c.yml", 1, "", "already set"},
		{"-", 1, "stdin", ""},
	}
	if len(docs) != len(wants) {
		t.Fatalf("%d documents: %+v", len(docs), docs)
	}
	for i, w := range wants {
		d := docs[i]
		if filepath.Base(d.Source) != w.source || d.Index != w.index {
			t.Errorf("doc %d: %s #%d", i, d.Source, d.Index)
		}
		if w.err != "" {
			if d.Err == nil || !strings.Contains(d.Err.Error(), w.err) {
				t.Errorf("doc %d: err %v, want %q", i, d.Err, w.err)
			}
			continue
		}
		if d.Err != nil || d.Object.GetName() != w.name {
			t.Errorf("doc %d: %v %v", i, d.Err, d.Object)
		}
	}
	if _, err := ReadManifests([]string{filepath.Join(dir, "missing.yaml")}, nil); err == nil {
		t.Error("missing file accepted")
	}
}
