package pxe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// recordingRunner records what Server asks of a host without running it.
type recordingRunner struct {
	mu      sync.Mutex
	cmds    []remote.Cmd
	uploads map[string]string
	modes   map[string]fs.FileMode
}

func (r *recordingRunner) String() string { return "root@recorder:22" }

func (r *recordingRunner) Run(_ context.Context, cmd remote.Cmd) (remote.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, cmd)
	return remote.Result{}, nil
}

func (r *recordingRunner) Upload(_ context.Context, p string, src io.Reader, mode fs.FileMode) error {
	b, err := io.ReadAll(src)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.uploads == nil {
		r.uploads, r.modes = map[string]string{}, map[string]fs.FileMode{}
	}
	r.uploads[p], r.modes[p] = string(b), mode
	return err
}

func (r *recordingRunner) ReadFile(context.Context, string) ([]byte, error) {
	return nil, fs.ErrNotExist
}

// User paths reach the shell only as positional parameters of constant scripts.
func TestServerPassesPathsAsArgumentsNeverInScripts(t *testing.T) {
	r := &recordingRunner{}
	s := Server{Runner: r}
	ctx := context.Background()
	root := "/srv/it's $(reboot)"
	files, err := Render(Config{Root: root, RaspberryPi: &RaspberryPi{Serial: "1a2b3c4d", Cmdline: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, files); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, append(Paths(files), root+"/pxelinux.cfg/01-aa-bb-cc-dd-ee-f0")); err != nil {
		t.Fatal(err)
	}
	if len(r.cmds) != 2 {
		t.Fatalf("want a mkdir and a remove command, got %d: %v", len(r.cmds), r.cmds)
	}
	if got, want := r.cmds[0].Args, []string{"sh", "-c", prepareScript, "homelab", root + "/1a2b3c4d", "--",
		files[0].Path, files[1].Path}; !reflect.DeepEqual(got, want) {
		t.Errorf("prepare argv %q, want %q", got, want)
	}
	want := []string{"sh", "-c", removeScript, "homelab", files[0].Path, files[1].Path,
		root + "/pxelinux.cfg/01-aa-bb-cc-dd-ee-f0", "--", root + "/1a2b3c4d"}
	if got := r.cmds[1].Args; !reflect.DeepEqual(got, want) {
		t.Errorf("remove argv %q, want %q", got, want)
	}
	for _, f := range files {
		if r.uploads[f.Path] != f.Content || r.modes[f.Path] != 0o644 {
			t.Errorf("upload of %s: %q mode %o", f.Path, r.uploads[f.Path], r.modes[f.Path])
		}
	}
	for _, bad := range []string{"", "relative/x", "/a/../b", "/a/", "/"} {
		if err := s.Write(ctx, []File{{Path: bad}}); err == nil {
			t.Errorf("Write accepted path %q", bad)
		}
		if err := s.Remove(ctx, []string{bad}); err == nil {
			t.Errorf("Remove accepted path %q", bad)
		}
		if _, err := s.Read(ctx, []string{bad}); err == nil {
			t.Errorf("Read accepted path %q", bad)
		}
	}
}

// target is a netboot server reached one way or another.
type target struct {
	name string
	new  func(t *testing.T) Server
}

func startSSHD(t *testing.T) *testbed.SSHD {
	t.Helper()
	s, err := testbed.StartSSHD(context.Background(), t.TempDir(), testbed.SSHDOptions{})
	if err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func sshRunner(t *testing.T, s *testbed.SSHD) remote.Runner {
	t.Helper()
	p := remote.NewPool(nil)
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.Runner(remote.Config{Host: s.Addr, Port: s.Port, User: "root", PrivateKey: string(s.ClientKeyPEM),
		KnownHostsFile: s.KnownHostsPath, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// targets returns the local runner and an SSH runner against a real sshd
// on this machine: both reach the test's temporary directories.
func targets(t *testing.T) []target {
	s := startSSHD(t)
	return []target{
		{"local", func(*testing.T) Server { return Server{Runner: remote.NewLocal(false)} }},
		{"ssh", func(t *testing.T) Server { return Server{Runner: sshRunner(t, s)} }},
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tree lists every file and directory below root with its mode.
func tree(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(root, p); rel != "." {
			out[rel] = info.Mode()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestServerWriteReadDiffRemove(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, ctx := tg.new(t), ctxFor(t)
			// Root does not exist yet: Write creates it.
			root := filepath.Join(t.TempDir(), "srv", "tftp")
			cfg := Config{MAC: "52:54:00:ab:cd:ef", Root: root, Kernel: "debian/linux",
				Initrd: []string{"debian/initrd.gz"}, Cmdline: "console=ttyS0"}
			files, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Read(ctx, Paths(files))
			if err != nil || len(got) != 0 {
				t.Fatalf("Read before Write (root missing) = %q, %v; want an empty map", got, err)
			}
			if d := Diff(files, got); len(d) != 2 {
				t.Fatalf("Diff before Write = %q", d)
			}
			if err := s.Write(ctx, files); err != nil {
				t.Fatal(err)
			}
			want := map[string]fs.FileMode{
				"52-54-00-ab-cd-ef.ipxe":            0o644,
				"pxelinux.cfg":                      fs.ModeDir | 0o755,
				"pxelinux.cfg/01-52-54-00-ab-cd-ef": 0o644,
			}
			if got := tree(t, root); !reflect.DeepEqual(got, want) {
				t.Fatalf("tree after Write = %v, want %v", got, want)
			}
			if st, err := os.Stat(root); err != nil || st.Mode() != fs.ModeDir|0o755 {
				t.Errorf("created root: %v, %v; want drwxr-xr-x", st.Mode(), err)
			}
			for _, f := range files {
				if b, err := os.ReadFile(f.Path); err != nil || string(b) != f.Content {
					t.Fatalf("%s on disk = %q, %v", f.Path, b, err)
				}
			}
			got, err = s.Read(ctx, Paths(files))
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(files, got); len(d) != 0 {
				t.Fatalf("Diff after Write = %q", d)
			}

			// Drift: someone edits one file and deletes the other.
			if err := os.WriteFile(files[0].Path, []byte("#!ipxe\nexit\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(files[1].Path); err != nil {
				t.Fatal(err)
			}
			got, err = s.Read(ctx, Paths(files))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got[files[1].Path]; ok || got[files[0].Path] != "#!ipxe\nexit\n" {
				t.Fatalf("Read after drift = %q", got)
			}
			d := Diff(files, got)
			if len(d) != 2 || !strings.HasPrefix(d[0], files[0].Path+": changed (line 2:") || d[1] != files[1].Path+": missing" {
				t.Fatalf("Diff after drift = %q", d)
			}

			// A directory in a file's place is refused, not written into.
			if err := os.Mkdir(files[1].Path, 0o755); err != nil {
				t.Fatal(err)
			}
			err = s.Write(ctx, files)
			if code, ok := remote.ExitCode(err); !ok || code != 1 || !strings.Contains(err.Error(), "is a directory, not a file") {
				t.Fatalf("Write over a directory: %v", err)
			}
			if entries, _ := os.ReadDir(files[1].Path); len(entries) != 0 {
				t.Fatalf("Write put %v into the directory", entries)
			}
			if b, _ := os.ReadFile(files[0].Path); string(b) != "#!ipxe\nexit\n" {
				t.Fatalf("a refused Write changed %s: %q", files[0].Path, b)
			}
			if _, err := s.Read(ctx, Paths(files)); err == nil {
				t.Fatal("Read of a directory in a file's place must fail")
			}
			if err := os.Remove(files[1].Path); err != nil {
				t.Fatal(err)
			}

			// Remove is idempotent and keeps the shared pxelinux.cfg.
			for i := range 2 {
				if err := s.Remove(ctx, Paths(files)); err != nil {
					t.Fatalf("Remove #%d: %v", i+1, err)
				}
			}
			if got := tree(t, root); !reflect.DeepEqual(got, map[string]fs.FileMode{"pxelinux.cfg": fs.ModeDir | 0o755}) {
				t.Fatalf("tree after Remove = %v", got)
			}
			if got, err := s.Read(ctx, Paths(files)); err != nil || len(got) != 0 {
				t.Fatalf("Read after Remove = %q, %v", got, err)
			}
		})
	}
}

func TestServerRaspberryPiDirectory(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, ctx := tg.new(t), ctxFor(t)
			root := t.TempDir()
			files, err := Render(Config{Root: root, RaspberryPi: &RaspberryPi{
				Serial: "1A2B3C4D", Cmdline: "console=serial0,115200 ip=dhcp", Config: "arm_64bit=1"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, files); err != nil {
				t.Fatal(err)
			}
			want := map[string]fs.FileMode{"1a2b3c4d": fs.ModeDir | 0o755,
				"1a2b3c4d/cmdline.txt": 0o644, "1a2b3c4d/config.txt": 0o644}
			if got := tree(t, root); !reflect.DeepEqual(got, want) {
				t.Fatalf("tree = %v, want %v", got, want)
			}
			got, err := s.Read(ctx, Paths(files))
			if err != nil || len(Diff(files, got)) != 0 {
				t.Fatalf("Read = %q, %v", got, err)
			}
			// The now empty serial directory goes with the files.
			if err := s.Remove(ctx, Paths(files)); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, root); len(got) != 0 {
				t.Fatalf("tree after Remove = %v, want an empty root", got)
			}
			if err := s.Remove(ctx, Paths(files)); err != nil {
				t.Fatalf("second Remove: %v", err)
			}
			// Firmware files someone else put there keep the directory.
			if err := s.Write(ctx, files); err != nil {
				t.Fatal(err)
			}
			firmware := filepath.Join(root, "1a2b3c4d", "start4.elf")
			if err := os.WriteFile(firmware, []byte("fw"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := s.Remove(ctx, Paths(files)); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, root); !reflect.DeepEqual(got, map[string]fs.FileMode{
				"1a2b3c4d": fs.ModeDir | 0o755, "1a2b3c4d/start4.elf": 0o644}) {
				t.Fatalf("tree after Remove with firmware = %v", got)
			}
		})
	}
}

// Replacing a file goes through a temporary file and a rename: a reader
// (the TFTP daemon) sees the old or the new content, never a mix, and no
// temporary file stays behind.
func TestServerAtomicReplace(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, ctx := tg.new(t), ctxFor(t)
			root := t.TempDir()
			mac := "aa:bb:cc:dd:ee:f0"
			versions := make([]string, 2)
			for i := range versions {
				versions[i] = "#!ipxe\n" + strings.Repeat(string(rune('a'+i))+strings.Repeat("x", 63)+"\n", 4096) // 256 KiB
			}
			p := filepath.Join(root, "aa-bb-cc-dd-ee-f0.ipxe")
			if err := s.Write(ctx, []File{{Path: p, Content: versions[0]}}); err != nil {
				t.Fatal(err)
			}
			var stop atomic.Bool
			var reads, torn atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					b, err := os.ReadFile(p)
					reads.Add(1)
					if err != nil || (string(b) != versions[0] && string(b) != versions[1]) {
						torn.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
			for i := range 6 {
				files, err := Render(Config{MAC: mac, Root: root, IPXEScript: versions[(i+1)%2]})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Write(ctx, files); err != nil {
					t.Fatal(err)
				}
			}
			stop.Store(true)
			wg.Wait()
			if torn.Load() != 0 {
				t.Fatalf("%d of %d concurrent reads saw a missing or partial file", torn.Load(), reads.Load())
			}
			t.Logf("%d concurrent reads, all whole", reads.Load())
			if got := tree(t, root); !reflect.DeepEqual(got, map[string]fs.FileMode{"aa-bb-cc-dd-ee-f0.ipxe": 0o644}) {
				t.Fatalf("temporary files left behind: %v", got)
			}
			if b, _ := os.ReadFile(p); string(b) != versions[0] {
				t.Fatal("last write did not win")
			}
		})
	}
}

// A root full of spaces and shell syntax is written, read and removed
// exactly, and nothing in it runs.
func TestServerHostileRootSurvivesQuoting(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, ctx := tg.new(t), ctxFor(t)
			base := t.TempDir()
			marker := filepath.Join(base, "pwned")
			root := filepath.Join(base, "net boot $(touch "+marker+") `touch "+marker+"` ; touch "+marker+
				" & it's \"quoted\" * ? [x] {a,b} $HOME ~ | > < #c \\ -- -rf")
			for _, cfg := range []Config{
				{MAC: "aa:bb:cc:dd:ee:f0", Root: root, Kernel: "vmlinuz", Cmdline: "quiet $(touch " + marker + ")"},
				{Root: root, RaspberryPi: &RaspberryPi{Serial: "1a2b3c4d", Cmdline: "`touch " + marker + "`", Config: "x=$(id)"}},
			} {
				files, err := Render(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Write(ctx, files); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					if b, err := os.ReadFile(f.Path); err != nil || string(b) != f.Content {
						t.Fatalf("%q on disk = %q, %v", f.Path, b, err)
					}
				}
				got, err := s.Read(ctx, Paths(files))
				if err != nil {
					t.Fatal(err)
				}
				if d := Diff(files, got); len(d) != 0 {
					t.Fatalf("Diff = %q", d)
				}
				if err := s.Remove(ctx, Paths(files)); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					if _, err := os.Stat(f.Path); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("%q still there after Remove: %v", f.Path, err)
					}
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("part of a path was executed by a shell")
			}
			entries, _ := os.ReadDir(base)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			if len(names) != 1 || !strings.HasPrefix(names[0], "net boot $(touch ") {
				t.Fatalf("unexpected entries beside the root: %q", names)
			}
			// The Pi's serial directory went away; the shared pxelinux.cfg stays.
			if got := tree(t, root); !reflect.DeepEqual(got, map[string]fs.FileMode{"pxelinux.cfg": fs.ModeDir | 0o755}) {
				t.Fatalf("tree after Remove = %v", got)
			}
		})
	}
}

// An unreachable server must never read as "files missing": that would
// make drift detection plan to recreate every node's boot files.
func TestServerReadThroughDownSSHTargetIsAnError(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	s, ctx := Server{Runner: sshRunner(t, sshd)}, ctxFor(t)
	root := t.TempDir()
	files, err := Render(Config{MAC: "aa:bb:cc:dd:ee:f0", Root: root, Kernel: "vmlinuz"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, files); err != nil {
		t.Fatal(err)
	}
	if err := sshd.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := s.Read(ctx, append(Paths(files), filepath.Join(root, "missing")))
	if err == nil || got != nil {
		t.Fatalf("Read through a stopped sshd = %q, %v; want an error", got, err)
	}
	if !remote.IsUnreachable(err) || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want an unreachable-host error, not a missing file: %v", err)
	}
	t.Logf("failed after %s: %v", time.Since(start), err)
	if err := s.Write(ctx, files); err == nil || !remote.IsUnreachable(err) {
		t.Fatalf("Write through a stopped sshd: %v", err)
	}
	if err := s.Remove(ctx, Paths(files)); err == nil || !remote.IsUnreachable(err) {
		t.Fatalf("Remove through a stopped sshd: %v", err)
	}
	// Nothing was touched.
	for _, f := range files {
		if b, err := os.ReadFile(f.Path); err != nil || !bytes.Equal(b, []byte(f.Content)) {
			t.Fatalf("%s changed: %q, %v", f.Path, b, err)
		}
	}
}

// A Server with Root refuses to read or write when the root is gone (an
// unmounted file system): ErrRootMissing, and nothing is created.
func TestServerMissingRoot(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, ctx := tg.new(t), ctxFor(t)
			root := filepath.Join(t.TempDir(), "mnt", "tftp")
			s.Root = root
			files, err := Render(Config{MAC: "52:54:00:ab:cd:ef", Root: root, Kernel: "k", Initrd: []string{"i"}, Cmdline: "c"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Read(ctx, Paths(files)); !errors.Is(err, ErrRootMissing) {
				t.Fatalf("Read with the root missing = %q, %v; want ErrRootMissing", got, err)
			}
			if err := s.Write(ctx, files); !errors.Is(err, ErrRootMissing) {
				t.Fatalf("Write with the root missing = %v; want ErrRootMissing", err)
			}
			if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Write created the missing root: %v", err)
			}
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, files); err != nil {
				t.Fatalf("Write with the root present: %v", err)
			}
			if got, err := s.Read(ctx, Paths(files)); err != nil || len(got) != len(files) {
				t.Fatalf("Read with the root present = %d files, %v", len(got), err)
			}
		})
	}
}
