package consumequeue

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tide-run/tide/mq/internal/commitlog"
)

func TestPutGetTruncateReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0")
	q, err := Open(commitlog.OS{}, p)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10; i++ {
		if err := q.Put(i, Entry{Pos: i * 100, Size: 50, TagHash: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Put(12, Entry{}); err == nil {
		t.Fatal("gap accepted")
	}
	es, err := q.Get(8, 5)
	if err != nil || len(es) != 2 || es[1] != (Entry{Pos: 900, Size: 50, TagHash: 9}) {
		t.Fatalf("%v %+v", err, es)
	}
	if err := q.SetMinByLog(450); err != nil || q.MinOffset() != 5 {
		t.Fatalf("min %d %v", q.MinOffset(), err)
	}
	if err := q.TruncateTo(7); err != nil || q.Count() != 7 {
		t.Fatal(err)
	}
	q.Close()
	// A partial trailing entry (a crash mid-write) is cut on open.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{1, 2, 3})
	f.Close()
	q2, err := Open(commitlog.OS{}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if q2.Count() != 7 {
		t.Fatalf("count after reopen %d", q2.Count())
	}
}
