package fooddelivery

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func testOrder(id string) Order {
	return Order{OrderID: id, OrderStatus: "completed", UserPhoneNo: "152122131323", ProdID: "2141412",
		ProdName: "noodles", ChargeMoney: "30.5", ChargeTime: "1584932320", FinishTime: "1584932330"}
}

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), StoreOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSavesOnceAndCountsDuplicates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "orders.db")
	fc := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	s, err := OpenStore(ctx, StoreOptions{Path: path, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	born := time.Unix(1_699_999_999, 500_000_000)
	ins, err := s.SaveOrder(ctx, testOrder("o-1"), OrderMeta{EventID: "e1", EventSource: "src", Born: born, Instance: "i1"})
	if err != nil || !ins {
		t.Fatalf("first save: inserted=%v err=%v", ins, err)
	}
	for i := 0; i < 2; i++ {
		ins, err = s.SaveOrder(ctx, testOrder("o-1"), OrderMeta{EventID: "e1-again", Instance: "i2"})
		if err != nil || ins {
			t.Fatalf("redelivery %d: inserted=%v err=%v, want ignored", i, ins, err)
		}
	}
	if _, err := s.SaveDeadLetter(ctx, DeadLetter{EventID: "src#bad", OrderID: "o-9", ErrorCode: "400"}); err != nil {
		t.Fatal(err)
	}
	if ins, err := s.SaveDeadLetter(ctx, DeadLetter{EventID: "src#bad"}); err != nil || ins {
		t.Fatalf("repeated dead letter: inserted=%v err=%v", ins, err)
	}
	if o, d, err := s.CountPrefix(ctx, "o-"); err != nil || o != 1 || d != 1 {
		t.Fatalf("CountPrefix(o-) = %d, %d, %v; want 1, 1", o, d, err)
	}
	if o, d, err := s.CountPrefix(ctx, "o_"); err != nil || o != 0 || d != 0 {
		t.Fatalf("CountPrefix(o_) = %d, %d, %v; '_' must not be a wildcard", o, d, err)
	}
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c != (Counts{Orders: 1, Duplicates: 2, DeadLetters: 1}) {
		t.Fatalf("counts = %+v", c)
	}
	s.Close()

	// Reopen: everything is durable, and the first arrival's metadata is kept.
	s = openTestStore(t, path)
	orders, err := s.Orders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 {
		t.Fatalf("orders = %+v", orders)
	}
	o := orders[0]
	if o.OrderID != "o-1" || o.ChargeCents != 3050 || o.EventID != "e1" || o.Instance != "i1" || o.Duplicates != 2 ||
		!o.Born.Equal(born) || !o.Stored.Equal(fc.Now()) {
		t.Fatalf("stored order = %+v", o)
	}
	dls, err := s.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || dls[0].OrderID != "o-9" || dls[0].ErrorCode != "400" {
		t.Fatalf("dead letters = %+v, %v", dls, err)
	}
}

// Several Store handles on one file stand in for several processes inside this test (each has its own connection
// pool, so they contend on SQLite's file locks exactly as processes do); the real multi-process test is in
// examples/food-delivery/order-service.
func TestStoreConcurrentWritersLoseNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "orders.db")
	const writers, orders = 4, 150
	stores := make([]*Store, writers)
	for i := range stores {
		stores[i] = openTestStore(t, path)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Every writer writes every order: each is inserted once and counted as a duplicate writers-1 times.
			for i := 0; i < orders; i++ {
				id := fmt.Sprintf("o-%d", (i+w*37)%orders)
				if _, err := stores[w].SaveOrder(ctx, testOrder(id), OrderMeta{Instance: fmt.Sprint(w)}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := stores[0].Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Orders != orders || c.Duplicates != orders*(writers-1) {
		t.Fatalf("counts = %+v, want %d orders and %d duplicates", c, orders, orders*(writers-1))
	}
}

func TestDefaultDBPath(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if got := DefaultDBPath(get); got != filepath.Join(".tide", "food-delivery", "orders.db") {
		t.Errorf("default = %s", got)
	}
	env["TIDE_DATA_DIR"] = "/var/tide"
	if got := DefaultDBPath(get); got != "/var/tide/food-delivery/orders.db" {
		t.Errorf("with TIDE_DATA_DIR = %s", got)
	}
	env["ORDER_DB"] = "/tmp/x.db"
	if got := DefaultDBPath(get); got != "/tmp/x.db" {
		t.Errorf("with ORDER_DB = %s", got)
	}
}
