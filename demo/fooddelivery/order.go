package fooddelivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidOrder is wrapped by every validation failure of an order message. The order service answers it with 400,
// which Knative does not retry, so a malformed order goes to the dead-letter sink instead of looping.
var ErrInvalidOrder = errors.New("invalid order")

// MaxOrderBytes bounds an order message; the seed's order is about 200 bytes.
const MaxOrderBytes = 64 << 10

// Order is the seed's order message. Every field is a JSON string, as in the seed:
//
//	{"orderId":"123214342","orderStatus":"completed","userPhoneNo":"152122131323","prodId":"2141412",
//	 "prodName":"test","chargeMoney":"30.0","chargeTime":"1584932320","finishTime":"1584932320"}
type Order struct {
	OrderID     string `json:"orderId"`
	OrderStatus string `json:"orderStatus"`
	UserPhoneNo string `json:"userPhoneNo"`
	ProdID      string `json:"prodId"`
	ProdName    string `json:"prodName"`
	ChargeMoney string `json:"chargeMoney"`
	ChargeTime  string `json:"chargeTime"`
	FinishTime  string `json:"finishTime"`
}

// OrderStatuses are the accepted values of orderStatus.
func OrderStatuses() []string {
	return []string{"created", "paid", "accepted", "delivering", "completed", "cancelled"}
}

// FieldError is one validation failure, naming the JSON field of the order.
type FieldError struct {
	Field  string // JSON field name, e.g. "chargeMoney"
	Value  string // the offending value, truncated
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("order.%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("order.%s: %q %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes every FieldError an ErrInvalidOrder.
func (e *FieldError) Unwrap() error { return ErrInvalidOrder }

// ParseOrder decodes one order message strictly (unknown fields, trailing data and non-string values are errors)
// and validates it. Every error wraps ErrInvalidOrder.
func ParseOrder(data []byte) (Order, error) {
	var o Order
	if len(data) > MaxOrderBytes {
		return o, fmt.Errorf("%w: order message is %d bytes, more than %d", ErrInvalidOrder, len(data), MaxOrderBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return o, fmt.Errorf("%w: empty order message", ErrInvalidOrder)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return Order{}, fmt.Errorf("%w: order message is not the order JSON: %w", ErrInvalidOrder, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Order{}, fmt.Errorf("%w: order message has data after the JSON object", ErrInvalidOrder)
	}
	if err := o.Validate(); err != nil {
		return Order{}, err
	}
	return o, nil
}

// Validate checks every field and returns all failures joined; nil when the order is valid.
func (o Order) Validate() error {
	var errs []error
	bad := func(field, value, reason string) {
		if len(value) > 40 {
			value = value[:40] + "..."
		}
		errs = append(errs, &FieldError{Field: field, Value: value, Reason: reason})
	}
	switch {
	case o.OrderID == "":
		bad("orderId", "", "is required")
	case len(o.OrderID) > 64 || !isToken(o.OrderID):
		bad("orderId", o.OrderID, "must be 1-64 letters, digits, '-' or '_'")
	}
	if o.OrderStatus == "" {
		bad("orderStatus", "", "is required")
	} else if !slices.Contains(OrderStatuses(), o.OrderStatus) {
		bad("orderStatus", o.OrderStatus, "must be one of "+strings.Join(OrderStatuses(), ", "))
	}
	if n := len(o.UserPhoneNo); n < 5 || n > 20 || !isDigits(o.UserPhoneNo) {
		bad("userPhoneNo", o.UserPhoneNo, "must be 5-20 digits")
	}
	if o.ProdID == "" || len(o.ProdID) > 64 || !isToken(o.ProdID) {
		bad("prodId", o.ProdID, "must be 1-64 letters, digits, '-' or '_'")
	}
	if strings.TrimSpace(o.ProdName) == "" || len(o.ProdName) > 200 {
		bad("prodName", o.ProdName, "must be 1-200 characters, not blank")
	}
	if _, err := ParseCents(o.ChargeMoney); err != nil {
		bad("chargeMoney", o.ChargeMoney, err.Error())
	}
	charge, errC := parseUnix(o.ChargeTime)
	if errC != nil {
		bad("chargeTime", o.ChargeTime, errC.Error())
	}
	finish, errF := parseUnix(o.FinishTime)
	if errF != nil {
		bad("finishTime", o.FinishTime, errF.Error())
	}
	if errC == nil && errF == nil && finish < charge {
		bad("finishTime", o.FinishTime, "is before chargeTime")
	}
	return errors.Join(errs...)
}

// ParseCents parses a non-negative decimal money amount with at most two decimals ("30", "30.0", "30.25") into
// cents. Amounts are kept as integers so sums are exact.
func ParseCents(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("is required")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !isDigits(whole) || (hasDot && (frac == "" || len(frac) > 2 || !isDigits(frac))) {
		return 0, errors.New("must be a non-negative amount like 30.0 (at most two decimals)")
	}
	if len(whole) > 9 {
		return 0, errors.New("is more than 999999999")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, nil
}

func parseUnix(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("is required")
	}
	if len(s) > 12 || !isDigits(s) {
		return 0, errors.New("must be Unix seconds")
	}
	return strconv.ParseInt(s, 10, 64)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
