package config

import (
	"fmt"
	"strconv"
)

// Path is the location of a key inside the config document, printed as
// routes[2].plugins.jwt.algorithms. The zero Path is the document root.
// Paths are values: Key and Index return new paths and never modify p.
type Path struct{ s string }

// Key returns the path of the mapping key k below p.
func (p Path) Key(k string) Path {
	if p.s == "" {
		return Path{k}
	}
	return Path{p.s + "." + k}
}

// Index returns the path of element i of the sequence at key k below p,
// for example p.Index("routes", 2) is routes[2].
func (p Path) Index(k string, i int) Path {
	return Path{p.Key(k).s + "[" + strconv.Itoa(i) + "]"}
}

// At returns the path of element i of the sequence at p itself.
func (p Path) At(i int) Path {
	return Path{p.s + "[" + strconv.Itoa(i) + "]"}
}

// String returns the dotted form of p; the root prints as "(root)".
func (p Path) String() string {
	if p.s == "" {
		return "(root)"
	}
	return p.s
}

// IsRoot reports whether p is the document root.
func (p Path) IsRoot() bool { return p.s == "" }

// Errorf returns a *FieldError at p. The file, line and column are filled in
// later from the positions recorded while decoding (see Config.Locate).
func (p Path) Errorf(format string, args ...any) error {
	return &FieldError{Path: p, Msg: fmt.Sprintf(format, args...)}
}

// FieldError is one problem in a config file: where it is and what is wrong.
// It prints as "portico.yaml:41:7: routes[3].plugins.jwt.jwks_url: must be https".
// Msg is written for the operator, lowercase, and never echoes a secret value.
type FieldError struct {
	File string
	Line int
	Col  int
	Path Path
	Msg  string
}

func (e *FieldError) Error() string {
	loc := ""
	switch {
	case e.File != "" && e.Line > 0 && e.Col > 0:
		loc = e.File + ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col) + ": "
	case e.File != "" && e.Line > 0:
		loc = e.File + ":" + strconv.Itoa(e.Line) + ": "
	case e.File != "":
		loc = e.File + ": "
	}
	return loc + e.Path.String() + ": " + e.Msg
}
