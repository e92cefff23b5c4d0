package zfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// scriptRunner answers commands by prefix with recorded fixtures: a file
// NAME.stderr ("exit=N" then stderr) makes the command fail that way, any
// other file is its stdout. A fixture named in literal is answered with
// that stdout instead of a file, and an empty fixture name succeeds with no
// output (as zpool add, attach and replace do).
type scriptRunner struct {
	t       *testing.T
	answers [][2]string // command prefix, fixture
	literal map[string][]byte
	mu      sync.Mutex
	ran     []string
}

func (r *scriptRunner) String() string { return "root@script:22" }

func (r *scriptRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	line := cmd.String()
	r.mu.Lock()
	r.ran = append(r.ran, line)
	r.mu.Unlock()
	for _, a := range r.answers {
		if !strings.HasPrefix(line, a[0]) {
			continue
		}
		if out, ok := r.literal[a[1]]; ok {
			return remote.Result{Stdout: out}, nil
		}
		if a[1] == "" {
			return remote.Result{}, nil
		}
		if !strings.HasSuffix(a[1], ".stderr") {
			return remote.Result{Stdout: testdata(r.t, a[1])}, nil
		}
		head, stderr, _ := strings.Cut(string(testdata(r.t, a[1])), "\n")
		code, err := strconv.Atoi(strings.TrimPrefix(head, "exit="))
		if err != nil {
			r.t.Fatalf("fixture %s: %v", a[1], err)
		}
		return remote.Result{ExitCode: code}, &remote.ExitError{Target: r.String(), Cmd: line, Code: code, Stderr: stderr}
	}
	r.t.Fatalf("unexpected command %q", line)
	return remote.Result{}, nil
}

func (r *scriptRunner) Upload(context.Context, string, io.Reader, fs.FileMode) error { return nil }
func (r *scriptRunner) ReadFile(context.Context, string) ([]byte, error)             { return nil, fs.ErrNotExist }

func (r *scriptRunner) didRun(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.ran {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func TestParseImportRecorded(t *testing.T) {
	pools, err := ParseImport(testdata(t, "zpool-import-exported.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].Name != "tank" || pools[0].ID == "" || pools[0].State != "ONLINE" ||
		!strings.Contains(pools[0].Action, "imported") {
		t.Fatalf("pools %+v", pools)
	}
	if _, err := strconv.ParseUint(pools[0].ID, 10, 64); err != nil {
		t.Fatalf("id %q is not a GUID", pools[0].ID)
	}
	pools, err = ParseImport(testdata(t, "zpool-import-degraded.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].Name != "tank" || pools[0].State != "DEGRADED" || pools[0].Status == "" || pools[0].Action == "" {
		t.Fatalf("pools %+v", pools)
	}
	// A continued status line is joined into one.
	if strings.Contains(pools[0].Status, "\n") || strings.Contains(pools[0].Status, "  ") {
		t.Fatalf("status %q", pools[0].Status)
	}
}

var (
	versionAnswer  = [2]string{"zfs version", "zfs-version.txt"}
	exportedStatus = [2]string{"zpool status", "zpool-status-nosuchpool.stderr"}
	exportedList   = [2]string{"zpool list -H -o name tank", "zpool-list-exported-pool.stderr"}
	exportedGet    = [2]string{"zfs get -j -p -r", "zfs-get-exported-pool.stderr"}
	importExported = [2]string{"zpool import", "zpool-import-exported.txt"}
	importNone     = [2]string{"zpool import", "zpool-import-none.stderr"}
)

// An exported pool (zpool import lists it) is not imported, never gone; a
// pool that is neither imported nor importable is gone.
func TestExportedPoolIsNotImportedNotGone(t *testing.T) {
	ctx := context.Background()
	exported := &scriptRunner{t: t, answers: [][2]string{versionAnswer, exportedStatus, importExported}}
	_, err := NewClient(exported).Pool(ctx, "tank")
	var ni *NotImportedError
	if !errors.Is(err, ErrNotImported) || errors.Is(err, ErrNotFound) || !errors.As(err, &ni) {
		t.Fatalf("exported pool: got %v, want ErrNotImported and not ErrNotFound", err)
	}
	if ni.Pool.State != "ONLINE" || ni.ImportCommand() != "zpool import -d /dev/disk/by-id -l tank" {
		t.Fatalf("%+v %q", ni, ni.ImportCommand())
	}

	// Found by the GUID in state under another name: import it under the configured one.
	pools, _ := ParseImport(testdata(t, "zpool-import-exported.txt"))
	_, err = NewClient(&scriptRunner{t: t, answers: [][2]string{versionAnswer, exportedStatus, importExported}}).LookupPool(ctx, "media", pools[0].ID)
	if !errors.As(err, &ni) || ni.ImportCommand() != "zpool import -d /dev/disk/by-id -l "+pools[0].ID+" media" {
		t.Fatalf("by GUID: %v", err)
	}

	gone := &scriptRunner{t: t, answers: [][2]string{versionAnswer, exportedStatus, importNone}}
	if _, err := NewClient(gone).Pool(ctx, "tank"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotImported) {
		t.Fatalf("absent pool: got %v, want ErrNotFound", err)
	}

	// zpool import itself failing says nothing: neither answer.
	broken := &scriptRunner{t: t, answers: [][2]string{versionAnswer, exportedStatus, {"zpool import", "zpool-destroy-busy.stderr"}}}
	if _, err := NewClient(broken).Pool(ctx, "tank"); err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotImported) {
		t.Fatalf("unknown: got %v, want an error that is neither", err)
	}
}

// Datasets of a pool that is not imported are not gone either, whether
// read from the pool's recursive read, alone, or listed for destroy.
func TestDatasetsOfExportedPoolAreNotGone(t *testing.T) {
	ctx := context.Background()
	r := &scriptRunner{t: t, answers: [][2]string{versionAnswer, exportedGet, importExported}}
	if _, err := NewClient(r).Dataset(ctx, "tank/a"); !errors.Is(err, ErrNotImported) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Dataset: %v", err)
	}
	r = &scriptRunner{t: t, answers: [][2]string{versionAnswer, {"zfs list", "zfs-get-exported-pool.stderr"}, exportedList, importExported}}
	if _, err := NewClient(r).Dependents(ctx, "tank/a"); !errors.Is(err, ErrNotImported) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Dependents: %v", err)
	}
	// The pool is imported and the dataset is not there: gone.
	r = &scriptRunner{t: t, answers: [][2]string{versionAnswer, {"zfs list", "zfs-get-nosuch-dataset.stderr"}, {"zpool list -H -o name tank", "zpool-list.tsv"}}}
	if _, err := NewClient(r).Dependents(ctx, "tank/nosuch"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Dependents of a missing dataset: %v", err)
	}
	if r.didRun("zpool import") {
		t.Fatal("zpool import ran for a dataset of an imported pool")
	}
}

// zpool create (with -f) never runs over an exported pool of the same name.
func TestCreatePoolRefusesExportedPoolOfSameName(t *testing.T) {
	r := &scriptRunner{t: t, answers: [][2]string{importExported, {"zpool create", "zpool-version.txt"}}}
	err := NewClient(r).CreatePool(context.Background(), PoolSpec{Name: "tank", Force: true,
		Topology: Expand([]VdevSpec{{Disks: []string{d1}}})})
	if !errors.Is(err, ErrNotImported) {
		t.Fatalf("got %v, want ErrNotImported", err)
	}
	if r.didRun("zpool create") {
		t.Fatal("zpool create ran")
	}
	r = &scriptRunner{t: t, answers: [][2]string{importExported, {"zpool create", "zpool-version.txt"}}}
	if err := NewClient(r).CreatePool(context.Background(), PoolSpec{Name: "other", Topology: Expand([]VdevSpec{{Disks: []string{d3}}})}); err != nil {
		t.Fatalf("another name: %v", err)
	}
}

// Own and inherited encryption, and a key that is not loaded, as the VM
// reports them after an import without -l.
func TestEncryptedRecorded(t *testing.T) {
	for _, f := range []string{"zfs-get-key-unavailable.json", "zfs-get-key-unavailable.tsv", "zfs-get-encrypted.json"} {
		t.Run(f, func(t *testing.T) {
			var sets map[string]*Dataset
			var err error
			if strings.HasSuffix(f, ".json") {
				sets, err = ParseGetJSON(testdata(t, f))
			} else {
				sets, err = ParseGetTabs(testdata(t, f))
			}
			if err != nil {
				t.Fatal(err)
			}
			wantLoaded := f == "zfs-get-encrypted.json"
			for name, want := range map[string]struct {
				enc  bool
				root string
			}{"tank": {}, "tank/a": {}, "tank/secret": {true, "tank/secret"}, "tank/secret/app": {true, "tank/secret"}} {
				d := sets[name]
				if d == nil {
					t.Fatalf("no %s", name)
				}
				enc, root, loaded := d.Encrypted()
				if enc != want.enc || root != want.root || enc && loaded != wantLoaded {
					t.Errorf("%s: encrypted %t root %q loaded %t, want %t %q %t", name, enc, root, loaded, want.enc, want.root, wantLoaded)
				}
			}
		})
	}
}
