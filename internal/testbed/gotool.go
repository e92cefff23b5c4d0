package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// maxOutputInError bounds how much command output is quoted in errors.
const maxOutputInError = 4000

// goCommand locates the go tool: on PATH, else under $GOROOT/bin.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("the go tool is needed to build test binaries but is not on PATH (nor under $GOROOT/bin)")
}

// runGo runs the go tool in dir with module mode forced to -mod=mod, any
// go.work ignored and cgo disabled (static binaries). It returns stdout; on
// failure the error quotes the tail of stderr.
func runGo(ctx context.Context, goBin, dir string, args ...string) ([]byte, error) {
	return runGoIn(ctx, goBin, dir, goEnv(), args...)
}

// runGoIn runs the go tool in dir with env and returns stdout; on failure
// the error quotes the tail of stderr.
func runGoIn(ctx context.Context, goBin, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), maxOutputInError))
	}
	return stdout.Bytes(), nil
}

// goEnv returns the environment for go tool invocations: the current one,
// with GOFLAGS' -mod setting replaced by -mod=mod, GOWORK=off and
// CGO_ENABLED=0.
func goEnv() []string {
	var env []string
	goflags := []string{"-mod=mod"}
	for _, kv := range os.Environ() {
		key, value, _ := strings.Cut(kv, "=")
		switch key {
		case "GOFLAGS":
			for _, f := range strings.Fields(value) {
				if !strings.HasPrefix(f, "-mod=") {
					goflags = append(goflags, f)
				}
			}
		case "GOWORK", "CGO_ENABLED":
		default:
			env = append(env, kv)
		}
	}
	return append(env, "GOFLAGS="+strings.Join(goflags, " "), "GOWORK=off", "CGO_ENABLED=0")
}

// tail returns at most the last n bytes of b, trimmed, as a string.
func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return string(b)
}
