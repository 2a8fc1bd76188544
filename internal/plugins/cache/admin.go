package cache

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/pipeline"
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

// purgeEndpoint is the admin API's POST /cache/purge.
var purgeEndpoint = pipeline.AdminEndpoint{
	Method:  http.MethodPost,
	Path:    "/cache/purge",
	Write:   true,
	Summary: `remove stored responses: {"route":R,"url":U}, {"route":R,"prefix":P} or {"route":R}; answers {"purged":N}`,
	Serve:   servePurge,
}

func servePurge(r *http.Request, env pipeline.AdminEnv) (any, error) {
	var req PurgeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPurgeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badPurge(`the body must be JSON like {"route":"products","url":"/api/products?category=books"}, {"route":"products","prefix":"/api/products"} or {"route":"products"}`)
	}
	switch {
	case req.Route == "":
		return nil, badPurge("route is required")
	case req.URL != "" && req.Prefix != "":
		return nil, badPurge("set url or prefix, not both")
	case req.URL != "" && !strings.HasPrefix(req.URL, "/"):
		return nil, badPurge(`url must be a path starting with "/", with its query if any`)
	case req.Prefix != "" && !strings.HasPrefix(req.Prefix, "/"):
		return nil, badPurge(`prefix must be a path starting with "/"`)
	}
	if env.HasRoute == nil || !env.HasRoute(req.Route) {
		return nil, &pipeline.AdminError{Status: http.StatusNotFound, Detail: "no route named " + req.Route}
	}
	path, query, prefix := req.URL, "", false
	if req.Prefix != "" {
		path, prefix = req.Prefix, true
	} else if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	n, err := Purge(env.Shared, req.Route, path, query, prefix)
	if err != nil {
		// Store errors (Redis unreachable) are reported, not hidden: the
		// operator must know the purge did not complete.
		return nil, fmt.Errorf("purge did not complete: %w", err)
	}
	return struct {
		Purged int `json:"purged"`
	}{n}, nil
}

func badPurge(detail string) error {
	return &pipeline.AdminError{Status: http.StatusBadRequest, Detail: detail}
}
