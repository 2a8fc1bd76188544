package demo

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// maxAmount bounds a charge, in minor units (cents).
const maxAmount = 100_000_000

// chargeRequest is the body of POST /charge. Amount is in minor units
// (cents): 2500 with EUR is 25.00 euros.
type chargeRequest struct {
	OrderID  int64  `json:"order_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// chargeBody answers a successful charge.
type chargeBody struct {
	meta
	ChargeID  string    `json:"charge_id"`
	Status    string    `json:"status"`
	OrderID   int64     `json:"order_id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"created_at"`
}

// payment is the demo payment service: POST /charge always succeeds for a
// valid request. No money moves.
type payment struct {
	service
	now     func() time.Time
	charges atomic.Int64
}

// newPayment returns the payment service's handler. now is its clock.
func newPayment(now func() time.Time) http.Handler {
	p := &payment{service: service{name: "payment"}, now: now}
	mux := p.newMux()
	p.handle(mux, "/charge", map[string]http.HandlerFunc{http.MethodPost: p.charge})
	return mux
}

// charge validates the request and answers with a succeeded charge.
func (p *payment) charge(w http.ResponseWriter, r *http.Request) {
	var req chargeRequest
	if !p.decode(w, r, &req) {
		return
	}
	if problems := validateCharge(req); len(problems) > 0 {
		p.fail(w, r, http.StatusUnprocessableEntity, "invalid charge", problems...)
		return
	}
	n := p.charges.Add(1)
	p.reply(w, http.StatusOK, chargeBody{
		meta:      p.meta(r),
		ChargeID:  fmt.Sprintf("ch_%06d", n),
		Status:    "succeeded",
		OrderID:   req.OrderID,
		Amount:    req.Amount,
		Currency:  req.Currency,
		CreatedAt: p.now().UTC().Truncate(time.Second),
	})
}

// validateCharge returns every problem with req.
func validateCharge(req chargeRequest) []string {
	var problems []string
	if req.OrderID < 1 {
		problems = append(problems, "order_id is required and must be a positive integer")
	}
	if req.Amount < 1 || req.Amount > maxAmount {
		problems = append(problems, fmt.Sprintf("amount is required and must be between 1 and %d (minor units, e.g. cents)", maxAmount))
	}
	if !validCurrency(req.Currency) {
		problems = append(problems, "currency is required and must be a three-letter ISO 4217 code such as EUR or USD")
	}
	return problems
}
