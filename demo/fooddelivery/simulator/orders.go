package simulator

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/tide-run/tide/demo/fooddelivery"
)

// menu is what customers order; prices are kept as the seed's decimal strings.
var menu = [...]struct{ id, name, price string }{
	{"2141412", "beef noodles", "30.0"},
	{"2141413", "congee and youtiao", "12.5"},
	{"2141414", "kung pao chicken", "38.0"},
	{"2141415", "dumplings (12)", "24.0"},
	{"2141416", "mapo tofu", "26.5"},
	{"2141417", "milk tea", "15.0"},
	{"2141418", "fried rice", "22.0"},
	{"2141419", "hot pot set", "88.0"},
}

// OrderID is the orderId of the n-th order of a run: the run id (Unix seconds of its start) and a 7-digit sequence,
// so ids are unique across runs that share one order database.
func OrderID(runID int64, n int) string { return fmt.Sprintf("%d%07d", runID, n) }

// makeOrder builds the n-th order of a run deterministically (a hash of the id picks the customer and dish).
// malformed orders carry an invalid chargeMoney but a valid orderId, so their dead letters can be matched.
func makeOrder(runID int64, n int, at time.Time, malformed bool) fooddelivery.Order {
	id := OrderID(runID, n)
	h := fnv.New64a()
	h.Write([]byte(id))
	x := h.Sum64()
	dish := menu[x%uint64(len(menu))]
	phone := fmt.Sprintf("1%02d%08d", 30+(x>>8)%60, (x>>16)%100000000)
	charge := at.Unix()
	o := fooddelivery.Order{
		OrderID: id, OrderStatus: "completed", UserPhoneNo: phone, ProdID: dish.id, ProdName: dish.name,
		ChargeMoney: dish.price, ChargeTime: strconv.FormatInt(charge, 10),
		FinishTime: strconv.FormatInt(charge+int64(600+(x>>40)%1800), 10),
	}
	if malformed {
		o.ChargeMoney = "free"
	}
	return o
}
