package rke2

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// fakeRunner answers commands from a table of handlers, records every
// command and keeps uploaded files in memory.
type fakeRunner struct {
	mu          sync.Mutex
	files       map[string][]byte
	modes       map[string]fs.FileMode
	cmds        []remote.Cmd
	stdins      [][]byte
	handle      func(args []string) (remote.Result, error)
	unreachable bool
}

func newFake(handle func(args []string) (remote.Result, error)) *fakeRunner {
	return &fakeRunner{files: map[string][]byte{}, modes: map[string]fs.FileMode{}, handle: handle}
}

func (f *fakeRunner) String() string { return "fake" }

func (f *fakeRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	var in []byte
	if cmd.Stdin != nil {
		in, _ = io.ReadAll(cmd.Stdin)
	}
	f.stdins = append(f.stdins, in)
	unreachable := f.unreachable
	f.mu.Unlock()
	if unreachable {
		return remote.Result{ExitCode: -1}, &remote.ConnError{Target: "fake", Op: "dial", Err: fmt.Errorf("connection refused")}
	}
	if f.handle == nil {
		return remote.Result{}, nil
	}
	res, err := f.handle(cmd.Args)
	if err == nil && res.ExitCode != 0 {
		err = &remote.ExitError{Target: "fake", Cmd: cmd.String(), Code: res.ExitCode, Stderr: string(res.Stderr)}
	}
	return res, err
}

func (f *fakeRunner) Upload(_ context.Context, p string, r io.Reader, mode fs.FileMode) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unreachable {
		return &remote.ConnError{Target: "fake", Op: "dial", Err: fmt.Errorf("connection refused")}
	}
	f.files[p], f.modes[p] = data, mode
	return nil
}

func (f *fakeRunner) ReadFile(_ context.Context, p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unreachable {
		return nil, &remote.ConnError{Target: "fake", Op: "dial", Err: fmt.Errorf("connection refused")}
	}
	data, ok := f.files[p]
	if !ok {
		return nil, fmt.Errorf("reading %s: %w", p, fs.ErrNotExist)
	}
	return data, nil
}

// commandLines are the recorded commands as shell lines.
func (f *fakeRunner) commandLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.cmds))
	for i, c := range f.cmds {
		out[i] = c.String()
	}
	return out
}

// isScript reports whether args run the given constant script.
func isScript(args []string, script string) bool {
	return len(args) >= 3 && args[0] == "sh" && args[1] == "-c" && args[2] == script
}

func ok(stdout string) (remote.Result, error) { return remote.Result{Stdout: []byte(stdout)}, nil }

func exit(code int, stderr string) (remote.Result, error) {
	return remote.Result{ExitCode: code, Stderr: []byte(stderr)}, nil
}

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
