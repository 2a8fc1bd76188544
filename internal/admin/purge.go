package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/problem"
)

// PurgeRequest is the body of POST /cache/purge: one URL of a route, every
// URL under a path prefix of a route, or everything a route stored.
type PurgeRequest struct {
	// Route names the route whose stored responses go. Required.
	Route string `json:"route"`
	// URL is one path with its query, as clients request it
	// ("/api/products?category=books").
	URL string `json:"url"`
	// Prefix removes every URL whose path starts with it ("/api/products").
	Prefix string `json:"prefix"`
}

// maxPurgeBody bounds the request body of POST /cache/purge.
const maxPurgeBody = 64 << 10

func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	if a.o.Purge == nil {
		problem.Write(w, r, http.StatusNotFound, "", "no route caches responses")
		return
	}
	var req PurgeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPurgeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem.Write(w, r, http.StatusBadRequest, "",
			`the body must be JSON like {"route":"products","url":"/api/products?category=books"}, {"route":"products","prefix":"/api/products"} or {"route":"products"}`)
		return
	}
	var msg string
	switch {
	case req.Route == "":
		msg = "route is required"
	case req.URL != "" && req.Prefix != "":
		msg = "set url or prefix, not both"
	case req.URL != "" && !strings.HasPrefix(req.URL, "/"):
		msg = `url must be a path starting with "/", with its query if any`
	case req.Prefix != "" && !strings.HasPrefix(req.Prefix, "/"):
		msg = `prefix must be a path starting with "/"`
	}
	if msg != "" {
		problem.Write(w, r, http.StatusBadRequest, "", msg)
		return
	}
	n, err := a.o.Purge(req)
	if err != nil {
		var unknown *UnknownRouteError
		if errors.As(err, &unknown) {
			problem.Write(w, r, http.StatusNotFound, "", err.Error())
			return
		}
		// Store errors (Redis unreachable) are reported, not hidden: the
		// operator must know the purge did not complete.
		problem.Write(w, r, http.StatusBadGateway, "", "purge did not complete: "+err.Error())
		return
	}
	writeJSON(w, r, http.StatusOK, struct {
		Purged int `json:"purged"`
	}{n})
}

// UnknownRouteError is returned by Options.Purge for a route the config
// does not have.
type UnknownRouteError struct{ Route string }

func (e *UnknownRouteError) Error() string { return "no route named " + e.Route }
