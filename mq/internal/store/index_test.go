package store

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tide-run/tide/mq/internal/commitlog"
	"github.com/tide-run/tide/mq/message"
)

// keyed is message i of topic with KEYS "k<i%7> all k<i%7>" and UNIQ_KEY "u<i>".
func keyed(topic string, i int) *message.Message {
	props := map[string]string{"UNIQ_KEY": fmt.Sprintf("u%d", i), "KEYS": fmt.Sprintf("k%d all k%d", i%7, i%7)} // a repeated word is returned once
	return &message.Message{Topic: topic, Body: []byte(fmt.Sprintf("m%d", i)),
		Properties: message.FormatProperties(props), BornHost: netip.MustParseAddrPort("127.0.0.1:9")}
}

// bodies decodes query results to their bodies.
func bodies(t *testing.T, recs [][]byte) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		m, _, err := message.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Body))
	}
	return out
}

// small index files: 40 entries each (4 keys a message), so 200 messages seal about 20 files.
var smallIndex = Options{SegmentSize: 16 << 10, IndexSlots: 8, IndexEntries: 40}

func withDir(o Options, dir string) Options { o.Dir = dir; return o }

func checkQueries(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := 0; i < n; i += 13 {
		got, _, err := s.QueryMessage("t", fmt.Sprintf("u%d", i), 32, 0, 1<<62, true)
		if err != nil || !slices.Equal(bodies(t, got), []string{fmt.Sprintf("m%d", i)}) {
			t.Fatalf("by id u%d: %v %v", i, bodies(t, got), err)
		}
	}
	got, _, err := s.QueryMessage("t", "k3", 64, 0, 1<<62, false)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < n; i++ {
		if i%7 == 3 {
			want = append(want, fmt.Sprintf("m%d", i))
		}
	}
	if !slices.Equal(bodies(t, got), want) {
		t.Fatalf("by key k3 (oldest first):\n got %v\nwant %v", bodies(t, got), want)
	}
}

func TestIndexQueryAcrossFiles(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	o := withDir(smallIndex, t.TempDir())
	o.Clock = fc
	s := open(t, o)
	var mid int64
	for i := 0; i < 200; i++ {
		if i == 100 {
			fc.Step(time.Minute)
			mid = fc.Now().UnixMilli()
		}
		if _, _, err := s.Put([]*message.Message{keyed("t", i)}); err != nil {
			t.Fatal(err)
		}
		s.Put([]*message.Message{keyed("other", i)}) // same keys, another topic: never returned for "t"
	}
	if st := s.IndexStats(); st.Files < 10 {
		t.Fatalf("want many index files, have %d", st.Files)
	}
	checkQueries(t, s, 200)
	// maxNum keeps the newest, answered oldest first; the time range bounds.
	got, st, _ := s.QueryMessage("t", "all", 5, 0, 1<<62, false)
	if !slices.Equal(bodies(t, got), []string{"m195", "m196", "m197", "m198", "m199"}) || st.LastTimestamp != mid {
		t.Fatalf("maxNum 5: %v, stats %+v", bodies(t, got), st)
	}
	got, _, _ = s.QueryMessage("t", "all", 64, 0, mid-1, false)
	if len(got) != 64 || bodies(t, got)[63] != "m99" || bodies(t, got)[0] != "m36" {
		t.Fatalf("before the minute: %d, last %v", len(got), bodies(t, got)[63:])
	}
	if got, _, _ := s.QueryMessage("t", "u5", 32, mid, 1<<62, true); len(got) != 0 {
		t.Fatal("time range ignored")
	}
	// A KEYS query also finds the message id (Java indexes both under the topic); a uniq query does not find KEYS.
	if got, _, _ := s.QueryMessage("t", "k1", 32, 0, 1<<62, true); len(got) != 0 {
		t.Fatal("uniq query matched a KEYS word")
	}
	if got, _, _ := s.QueryMessage("nope", "u1", 32, 0, 1<<62, true); len(got) != 0 {
		t.Fatal("unknown topic matched")
	}
}

func TestIndexRebuiltAfterCrash(t *testing.T) {
	for _, damage := range []string{"lost-writes", "torn-entry", "deleted", "bad-sealed-file", "bad-slot-heads", "old-data-dir"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			o := withDir(smallIndex, dir)
			o.FlushMode = commitlog.FlushSync
			s, err := Open(o)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 150; i++ {
				if _, _, err := s.Put([]*message.Message{keyed("t", i)}); err != nil {
					t.Fatal(err)
				}
			}
			// A checkpoint half way, then more puts, then a crash: no final checkpoint, unwritten index entries lost.
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			for i := 150; i < 200; i++ {
				s.Put([]*message.Message{keyed("t", i)})
			}
			s.cl.Flush()
			close(s.stop)
			<-s.done
			s.cl.Close()
			s.closeQueues()
			s.idx.mu.Lock()
			s.idx.pending = nil // lost with the process
			s.idx.mu.Unlock()
			s.idx.close()
			idir := filepath.Join(dir, "index")
			names, _ := commitlog.OS{}.List(idir)
			switch damage {
			case "torn-entry":
				f, _ := os.OpenFile(filepath.Join(idir, names[len(names)-1]), os.O_APPEND|os.O_WRONLY, 0)
				f.Write([]byte("half an entry"))
				f.Close()
			case "deleted", "old-data-dir":
				os.RemoveAll(idir)
				if damage == "old-data-dir" {
					os.RemoveAll(filepath.Join(dir, "consumequeue"))
					os.Remove(filepath.Join(dir, "checkpoint"))
				}
			case "bad-sealed-file":
				os.Truncate(filepath.Join(idir, names[2]), 100)
			case "bad-slot-heads": // a seal's heads not fsynced before the crash: the trailer's CRC covers them
				f, _ := os.OpenFile(filepath.Join(idir, names[1]), os.O_RDWR, 0)
				st, _ := f.Stat()
				f.WriteAt([]byte{0xff}, st.Size()-idxTrailerSize-3)
				f.Close()
			}
			s2 := open(t, withDir(smallIndex, dir))
			if err := s2.Check(); err != nil {
				t.Fatal(err)
			}
			checkQueries(t, s2, 200)
			if _, _, err := s2.Put([]*message.Message{keyed("t", 200)}); err != nil {
				t.Fatal(err)
			}
			checkQueries(t, s2, 201)
		})
	}
}

func TestIndexRetention(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	o := withDir(smallIndex, t.TempDir())
	o.Clock, o.RetentionAge = fc, time.Hour
	s := open(t, o)
	for i := 0; i < 400; i++ {
		s.Put([]*message.Message{keyed("t", i)})
	}
	before := s.IndexStats().Files
	fc.SetTime(time.Now().Add(2 * time.Hour))
	if _, err := s.Clean(fc.Now()); err != nil {
		t.Fatal(err)
	}
	if after := s.IndexStats().Files; after >= before {
		t.Fatalf("retention kept %d of %d index files", after, before)
	}
	if got, _, _ := s.QueryMessage("t", "u0", 32, 0, 1<<62, true); len(got) != 0 {
		t.Fatal("a message removed by retention was returned")
	}
	if got, _, _ := s.QueryMessage("t", "u399", 32, 0, 1<<62, true); len(got) != 1 {
		t.Fatal("the newest message is gone")
	}
}

// The consistency check notices an index that lost an entry.
func TestIndexCheckCatchesLoss(t *testing.T) {
	s, err := Open(withDir(smallIndex, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 10; i++ {
		s.Put([]*message.Message{keyed("t", i)})
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.idx.mu.Lock()
	for i := range s.idx.heads {
		if s.idx.heads[i] != 0 {
			s.idx.heads[i] = 0 // drop a whole chain
			break
		}
	}
	s.idx.mu.Unlock()
	if err := s.Check(); err == nil {
		t.Fatal("check passed with a lost chain")
	}
}

// A disk that fills up while the index's buffered entries are written (the consume queues' writes still fit) fails
// the checkpoint with a half-written index file; after a crash there, the store reopens with the index cut back
// and rebuilt from the commit log.
func TestIndexPartialWriteThenCrash(t *testing.T) {
	dir := t.TempDir()
	ffs := commitlog.NewFaultFS(commitlog.OS{})
	o := withDir(Options{SegmentSize: 64 << 10, FS: ffs, FlushInterval: time.Hour}, dir)
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i++ {
		if _, _, err := s.Put([]*message.Message{keyed("t", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.cl.Flush(); err != nil {
		t.Fatal(err)
	}
	ffs.SetSpaceLeft(20*n + 3*idxEntrySize + 5) // the queue's 50 entries, then 3.2 index entries
	if err := s.Checkpoint(); err == nil {
		t.Fatal("checkpoint succeeded on a full disk")
	}
	close(s.stop)
	<-s.done
	s.cl.Close()
	s.closeQueues()
	s.idx.close()
	names, _ := commitlog.OS{}.List(filepath.Join(dir, "index"))
	if st, _ := os.Stat(filepath.Join(dir, "index", names[len(names)-1])); st.Size()%idxEntrySize == 0 {
		t.Fatalf("the index file is not torn (%d bytes)", st.Size())
	}
	s2 := open(t, withDir(Options{SegmentSize: 64 << 10}, dir))
	checkQueries(t, s2, n)
}

// BenchmarkIndexAdd is the index's share of a put: a message with a message id and two keys.
// go test ./mq/internal/store -run '^$' -bench IndexAdd -benchmem
func BenchmarkIndexAdd(b *testing.B) {
	x, _, err := openIndex(commitlog.OS{}, filepath.Join(b.TempDir(), "index"), DefaultIndexSlots, DefaultIndexEntries, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer x.close()
	props := message.FormatProperties(map[string]string{"UNIQ_KEY": "C000020209A40000000022fcf0900001", "KEYS": "order-1 tenant-acme", "TAGS": "created"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.add(int64(i)*1100, 1_700_000_000_000+int64(i), "orders", 0, props)
	}
}

// A trace message carries one key per traced message: hundreds, all indexed.
func TestIndexManyKeys(t *testing.T) {
	s := open(t, withDir(Options{SegmentSize: 1 << 20}, t.TempDir()))
	var ks []string
	for i := 0; i < 500; i++ {
		ks = append(ks, fmt.Sprintf("id-%03d", i))
	}
	props := message.FormatProperties(map[string]string{"KEYS": strings.Join(ks, " ")})
	if _, _, err := s.Put([]*message.Message{{Topic: "RMQ_SYS_TRACE_TOPIC", Body: []byte("records"), Properties: props,
		BornHost: netip.MustParseAddrPort("127.0.0.1:9")}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id-000", "id-063", "id-064", "id-499"} {
		if got, _, _ := s.QueryMessage("RMQ_SYS_TRACE_TOPIC", k, 32, 0, 1<<62, false); len(got) != 1 {
			t.Fatalf("key %s: %d messages", k, len(got))
		}
	}
}

// Segments deleted by the disk cap (in the send path) take their index files with them at the next Clean.
func TestIndexFollowsDiskCap(t *testing.T) {
	o := withDir(smallIndex, t.TempDir())
	o.SegmentSize, o.MaxDiskBytes = 4096, 8192
	s := open(t, o)
	for i := 0; i < 300; i++ {
		if _, _, err := s.Put([]*message.Message{keyed("t", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.IndexStats().Files
	if _, err := s.Clean(time.Now()); err != nil {
		t.Fatal(err)
	}
	if after := s.IndexStats().Files; after >= before || after > 8 { // ~55 records of 4 keys fit in 8 KiB: ~6 files of 40
		t.Fatalf("%d index files kept of %d, for a log of two 4 KiB segments", after, before)
	}
	if got, _, _ := s.QueryMessage("t", "u299", 32, 0, 1<<62, true); len(got) != 1 {
		t.Fatal("the newest message is not found")
	}
}
