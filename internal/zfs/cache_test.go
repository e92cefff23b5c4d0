package zfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// replayRunner answers zfs commands with recorded output and counts them.
type replayRunner struct {
	t        *testing.T
	mu       sync.Mutex
	commands []string
	fail     bool
}

func (r *replayRunner) String() string { return "root@replay:22" }

func (r *replayRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	line := cmd.String()
	r.mu.Lock()
	r.commands = append(r.commands, line)
	r.mu.Unlock()
	switch {
	case line == "zfs version":
		return remote.Result{Stdout: testdata(r.t, "zfs-version.txt")}, nil
	case strings.HasPrefix(line, "zfs get -j -p -r"):
		return remote.Result{Stdout: testdata(r.t, "zfs-get-recursive.json")}, nil
	case strings.HasPrefix(line, "zfs get -j -p all tank/new"):
		return remote.Result{Stdout: []byte(`{"datasets":{"tank/new":{"name":"tank/new","type":"FILESYSTEM","properties":{"guid":{"value":"42","source":{"type":"NONE","data":"-"}}}}}}`)}, nil
	case strings.HasPrefix(line, "zfs create"), strings.HasPrefix(line, "zfs set"):
		return remote.Result{}, nil
	}
	return remote.Result{ExitCode: 1}, &remote.ExitError{Target: r.String(), Cmd: line, Code: 1, Stderr: "unexpected command"}
}

func (r *replayRunner) Upload(context.Context, string, io.Reader, fs.FileMode) error { return nil }
func (r *replayRunner) ReadFile(context.Context, string) ([]byte, error)             { return nil, fs.ErrNotExist }

func (r *replayRunner) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.commands {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// Many concurrent reads of datasets of one pool, through separate clients
// as separate resources get them, cost one recursive zfs get.
func TestDatasetReadsShareOneRecursiveGet(t *testing.T) {
	r := &replayRunner{t: t}
	reg := NewRegistry()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"tank", "tank/a", "tank/a/b", "tank/vol"}[i%4]
			if _, err := reg.Client(r).Dataset(ctx, name); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := r.count("zfs get"); n != 1 {
		t.Fatalf("%d zfs get commands for 200 reads, want 1", n)
	}
	if n := len(r.commands); n != 2 {
		t.Fatalf("commands %q, want zfs version and one zfs get", r.commands)
	}
}

// A created dataset is read alone; the other datasets' cached read stays.
// Any other write drops the cache.
func TestCacheAfterWrites(t *testing.T) {
	r := &replayRunner{t: t}
	c := NewRegistry().Client(r)
	ctx := context.Background()
	if _, err := c.Dataset(ctx, "tank/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDataset(ctx, DatasetSpec{Name: "tank/new"}); err != nil {
		t.Fatal(err)
	}
	d, err := c.Dataset(ctx, "tank/new")
	if err != nil || d.Get("guid") != "42" {
		t.Fatalf("new dataset: %+v %v", d, err)
	}
	for _, name := range []string{"tank/a", "tank/new", "tank/vol"} {
		if _, err := c.Dataset(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(r.count("zfs get -j -p -r"), r.count("zfs get -j -p all")); got != "1 1" {
		t.Fatalf("recursive and single reads: %s, want 1 1 (%q)", got, r.commands)
	}
	if err := c.SetProperties(ctx, "tank/a", map[string]string{"compression": "zstd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dataset(ctx, "tank/vol"); err != nil {
		t.Fatal(err)
	}
	if n := r.count("zfs get -j -p -r"); n != 2 {
		t.Fatalf("a property change must drop the cache: %d recursive reads", n)
	}
	if _, err := c.Dataset(ctx, "tank/nosuch"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing dataset: %v", err)
	}
}
