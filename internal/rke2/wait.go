package rke2

import (
	"context"
	"fmt"
	"time"
)

// Logger receives progress messages with structured fields.
type Logger func(msg string, fields map[string]any)

func (l Logger) log(msg string, fields map[string]any) {
	if l != nil {
		l(msg, fields)
	}
}

// Backoff bounds of Poll.
var (
	PollFirst = time.Second
	PollMax   = 10 * time.Second
)

// Poll calls check until it reports done, returns an error, or ctx ends.
// Between calls it waits with exponential backoff (PollFirst doubling up to
// PollMax) and logs what it is waiting for with the latest status. When
// ctx ends, the error names what was awaited, for how long, and the last
// status.
func Poll(ctx context.Context, log Logger, what string, fields map[string]any, check func(context.Context) (done bool, status string, err error)) error {
	start := time.Now()
	delay := PollFirst
	for attempt := 1; ; attempt++ {
		done, status, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			f := copyFields(fields)
			f["waited"] = time.Since(start).Round(time.Second).String()
			log.log(what+": done", f)
			return nil
		}
		f := copyFields(fields)
		f["attempt"], f["status"], f["waited"] = attempt, status, time.Since(start).Round(time.Second).String()
		log.log("waiting: "+what, f)
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s (last status: %s): %w", time.Since(start).Round(time.Second), what, status, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, PollMax)
	}
}

func copyFields(f map[string]any) map[string]any {
	out := make(map[string]any, len(f)+3)
	for k, v := range f {
		out[k] = v
	}
	return out
}
