package listener

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// Session tickets let a client resume a TLS session without a full
// handshake. The keys that encrypt them are rotated: a new key every
// ticketRotation, and tickets encrypted with a key older than
// ticketKeyCount rotations are no longer accepted, so a key that leaks
// opens at most a day of sessions (forward secrecy for resumed sessions).
const (
	ticketRotation = time.Hour
	ticketKeyCount = 24
)

// ticketKeys holds a listener's session ticket keys, newest first.
type ticketKeys struct {
	mu   sync.Mutex
	keys [][32]byte
	cfgs []*tls.Config
}

func newTicketKeys() *ticketKeys {
	t := &ticketKeys{}
	t.keys = [][32]byte{newTicketKey()}
	return t
}

func newTicketKey() [32]byte {
	var k [32]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+)
	return k
}

// install sets the keys on cfg and keeps cfg up to date with rotations.
func (t *ticketKeys) install(cfg *tls.Config) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfgs = append(t.cfgs, cfg)
	cfg.SetSessionTicketKeys(t.keys)
}

// rotate adds a new key every ticketRotation until ctx ends.
func (t *ticketKeys) rotate(ctx context.Context) {
	tick := time.NewTicker(ticketRotation)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.add(newTicketKey())
		}
	}
}

// add makes k the key new tickets are encrypted with.
func (t *ticketKeys) add(k [32]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = append([][32]byte{k}, t.keys...)
	if len(t.keys) > ticketKeyCount {
		t.keys = t.keys[:ticketKeyCount]
	}
	for _, cfg := range t.cfgs {
		cfg.SetSessionTicketKeys(t.keys)
	}
}
