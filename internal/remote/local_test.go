package remote

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalRunnerRunsAndReportsExitStatus(t *testing.T) {
	r := NewLocal(false)
	ctx := context.Background()
	res, err := r.Run(ctx, Command("sh", "-c", "echo out; echo err >&2"))
	if err != nil || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Fatalf("got %q %q %v", res.Stdout, res.Stderr, err)
	}
	_, err = r.Run(ctx, Script(`echo "no such pool: $1" >&2; exit 3`, "tank"))
	if code, ok := ExitCode(err); !ok || code != 3 || !strings.Contains(err.Error(), "no such pool: tank") {
		t.Fatalf("want exit 3 with stderr, got %v", err)
	}
	if IsUnreachable(err) {
		t.Fatal("a failed command is not an unreachable host")
	}
	_, err = r.Run(ctx, Command("homelab-no-such-program"))
	if code, ok := ExitCode(err); !ok || code != 127 {
		t.Fatalf("missing program: want exit 127, got %v", err)
	}
}

func TestLocalRunnerHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NewLocal(false).Run(ctx, Command("sleep", "30"))
	if !IsUnreachable(err) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("want a deadline error promptly, got %v after %s", err, time.Since(start))
	}
}

func TestLocalUploadIsAtomicAndReadable(t *testing.T) {
	r := NewLocal(false)
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "sub dir", "it's.conf")
	if err := WriteFile(ctx, r, p, []byte("one\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(ctx, r, p, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadFile(ctx, p)
	if err != nil || string(got) != "two\n" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if _, err := r.ReadFile(ctx, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: want ErrNotFound (fs.ErrNotExist), got %v", err)
	}
	// A directory exists: cat fails on it, which is not a missing file.
	if _, err := r.ReadFile(ctx, dir); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("reading a directory: %v, want an error that is not ErrNotFound", err)
	}
}

func TestUploadOntoADirectoryFails(t *testing.T) {
	r := NewLocal(false)
	target := filepath.Join(t.TempDir(), "boot.ipxe")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(context.Background(), r, target, []byte("#!ipxe\n"), 0o644); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Fatalf("the file was moved into the directory: %v", entries)
	}
}
