package rke2sim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Executables the simulator server takes from the images tarball(s).
const (
	etcdBinary      = "etcd"
	apiServerBinary = "kube-apiserver"
)

// imagesStampName records which tarballs the binaries were extracted from.
const imagesStampName = ".images-stamp"

// childStopGrace is how long a child gets after SIGTERM before SIGKILL.
const childStopGrace = 15 * time.Second

// spawner starts child processes from one OS thread that never exits.
// Children get Pdeathsig=SIGKILL, which Linux delivers when the thread that
// forked them exits; starting them from a locked, everlasting thread makes
// that "when the simulator exits".
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range s.reqs {
			r.errc <- r.cmd.Start()
		}
	}()
	return s
}

// child is a running etcd or kube-apiserver.
type child struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and was reaped
	waitErr error
}

// start runs path with args, logging to logPath (appended).
func (s *spawner) start(name, path, logPath string, args []string) (*child, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "---- %s: rke2 simulator starting %s\n", time.Now().UTC().Format(time.RFC3339), name)
	cmd := exec.Command(path, args...)
	cmd.Env = childEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, errc: errc}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// childEnv is the environment of etcd and kube-apiserver: the simulator's
// without NOTIFY_SOCKET (etcd would tell systemd it is ready on its own).
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs and waits.
func (c *child) stop(grace time.Duration) {
	if c == nil || c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// logTail returns the last n bytes of the child's log.
func (c *child) logTail(n int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(bytes.TrimSpace(b))
}

// exitError describes how the child ended, with the tail of its log.
func (c *child) exitError() error {
	return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", c.name, c.waitErr, c.logPath, c.logTail(2000))
}

// extractBinaries extracts the named executables from the images
// tarballs (*.tar.gz, *.tgz) in imagesDir into binDir, unless binDir
// already holds them from the same tarballs (same names, sizes and
// modification times). Members are matched by base name.
func extractBinaries(imagesDir, binDir string, names ...string) error {
	tarballs, err := imageTarballs(imagesDir)
	if err != nil {
		return err
	}
	if len(tarballs) == 0 {
		return fmt.Errorf("no images tarball (*.tar.gz) in %s: the simulator needs %s from rke2-images.linux-amd64.tar.gz", imagesDir, strings.Join(names, " and "))
	}
	var stamp strings.Builder
	for _, t := range tarballs {
		fi, err := os.Stat(t)
		if err != nil {
			return err
		}
		fmt.Fprintf(&stamp, "%s %d %d\n", filepath.Base(t), fi.Size(), fi.ModTime().UnixNano())
	}
	stampPath := filepath.Join(binDir, imagesStampName)
	if old, err := os.ReadFile(stampPath); err == nil && string(old) == stamp.String() && allExist(binDir, names) {
		return nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string]bool{}
	for _, t := range tarballs {
		if err := extractFrom(t, binDir, want, found); err != nil {
			return fmt.Errorf("extracting %s: %w", t, err)
		}
	}
	for _, n := range names {
		if !found[n] {
			return fmt.Errorf("%s not found in the images tarballs in %s", n, imagesDir)
		}
	}
	return writeFileAtomic(stampPath, []byte(stamp.String()), 0o644)
}

func imageTarballs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz")) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

func allExist(dir string, names []string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// extractFrom copies the wanted regular files of one tar.gz into dir.
func extractFrom(tarball, dir string, want, found map[string]bool) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || !want[name] {
			continue
		}
		dst := filepath.Join(dir, name)
		tmp := dst + ".tmp"
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			os.Remove(tmp)
			return err
		}
		if err := out.Close(); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		found[name] = true
	}
}
