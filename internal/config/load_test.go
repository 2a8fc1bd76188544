package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// testEnv is the environment the testdata files are parsed with.
var testEnv = map[string]string{
	"API_HOST":        "127.0.0.1",
	"CONNECT_TIMEOUT": "2s",
	"EMPTY":           "",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

func TestParseGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob testdata/good: %d files, err %v", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data, file, lookupTestEnv)
			if err != nil {
				t.Fatalf("got error:\n%v\nwant none", err)
			}
			if c == nil {
				t.Fatal("got nil config and nil error")
			}
			if c.File != file {
				t.Errorf("got File %q, want %q", c.File, file)
			}
		})
	}
}

// TestParseBadGolden checks the exact error text for every file in
// testdata/bad against its .golden file. Run with -update to rewrite them.
func TestParseBadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob testdata/bad: %d files, err %v", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(data, file, lookupTestEnv)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			// An invalid config may come back, for further checks of its
			// plugin settings only.
			_ = c
			assertLocated(t, err)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// assertLocated checks that err is a tree of *FieldError values that all
// carry the file name.
func assertLocated(t *testing.T, err error) {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("got %T (%v), want *FieldError", e, e)
			continue
		}
		if fe.File == "" {
			t.Errorf("got no file on %q", fe.Error())
		}
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("API_HOST", "127.0.0.1")
	t.Setenv("CONNECT_TIMEOUT", "3s")
	c, err := Load("testdata/good/env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Services[0].Targets[0].URL, "http://127.0.0.1:3001"; got != want {
		t.Errorf("got target %q, want %q", got, want)
	}
	if got, want := c.Services[0].Timeouts.Connect, Duration(3e9); got != want {
		t.Errorf("got connect timeout %v, want %v", got, want)
	}
	if got, want := c.Routes[0].Match.Headers["X-Literal"], "${NOT_EXPANDED}"; got != want {
		t.Errorf("got header %q, want %q", got, want)
	}
	if got, want := c.Admin.Listen, "off"; got != want {
		t.Errorf("got admin listen %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want an error wrapping os.ErrNotExist", err)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		t.Errorf("got a FieldError for a missing file, want a plain error")
	}
}

func TestParseRejectsLargeFile(t *testing.T) {
	t.Parallel()
	data := []byte("listen: \":8080\"\n" + strings.Repeat("# padding\n", MaxFileSize/10+1))
	_, err := Parse(data, "big.yaml", lookupTestEnv)
	if err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Fatalf("got %v, want a size error", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Fatalf("Load: got %v, want a size error", err)
	}
}

// TestParseRejectsAliasBomb checks that a small file whose aliases expand
// to millions of values fails fast instead of exhausting memory.
func TestParseRejectsAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("services: [{name: api, url: \"http://127.0.0.1:1\"}]\nx: &paths [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("/a")
	}
	b.WriteString("]\nroutes:\n  - &r {name: r, service: api, match: {paths: *paths}}\n")
	for range 2000 {
		b.WriteString("  - *r\n")
	}
	_, err := Parse([]byte(b.String()), "bomb.yaml", lookupTestEnv)
	if err == nil || !strings.Contains(err.Error(), "document expands to more than 1000000 values") {
		t.Fatalf("got %.300v, want the expansion limit error", err)
	}
}

func TestParseStopsAfterTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 500 {
		b.WriteString("unknown")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(": 1\n")
	}
	_, err := Parse([]byte(b.String()), "many.yaml", lookupTestEnv)
	if err == nil {
		t.Fatal("got no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || !strings.Contains(lines[len(lines)-1], "too many errors") {
		t.Fatalf("got %d lines ending %q, want %d ending with too many errors", len(lines), lines[len(lines)-1], maxErrors+1)
	}
}

func TestParseDefaultsApplied(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "minimal.yaml", lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.Admin.Listen != DefaultAdminListen {
		t.Errorf("got listen %q admin %q, want defaults", c.Listen, c.Admin.Listen)
	}
	want := []Target{{URL: "http://127.0.0.1:3001", Weight: 1}}
	if got := c.Services[0].Targets; len(got) != 1 || got[0] != want[0] {
		t.Errorf("got targets %v, want %v", got, want)
	}
}

// FuzzParse checks that Parse never panics and returns exactly one of a
// config and an error. The seed corpus is every testdata file.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a]\nservices: *a\n"))
	f.Add([]byte("routes: &r [{<<: *r}]\n"))
	f.Add([]byte("x: &x {<<: *x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", lookupTestEnv)
		if c == nil && err == nil {
			t.Fatal("got neither a config nor an error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("got an empty error message")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/good/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "full.yaml", lookupTestEnv); err != nil {
			b.Fatal(err)
		}
	}
}
