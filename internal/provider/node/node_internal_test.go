package node

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveBanners answers each connection with banner(n), n counting from 1;
// an empty banner closes the connection at once.
func serveBanners(t *testing.T, banner func(n int64) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if b := banner(n.Add(1)); b != "" {
				_, _ = c.Write([]byte(b))
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

func TestWaitForSSHWaitsForTheBanner(t *testing.T) {
	addr := serveBanners(t, func(n int64) string {
		if n < 3 { // still installing: the port closes without a word
			return ""
		}
		return "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
	})
	if err := waitForSSH(context.Background(), addr, time.Minute); err != nil {
		t.Fatalf("waitForSSH: %v", err)
	}
}

func TestWaitForSSHRefusesOtherServicesAndTimesOut(t *testing.T) {
	addr := serveBanners(t, func(int64) string { return "HTTP/1.1 400 Bad Request\r\n\r\n" })
	err := waitForSSH(context.Background(), addr, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "did not answer SSH within 2s") || !strings.Contains(err.Error(), "not an SSH banner") {
		t.Fatalf("want a timeout naming the wrong banner, got %v", err)
	}
}
