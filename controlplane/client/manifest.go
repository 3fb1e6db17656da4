package client

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Document is one object read from a manifest. Source is the file name ("-" for stdin) and Index the document's
// position in it, counting from 1 and skipping empty documents. Err is set when the document cannot be parsed;
// Object is nil then.
type Document struct {
	Source string
	Index  int
	Object *unstructured.Unstructured
	Err    error
}

// Where names the document in messages: "bundle.yaml: document 2".
func (d Document) Where() string { return fmt.Sprintf("%s: document %d", d.Source, d.Index) }

// ReadManifests reads files, directories (their *.yaml, *.yml and *.json files, sorted, not recursive) and "-"
// (stdin) into documents, in order. Multi-document YAML (---) and JSON are accepted, and a `kind: List` is expanded
// into its items. An unreadable path is an error; an unparsable document is returned with Err set so the caller
// can report it and still apply the others.
func ReadManifests(paths []string, stdin io.Reader) ([]Document, error) {
	return ReadManifestsRecursive(paths, stdin, false)
}

// ReadManifestsRecursive is ReadManifests that, with recursive set, also reads the manifests of every directory
// below a directory given (kubectl's -R), each directory's files sorted, directories in lexical order.
func ReadManifestsRecursive(paths []string, stdin io.Reader, recursive bool) ([]Document, error) {
	var docs []Document
	for _, p := range paths {
		if p == "-" {
			ds, err := readStream("-", stdin)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("the path %q does not exist", p)
		}
		files := []string{p}
		if fi.IsDir() {
			if files, err = manifestFiles(p, recursive); err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return nil, err
			}
			ds, err := readStream(f, fh)
			fh.Close()
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	return docs, nil
}

func readStream(source string, r io.Reader) ([]Document, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []Document
	index := 0
	for {
		raw, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if isEmptyDocument(raw) {
			continue
		}
		index++
		docs = append(docs, parseDocument(source, index, raw)...)
	}
}

func isEmptyDocument(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			return false
		}
	}
	return true
}

func parseDocument(source string, index int, raw []byte) []Document {
	d := Document{Source: source, Index: index}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		d.Err = fmt.Errorf("cannot parse: %w", err)
		return []Document{d}
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil || m == nil {
		d.Err = errors.New("cannot parse: a document must be an object with apiVersion, kind and metadata")
		return []Document{d}
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetKind() == "List" || strings.HasSuffix(u.GetKind(), "List") && m["items"] != nil {
		items, _ := m["items"].([]any)
		var out []Document
		for _, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				out = append(out, Document{Source: source, Index: index, Err: errors.New("a List item is not an object")})
				continue
			}
			out = append(out, Document{Source: source, Index: index, Object: &unstructured.Unstructured{Object: im}})
		}
		return out
	}
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		d.Err = fmt.Errorf("%s: Required value", strings.Join(missing, ", "))
		return []Document{d}
	}
	d.Object = u
	return []Document{d}
}

// manifestFiles lists dir's *.yaml, *.yml and *.json files, sorted; with recursive, then those of each
// subdirectory in turn.
func manifestFiles(dir string, recursive bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files, subdirs []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		switch {
		case e.IsDir():
			subdirs = append(subdirs, filepath.Join(dir, e.Name()))
		case ext == ".yaml" || ext == ".yml" || ext == ".json":
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	if !recursive {
		return files, nil
	}
	sort.Strings(subdirs)
	for _, d := range subdirs {
		more, err := manifestFiles(d, true)
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}
