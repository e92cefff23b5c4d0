package node

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/logging"
)

// The network probe of wait_for_ssh: after a reprovision, the node is
// ready when its SSH server greets with a banner. It logs in nowhere.

// waitForSSH polls addr until an SSH server greets with its banner.
func waitForSSH(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := time.Second
	var last error
	for attempt := 1; ; attempt++ {
		last = sshBanner(ctx, addr)
		if last == nil {
			return nil
		}
		logging.Debug(ctx, "waiting for SSH", map[string]any{"address": addr, "attempt": attempt, "error": last.Error()})
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer SSH within %s: %v", addr, timeout, last)
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
	}
}

func sshBanner(ctx context.Context, addr string) error {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	if _, err := conn.Read(buf); err != nil {
		return fmt.Errorf("no SSH banner: %w", err)
	}
	if string(buf) != "SSH-" {
		return fmt.Errorf("%s answered %q, not an SSH banner", addr, buf)
	}
	return nil
}
