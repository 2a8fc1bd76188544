package demo

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ordersPublicPrefix is where demo.yaml publishes the orders service (with
// strip_prefix). The service uses it to build Location headers when the
// gateway sends no X-Forwarded-Prefix; a test keeps it in sync with the
// config.
const ordersPublicPrefix = "/api/orders"

// Limits of the orders store and of a new order.
const (
	maxOrders     = 10000
	maxItems      = 50
	maxQuantity   = 1000
	maxUnitPrice  = 100_000_000 // minor units (cents)
	maxTextLength = 200
)

// lineItem is one line of an order. Prices are in minor units (cents).
type lineItem struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// order is one order of the demo store. Orders are never changed after
// they are stored, so they can be read outside the lock.
type order struct {
	ID        int64      `json:"id"`
	Customer  string     `json:"customer"`
	Status    string     `json:"status"`
	Currency  string     `json:"currency"`
	Items     []lineItem `json:"items"`
	Total     int64      `json:"total"`
	CreatedAt time.Time  `json:"created_at"`
}

// createOrderRequest is the body of POST /. Customer defaults to the
// X-User-ID header, then to "guest"; Currency defaults to "EUR".
type createOrderRequest struct {
	Customer string     `json:"customer"`
	Currency string     `json:"currency"`
	Items    []lineItem `json:"items"`
}

// orderListBody answers GET /.
type orderListBody struct {
	meta
	Count  int     `json:"count"`
	Orders []order `json:"orders"`
}

// orderBody answers GET /{id} and POST /.
type orderBody struct {
	meta
	Order order `json:"order"`
}

// orderStore is the orders' in-memory database. Every replica of the
// orders service reads and writes the same store, as replicas of one
// service share one database.
type orderStore struct {
	mu     sync.Mutex
	list   []order // ascending by ID
	nextID int64
}

// newOrderStore returns a store seeded with sample orders.
func newOrderStore() *orderStore {
	st := &orderStore{list: seedOrders()}
	st.nextID = st.list[len(st.list)-1].ID + 1
	return st
}

// all returns every order. The returned slice is not changed later.
func (st *orderStore) all() []order {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.list[:len(st.list):len(st.list)]
}

// find returns the order with id.
func (st *orderStore) find(id int64) (order, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	lo, hi := 0, len(st.list)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if st.list[mid].ID < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(st.list) && st.list[lo].ID == id {
		return st.list[lo], true
	}
	return order{}, false
}

// add stores ord under the next id and returns it with that id; it
// reports false, storing nothing, when the store holds maxOrders.
func (st *orderStore) add(ord order) (order, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.list) >= maxOrders {
		return order{}, false
	}
	ord.ID = st.nextID
	st.nextID++
	st.list = append(st.list, ord)
	return ord, true
}

// orders is one replica of the demo orders service: GET /, GET /{id} and
// POST / over a store it may share with other replicas.
type orders struct {
	service
	http.Handler // the routes below
	now          func() time.Time
	store        *orderStore
}

// newOrders returns the orders replica named replica over store. now is
// its clock.
func newOrders(replica string, store *orderStore, now func() time.Time) *orders {
	o := &orders{service: service{name: "orders", replica: replica}, now: now, store: store}
	mux := o.newMux()
	o.handle(mux, "/{$}", map[string]http.HandlerFunc{
		http.MethodGet:  o.listOrders,
		http.MethodPost: o.create,
	})
	o.handle(mux, "/{id}", map[string]http.HandlerFunc{http.MethodGet: o.get})
	o.Handler = mux
	return o
}

// listOrders answers GET / with every order.
func (o *orders) listOrders(w http.ResponseWriter, r *http.Request) {
	list := o.store.all()
	o.reply(w, http.StatusOK, orderListBody{meta: o.meta(r), Count: len(list), Orders: list})
}

// get answers GET /{id}; unknown or malformed ids are 404.
func (o *orders) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		if ord, ok := o.store.find(id); ok {
			o.reply(w, http.StatusOK, orderBody{meta: o.meta(r), Order: ord})
			return
		}
	}
	o.fail(w, r, http.StatusNotFound, "order not found", "no order has id "+strconv.Quote(r.PathValue("id")))
}

// create answers POST / with 201, the new order and its Location.
func (o *orders) create(w http.ResponseWriter, r *http.Request) {
	var req createOrderRequest
	if !o.decode(w, r, &req) {
		return
	}
	if req.Customer == "" {
		req.Customer = r.Header.Get("X-User-ID")
	}
	if req.Customer == "" {
		req.Customer = "guest"
	}
	if req.Currency == "" {
		req.Currency = "EUR"
	}
	if problems := validateOrder(&req); len(problems) > 0 {
		o.fail(w, r, http.StatusUnprocessableEntity, "invalid order", problems...)
		return
	}
	ord := order{
		Customer:  req.Customer,
		Status:    "pending",
		Currency:  req.Currency,
		Items:     req.Items,
		CreatedAt: o.now().UTC().Truncate(time.Second),
	}
	for _, it := range ord.Items {
		ord.Total += int64(it.Quantity) * it.UnitPrice
	}

	ord, ok := o.store.add(ord)
	if !ok {
		o.fail(w, r, http.StatusInsufficientStorage, "order store is full",
			fmt.Sprintf("the demo keeps at most %d orders; restart it to start over", maxOrders))
		return
	}
	w.Header().Set("Location", publicPrefix(r)+"/"+strconv.FormatInt(ord.ID, 10))
	o.reply(w, http.StatusCreated, orderBody{meta: o.meta(r), Order: ord})
}

// publicPrefix is the path prefix clients reach the orders service under:
// X-Forwarded-Prefix when the gateway sends a plausible one, else the
// prefix demo.yaml uses.
func publicPrefix(r *http.Request) string {
	p := strings.TrimSuffix(r.Header.Get("X-Forwarded-Prefix"), "/")
	if strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\?#\r\n") {
		return p
	}
	return ordersPublicPrefix
}

// validateOrder fills item defaults and returns every problem with req.
func validateOrder(req *createOrderRequest) []string {
	var problems []string
	if len(req.Customer) > maxTextLength {
		problems = append(problems, fmt.Sprintf("customer must be at most %d bytes", maxTextLength))
	}
	if !validCurrency(req.Currency) {
		problems = append(problems, "currency must be a three-letter ISO 4217 code such as EUR or USD")
	}
	switch {
	case len(req.Items) == 0:
		problems = append(problems, "items must list at least one item")
	case len(req.Items) > maxItems:
		problems = append(problems, fmt.Sprintf("items must list at most %d items", maxItems))
	}
	for i := range req.Items {
		it := &req.Items[i]
		if it.Name == "" {
			it.Name = it.SKU
		}
		at := "items[" + strconv.Itoa(i) + "]."
		if it.SKU == "" || len(it.SKU) > maxTextLength {
			problems = append(problems, fmt.Sprintf("%ssku is required, at most %d bytes", at, maxTextLength))
		}
		if len(it.Name) > maxTextLength {
			problems = append(problems, fmt.Sprintf("%sname must be at most %d bytes", at, maxTextLength))
		}
		if it.Quantity < 1 || it.Quantity > maxQuantity {
			problems = append(problems, fmt.Sprintf("%squantity must be between 1 and %d", at, maxQuantity))
		}
		if it.UnitPrice < 1 || it.UnitPrice > maxUnitPrice {
			problems = append(problems, fmt.Sprintf("%sunit_price must be between 1 and %d (minor units, e.g. cents)", at, maxUnitPrice))
		}
	}
	return problems
}

// seedOrders returns the sample orders the store starts with.
func seedOrders() []order {
	var (
		keyboard = lineItem{SKU: "KB-104", Name: "Mechanical keyboard", UnitPrice: 8900}
		mouse    = lineItem{SKU: "MS-220", Name: "Wireless mouse", UnitPrice: 2999}
		monitor  = lineItem{SKU: "MON-27", Name: "27-inch monitor", UnitPrice: 32900}
		cable    = lineItem{SKU: "CBL-USBC", Name: "USB-C cable, 2 m", UnitPrice: 1299}
		desk     = lineItem{SKU: "DSK-120", Name: "Standing desk", UnitPrice: 44900}
		lamp     = lineItem{SKU: "LMP-08", Name: "Desk lamp", UnitPrice: 3450}
		phones   = lineItem{SKU: "HDP-30", Name: "Noise-cancelling headphones", UnitPrice: 19900}
		webcam   = lineItem{SKU: "CAM-4K", Name: "4K webcam", UnitPrice: 11900}
		mug      = lineItem{SKU: "MUG-01", Name: "Portico mug", UnitPrice: 1250}
	)
	qty := func(it lineItem, n int) lineItem { it.Quantity = n; return it }
	seed := []struct {
		customer, status string
		items            []lineItem
	}{
		{"alice", "delivered", []lineItem{qty(keyboard, 1), qty(mouse, 1), qty(cable, 2)}},
		{"bob", "delivered", []lineItem{qty(monitor, 2), qty(cable, 2)}},
		{"alice", "shipped", []lineItem{qty(desk, 1), qty(lamp, 1)}},
		{"bob", "shipped", []lineItem{qty(phones, 1), qty(mug, 2), qty(cable, 1)}},
		{"alice", "paid", []lineItem{qty(webcam, 1), qty(lamp, 2)}},
		{"bob", "paid", []lineItem{qty(keyboard, 1), qty(mouse, 2), qty(mug, 1)}},
		{"alice", "pending", []lineItem{qty(monitor, 1), qty(cable, 3), qty(mug, 4)}},
		{"bob", "cancelled", []lineItem{qty(desk, 1), qty(webcam, 1)}},
	}
	start := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)
	out := make([]order, len(seed))
	for i, s := range seed {
		out[i] = order{
			ID:        int64(i + 1),
			Customer:  s.customer,
			Status:    s.status,
			Currency:  "EUR",
			Items:     s.items,
			CreatedAt: start.Add(time.Duration(i) * 26 * time.Hour),
		}
		for _, it := range s.items {
			out[i].Total += int64(it.Quantity) * it.UnitPrice
		}
	}
	return out
}
