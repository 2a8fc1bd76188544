package demo

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// productsCacheControl is the Cache-Control of every product list: any
// cache, the gateway's included, may keep it for 60 seconds.
const productsCacheControl = "public, max-age=60"

// product is one item of the demo catalogue. Prices are in minor units
// (cents).
type product struct {
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
}

// productListBody answers GET /products. GeneratedAt is when the service
// built the answer and Served how many product lists it has built so far,
// this one included: a response served from a cache repeats both.
type productListBody struct {
	meta
	Category    string    `json:"category,omitempty"`
	Count       int       `json:"count"`
	Products    []product `json:"products"`
	GeneratedAt time.Time `json:"generated_at"`
	Served      int64     `json:"served"`
}

// products is the demo products service: a fixed, read-only catalogue.
//
//	GET /products                  every product
//	GET /products?category=books   the products of one category
//
// A category the catalogue does not have is a 404 that lists the ones it
// has. Lists carry Cache-Control: public, max-age=60.
type products struct {
	service
	now     func() time.Time
	catalog []product
	served  atomic.Int64
	mux     *http.ServeMux
}

// newProducts returns the products service over the seed catalogue. now
// is its clock.
func newProducts(now func() time.Time) *products {
	p := &products{service: service{name: "products"}, now: now, catalog: seedProducts()}
	p.mux = p.newMux()
	p.handle(p.mux, "/products", map[string]http.HandlerFunc{http.MethodGet: p.list})
	return p
}

// ServeHTTP serves GET /products and GET /health.
func (p *products) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// list answers GET /products, filtered by the category query parameter.
func (p *products) list(w http.ResponseWriter, r *http.Request) {
	category := strings.TrimSpace(r.URL.Query().Get("category"))
	if category != "" && !slices.Contains(p.categories(), category) {
		p.fail(w, r, http.StatusNotFound, "unknown category", "the categories are "+strings.Join(p.categories(), ", "))
		return
	}
	list := make([]product, 0, len(p.catalog))
	for _, it := range p.catalog {
		if category == "" || it.Category == category {
			list = append(list, it)
		}
	}
	w.Header().Set("Cache-Control", productsCacheControl)
	p.reply(w, http.StatusOK, productListBody{
		meta:        p.meta(r),
		Category:    category,
		Count:       len(list),
		Products:    list,
		GeneratedAt: p.now().UTC().Truncate(time.Millisecond),
		Served:      p.served.Add(1),
	})
}

// categories returns the catalogue's categories, sorted.
func (p *products) categories() []string {
	var out []string
	for _, it := range p.catalog {
		if !slices.Contains(out, it.Category) {
			out = append(out, it.Category)
		}
	}
	slices.Sort(out)
	return out
}

// seedProducts returns the demo catalogue: twenty products in four
// categories.
func seedProducts() []product {
	item := func(sku, name, category string, price int64) product {
		return product{SKU: sku, Name: name, Category: category, Price: price, Currency: "EUR"}
	}
	return []product{
		item("BOOK-01", "The Pragmatic Gateway", "books", 3990),
		item("BOOK-02", "HTTP Caching in Practice", "books", 2950),
		item("BOOK-03", "Designing Distributed Systems", "books", 4200),
		item("BOOK-04", "A Field Guide to Proxies", "books", 1999),
		item("BOOK-05", "Go in Production", "books", 3499),
		item("MUG-01", "Portico Mug", "kitchen", 1250),
		item("MUG-02", "Espresso Cup, set of two", "kitchen", 1800),
		item("KTCH-03", "Pour-over Coffee Maker", "kitchen", 3400),
		item("KTCH-04", "Tea Infuser", "kitchen", 650),
		item("KTCH-05", "Cast Iron Teapot", "kitchen", 4500),
		item("ELEC-01", "USB-C Cable, 2 m", "electronics", 1299),
		item("ELEC-02", "Mechanical Keyboard", "electronics", 8999),
		item("ELEC-03", "Noise-cancelling Headphones", "electronics", 19900),
		item("ELEC-04", "Wireless Mouse", "electronics", 2499),
		item("ELEC-05", "27-inch Monitor", "electronics", 27900),
		item("GARD-01", "Watering Can", "garden", 1599),
		item("GARD-02", "Pruning Shears", "garden", 2299),
		item("GARD-03", "Herb Seeds, assorted", "garden", 499),
		item("GARD-04", "Raised Garden Bed", "garden", 12900),
		item("GARD-05", "Garden Gloves", "garden", 899),
	}
}
