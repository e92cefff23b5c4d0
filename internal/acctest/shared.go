package acctest

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// sharedPeer is a peer that the tests of one package share: started on
// first use in a temporary directory of its own, stopped after all tests,
// and held by one test at a time.
type sharedPeer[T any] struct {
	once sync.Once
	mu   sync.Mutex
	peer T
	err  error
}

// acquire starts the peer on first use (start gets its directory and a
// progress logger and returns the peer and its stop function), fails the
// test if it could not start, and holds the peer until the test ends.
func (s *sharedPeer[T]) acquire(t *testing.T, name string, start func(dir string, logf func(string, ...any)) (T, func(), error)) T {
	t.Helper()
	skipUnlessAcceptance(t)
	s.once.Do(func() {
		dir, err := os.MkdirTemp("", "homelab-acc-"+name+"-")
		if err != nil {
			s.err = err
			return
		}
		began := time.Now()
		logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, name+": "+f+"\n", a...) }
		var stop func()
		s.peer, stop, s.err = start(dir, logf)
		if s.err != nil {
			_ = os.RemoveAll(dir)
			return
		}
		logf("up in %s", time.Since(began).Round(time.Second))
		atExit(func() { stop(); _ = os.RemoveAll(dir) })
	})
	if s.err != nil {
		t.Fatalf("%s could not start: %v", name, s.err)
	}
	s.mu.Lock()
	t.Cleanup(s.mu.Unlock)
	return s.peer
}
