package redistest

import (
	"strings"
	"testing"
)

func TestStartStopRestartKeepsPort(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Start: %s", err)
	}
	s.Stop()
	if err := ping(addr); err == nil {
		t.Fatal("got PONG after Stop, want no server")
	}
	s.Stop() // idempotent
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("got address %s after Restart, want %s", s.Addr(), addr)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("PING after Restart: %s", err)
	}
	if got, want := s.URL(), "redis://"+addr+"/0"; got != want {
		t.Fatalf("got URL %s, want %s", got, want)
	}
}

func TestTwoServersGetDistinctPorts(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("got the same address %s twice", a.Addr())
	}
}

func TestStartClusterAssignsAllSlots(t *testing.T) {
	s := StartCluster(t)
	info, err := command(s.Addr(), "CLUSTER INFO")
	if err != nil {
		t.Fatalf("CLUSTER INFO: %s", err)
	}
	if !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("got cluster info %q, want cluster_state:ok", info)
	}
}
