package fooddelivery

import (
	"errors"
	"strings"
	"testing"
)

const seedOrder = `{"orderId":"123214342","orderStatus":"completed","userPhoneNo":"152122131323","prodId":"2141412","prodName":"test","chargeMoney":"30.0","chargeTime":"1584932320","finishTime":"1584932320"}`

func TestParseSeedOrder(t *testing.T) {
	o, err := ParseOrder([]byte(seedOrder))
	if err != nil {
		t.Fatalf("the seed's order is rejected: %v", err)
	}
	want := Order{OrderID: "123214342", OrderStatus: "completed", UserPhoneNo: "152122131323", ProdID: "2141412",
		ProdName: "test", ChargeMoney: "30.0", ChargeTime: "1584932320", FinishTime: "1584932320"}
	if o != want {
		t.Fatalf("parsed %+v, want %+v", o, want)
	}
}

func TestParseOrderRejectsNamingTheField(t *testing.T) {
	cases := []struct {
		name, from, to, field string
	}{
		{"missing id", `"orderId":"123214342"`, `"orderId":""`, "order.orderId"},
		{"id with spaces", `"orderId":"123214342"`, `"orderId":"12 34"`, "order.orderId"},
		{"unknown status", `"completed"`, `"teleported"`, "order.orderStatus"},
		{"phone letters", `"152122131323"`, `"call-me"`, "order.userPhoneNo"},
		{"blank product", `"prodName":"test"`, `"prodName":"  "`, "order.prodName"},
		{"money not a number", `"30.0"`, `"thirty"`, "order.chargeMoney"},
		{"negative money", `"30.0"`, `"-30.0"`, "order.chargeMoney"},
		{"three decimals", `"30.0"`, `"30.005"`, "order.chargeMoney"},
		{"charge time text", `"chargeTime":"1584932320"`, `"chargeTime":"yesterday"`, "order.chargeTime"},
		{"finish before charge", `"finishTime":"1584932320"`, `"finishTime":"1584932319"`, "order.finishTime"},
		{"unknown field", `"prodId"`, `"tip":"1","prodId"`, "unknown field"},
		{"number not string", `"30.0"`, `30.0`, "chargeMoney"},
		{"trailing data", `"1584932320"}`, `"1584932320"} {}`, "after the JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Replace(seedOrder, c.from, c.to, 1)
			if in == seedOrder {
				t.Fatalf("%q not in the seed order", c.from)
			}
			_, err := ParseOrder([]byte(in))
			if !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("err = %v, want ErrInvalidOrder", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("err = %v, want it to name %s", err, c.field)
			}
		})
	}
	for _, in := range []string{"", "   ", "null", "[]", "{", `"order"`, strings.Repeat(" ", MaxOrderBytes+1)} {
		if _, err := ParseOrder([]byte(in)); !errors.Is(err, ErrInvalidOrder) {
			t.Errorf("ParseOrder(%.20q) = %v, want ErrInvalidOrder", in, err)
		}
	}
}

func TestParseOrderReportsEveryBadField(t *testing.T) {
	_, err := ParseOrder([]byte(`{"orderId":"","orderStatus":"x","userPhoneNo":"1","prodId":"","prodName":"","chargeMoney":"","chargeTime":"","finishTime":""}`))
	for _, f := range []string{"orderId", "orderStatus", "userPhoneNo", "prodId", "prodName", "chargeMoney", "chargeTime", "finishTime"} {
		if err == nil || !strings.Contains(err.Error(), "order."+f) {
			t.Errorf("error %v does not name order.%s", err, f)
		}
	}
}

func TestParseCents(t *testing.T) {
	for in, want := range map[string]int64{"30": 3000, "30.0": 3000, "30.5": 3050, "30.25": 3025, "0": 0, "0.01": 1,
		"999999999.99": 99999999999} {
		got, err := ParseCents(in)
		if err != nil || got != want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".5", "5.", "1e3", "+1", "1,5", "1000000000", "NaN"} {
		if _, err := ParseCents(in); err == nil {
			t.Errorf("ParseCents(%q) accepted", in)
		}
	}
}

// FuzzParseOrder: order bodies come off the network. Whatever the bytes, parsing must not panic, a failure must
// wrap ErrInvalidOrder, and an accepted order must re-validate and have an amount.
func FuzzParseOrder(f *testing.F) {
	f.Add([]byte(seedOrder))
	f.Add([]byte(`{"orderId":"1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOrder(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("error does not wrap ErrInvalidOrder: %v", err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted order does not validate: %v", err)
		}
		if _, err := ParseCents(o.ChargeMoney); err != nil {
			t.Fatalf("accepted order has bad amount: %v", err)
		}
	})
}

// FuzzLooseOrderID: the dead-letter endpoint reads the orderId out of whatever body failed. It must never panic and
// never return more than 64 bytes.
func FuzzLooseOrderID(f *testing.F) {
	f.Add([]byte(seedOrder))
	f.Add([]byte(`{"orderId":12345}`))
	f.Add([]byte(`{"orderId":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if id := looseOrderID(data); len(id) > 64 {
			t.Fatalf("id of %d bytes", len(id))
		}
	})
}
