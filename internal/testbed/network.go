package testbed

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// Loopback addresses 127.0.0.x handed out to sshd instances.
const (
	firstLoopbackHost = 2
	lastLoopbackHost  = 250
)

// loopbackAlloc hands out each 127.0.0.x once per process. It starts at an
// offset derived from the pid so that concurrent test processes tend to use
// different addresses, which keeps their sshd logs easy to tell apart.
var loopbackAlloc struct {
	sync.Mutex
	next, handed int
}

// allocLoopbackAddr returns a 127.0.0.x (x in 2..250) not yet returned in
// this process.
func allocLoopbackAddr() (string, error) {
	loopbackAlloc.Lock()
	defer loopbackAlloc.Unlock()
	n := lastLoopbackHost - firstLoopbackHost + 1
	if loopbackAlloc.handed >= n {
		return "", fmt.Errorf("all %d testbed loopback addresses are in use by this process", n)
	}
	if loopbackAlloc.handed == 0 {
		loopbackAlloc.next = os.Getpid() % n
	}
	x := firstLoopbackHost + loopbackAlloc.next
	loopbackAlloc.next = (loopbackAlloc.next + 1) % n
	loopbackAlloc.handed++
	return "127.0.0." + strconv.Itoa(x), nil
}

// freePort returns a TCP port on addr that was free a moment ago, found by
// binding port 0 and closing the listener. Callers must cope with the small
// race of another process taking it in between.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartBlackhole starts a TCP listener on 127.0.0.1 that accepts connections
// and then never sends or reads a byte, like a host whose sshd hangs before
// its banner. It returns the "host:port" address and a stop function that
// closes the listener and every accepted connection; stop is idempotent.
func StartBlackhole() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting blackhole listener: %w", err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return // listener closed
			}
			mu.Lock()
			if closed {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			l.Close()
			<-done
			mu.Lock()
			defer mu.Unlock()
			closed = true
			for _, c := range conns {
				c.Close()
			}
		})
	}
	return l.Addr().String(), stop, nil
}
