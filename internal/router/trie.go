package router

import (
	"net/http"
	"slices"
	"strings"
)

// node is one path segment in the prefix trie. The root stands for the
// empty path; its child "api" stands for "/api", whose child "orders"
// stands for "/api/orders".
//
// A trie rather than a map of whole prefixes probed at each "/" of the
// request path: the trie hashes each byte of the path once, where probing
// hashes the leading bytes again for every boundary, and falling back to a
// shorter prefix follows a pointer instead of hashing again.
//
// A node holds two candidate lists because a prefix written with a trailing
// slash matches less than the same prefix without one: rules ("/api")
// match "/api", "/api/" and "/api/x"; slash ("/api/") match only when the
// request path goes on with a "/" after the segment. The root's slash list
// is the prefix "/", which every path has.
type node[T any] struct {
	children map[string]*node[T]
	rules    []*rule[T]
	slash    []*rule[T]
	// prefix and slashPrefix are the normalized prefixes the two lists were
	// written as, returned in Match.Prefix.
	prefix, slashPrefix string
	// up is the nearest proper ancestor with candidates, so that a lookup
	// falls back to shorter prefixes without keeping a stack.
	up *node[T]
}

func newNode[T any](prefix string) *node[T] {
	return &node[T]{prefix: prefix, slashPrefix: prefix + "/"}
}

func (n *node[T]) hasRules() bool { return len(n.rules) > 0 || len(n.slash) > 0 }

// insert adds rl under the normalized prefix p ("/", "/api", "/api/").
func (n *node[T]) insert(p string, rl *rule[T]) {
	rest := p[1:]
	slash := true
	if rest != "" {
		rest, slash = strings.CutSuffix(rest, "/")
		for seg := range strings.SplitSeq(rest, "/") {
			c := n.children[seg]
			if c == nil {
				c = newNode[T](n.prefix + "/" + seg)
				if n.children == nil {
					n.children = make(map[string]*node[T])
				}
				n.children[seg] = c
			}
			n = c
		}
	}
	list := &n.rules
	if slash {
		list = &n.slash
	}
	if !slices.Contains(*list, rl) {
		*list = append(*list, rl)
	}
}

// finish sorts every candidate list and links each node to its nearest
// ancestor with candidates.
func (n *node[T]) finish(up *node[T]) {
	n.up = up
	sortCandidates(n.rules)
	sortCandidates(n.slash)
	if n.hasRules() {
		up = n
	}
	for _, c := range n.children {
		c.finish(up)
	}
}

// lookup finds the longest prefix of path with a rule whose conditions hold,
// trying shorter prefixes when the candidates of a longer one fail. The cost
// is one map lookup per path segment walked, whatever the number of rules.
func (n *node[T]) lookup(r *http.Request, path string, m *Match[T], mm *uint64) bool {
	// Walk down as far as the path's segments lead. cont says whether the
	// path goes on with a "/" after the deepest node reached.
	cont := true
	rest := path[1:]
	for {
		seg := rest
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			seg = rest[:i]
		}
		if seg == "" {
			break
		}
		c := n.children[seg]
		if c == nil {
			break
		}
		n = c
		if i < 0 {
			cont = false
			break
		}
		rest = rest[i+1:]
	}
	if !n.hasRules() {
		n, cont = n.up, true
	}
	for ; n != nil; n, cont = n.up, true {
		if cont {
			if rl := pick(n.slash, r, mm); rl != nil {
				m.Value, m.Kind, m.Prefix = rl.value, Prefix, n.slashPrefix
				return true
			}
		}
		if rl := pick(n.rules, r, mm); rl != nil {
			m.Value, m.Kind, m.Prefix = rl.value, Prefix, n.prefix
			return true
		}
	}
	return false
}
