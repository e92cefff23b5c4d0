package remote

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"time"
)

// NewLocal returns a Runner for the machine the provider runs on. With sudo,
// commands run through "sudo -n" unless the provider already runs as root.
// Commands without a deadline of their own are bounded by
// DefaultCommandTimeout.
func NewLocal(sudo bool) Runner {
	return NewLocalBounded(sudo, DefaultCommandTimeout)
}

// NewLocalBounded is NewLocal with commands without a deadline of their own
// bounded by commandTimeout (DefaultCommandTimeout when not positive).
func NewLocalBounded(sudo bool, commandTimeout time.Duration) Runner {
	if commandTimeout <= 0 {
		commandTimeout = DefaultCommandTimeout
	}
	return &shellRunner{ex: localExecutor{}, sudo: sudo && os.Geteuid() != 0, commandTimeout: commandTimeout}
}

type localExecutor struct{}

func (localExecutor) target() string { return "localhost" }

func (localExecutor) exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	// A killed command's children may keep its pipes open; stop waiting on them.
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case ctx.Err() != nil:
		return -1, &ConnError{Target: "localhost", Op: "run command on", Err: ctx.Err()}
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	case errors.Is(err, exec.ErrNotFound):
		// Match what a shell reports for a missing program.
		_, _ = io.WriteString(stderr, argv[0]+": command not found\n")
		return 127, nil
	}
	return -1, &ConnError{Target: "localhost", Op: "run command on", Err: err}
}
