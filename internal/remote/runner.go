package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Runner runs commands and moves files on one host.
type Runner interface {
	// Run runs cmd to completion. A command that ran and exited non-zero
	// returns its Result and an *ExitError; a failure to reach the host or a
	// connection lost mid-command returns a *ConnError.
	Run(ctx context.Context, cmd Cmd) (Result, error)
	// Upload streams r to path atomically: it is written to a temporary file
	// in the same directory, given mode, and renamed over path. Missing parent
	// directories are created.
	Upload(ctx context.Context, path string, r io.Reader, mode fs.FileMode) error
	// ReadFile returns the content of path. A missing file gives an error that
	// matches ErrNotFound (fs.ErrNotExist) under errors.Is.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// String names the target for messages, e.g. "root@nas:22".
	String() string
}

// ErrNotFound is what ReadFile's error matches when the file does not exist
// on the host: the command ran and found nothing at the path. It is
// fs.ErrNotExist itself, so errors.Is with either holds. A host that cannot
// be reached, sudo's refusal or a file that cannot be read never matches it.
var ErrNotFound = fs.ErrNotExist

// Cmd is one command: a program and its arguments, each passed as one word.
type Cmd struct {
	// Args is the argv; Args[0] is the program.
	Args []string
	// Stdin, when set, is copied to the command's standard input. Secrets
	// travel here, never in Args, which other users can see in the process list.
	Stdin io.Reader
}

// Command builds a Cmd from a program and its arguments.
func Command(program string, args ...string) Cmd {
	return Cmd{Args: append([]string{program}, args...)}
}

// Script builds a Cmd that runs a constant shell script with args as its
// positional parameters ("$1", "$2", ...). script must be a literal of the
// calling code, never built from input: input goes in args.
func Script(script string, args ...string) Cmd {
	return Cmd{Args: append([]string{"sh", "-c", script, "homelab"}, args...)}
}

// WithStdin returns a copy of c reading standard input from r.
func (c Cmd) WithStdin(r io.Reader) Cmd {
	c.Stdin = r
	return c
}

// String returns the command line as the remote shell receives it.
func (c Cmd) String() string { return Join(c.Args) }

func (c Cmd) validate() error {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return errors.New("remote: empty command")
	}
	for _, a := range c.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("remote: argument %q contains a NUL byte, which no command line can carry", a)
		}
	}
	return nil
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// ExitError reports a command that ran and exited non-zero.
type ExitError struct {
	Target string
	Cmd    string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "(no error output)"
	}
	return fmt.Sprintf("command %q on %s exited with status %d: %s", e.Cmd, e.Target, e.Code, msg)
}

// ExitCode returns the exit status of a command that ran and failed, and
// false when err is not such a failure (for example the host was unreachable).
func ExitCode(err error) (int, bool) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, false
}

// ConnError reports that the host could not be reached or the connection
// broke. It never means that something on the host does not exist: callers
// must keep their state and report it.
type ConnError struct {
	Target string
	Op     string
	Err    error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Target, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err means the host could not be reached or
// the connection was lost, as opposed to a command that ran and failed.
func IsUnreachable(err error) bool {
	var ce *ConnError
	return errors.As(err, &ce)
}

// executor is what differs between transports: running one argv.
type executor interface {
	exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)
	target() string
}

// shellRunner implements Runner on top of an executor, so file transfer and
// privilege escalation behave the same on every transport.
type shellRunner struct {
	ex   executor
	sudo bool
	// commandTimeout bounds a command whose context has no deadline.
	commandTimeout time.Duration
}

// Exit status the read script uses for a missing file.
const exitNotExist = 66

const uploadScript = `set -e
umask 077
dir=$(dirname -- "$1")
mkdir -p -- "$dir"
tmp=$(mktemp -- "$1.homelab-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod -- "$2" "$tmp"
# -T: a directory at the target is an error, never a place to move into.
mv -fT -- "$tmp" "$1"
trap - EXIT`

const readScript = `[ -e "$1" ] || exit 66
exec cat -- "$1"`

func (r *shellRunner) String() string { return r.ex.target() }

func (r *shellRunner) Run(ctx context.Context, cmd Cmd) (Result, error) {
	if err := cmd.validate(); err != nil {
		return Result{ExitCode: -1}, err
	}
	argv := cmd.Args
	if r.sudo {
		argv = sudoWrap(argv)
	}
	bounded := false
	if _, ok := ctx.Deadline(); !ok && r.commandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.commandTimeout)
		defer cancel()
		bounded = true
	}
	var stdout, stderr bytes.Buffer
	code, err := r.ex.exec(ctx, argv, cmd.Stdin, &stdout, &stderr)
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}
	if err != nil {
		if bounded && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Still a ConnError: nothing is known about the outcome, so
			// callers keep their state.
			err = &ConnError{Target: r.ex.target(), Op: "run command on", Err: fmt.Errorf(
				"%s did not answer within %s (the ssh block's command_timeout): the host or the command is blocked; nothing is known about its outcome",
				cmd.String(), r.commandTimeout)}
		}
		return res, err
	}
	if code != 0 {
		if r.sudo {
			if serr := sudoError(r.ex.target(), code, res.Stderr); serr != nil {
				return res, serr
			}
		}
		return res, &ExitError{Target: r.ex.target(), Cmd: cmd.String(), Code: code, Stderr: string(res.Stderr)}
	}
	return res, nil
}

func (r *shellRunner) Upload(ctx context.Context, path string, src io.Reader, mode fs.FileMode) error {
	if path == "" {
		return errors.New("remote: upload needs a destination path")
	}
	cmd := Script(uploadScript, path, fmt.Sprintf("%04o", mode.Perm())).WithStdin(src)
	if _, err := r.Run(ctx, cmd); err != nil {
		return fmt.Errorf("writing %s on %s: %w", path, r.String(), err)
	}
	return nil
}

func (r *shellRunner) ReadFile(ctx context.Context, path string) ([]byte, error) {
	res, err := r.Run(ctx, Script(readScript, path))
	if code, ok := ExitCode(err); ok && code == exitNotExist {
		return nil, fmt.Errorf("reading %s on %s: %w", path, r.String(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s on %s: %w", path, r.String(), err)
	}
	return res.Stdout, nil
}

// WriteFile uploads data to path; see Runner.Upload.
func WriteFile(ctx context.Context, r Runner, path string, data []byte, mode fs.FileMode) error {
	return r.Upload(ctx, path, bytes.NewReader(data), mode)
}
