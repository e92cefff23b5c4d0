package pxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// FileMode is the mode of every file Server writes: readable by the TFTP or
// HTTP daemon, whatever user it runs as.
const FileMode fs.FileMode = 0o644

// Server is a netboot server's file system, reached through Runner (the
// local runner for a directory on the machine running Terraform, the SSH
// runner for another host).
type Server struct {
	Runner remote.Runner
	// Root is the directory the netboot server serves. When set, Read and
	// Write first check that it exists and fail with ErrRootMissing if it
	// does not, and Write never creates it (only directories below it): a
	// root that is gone is an unmounted file system or a rebuilt server,
	// not files to restore into an empty mount point.
	Root string
}

// ErrRootMissing reports that the netboot root directory does not exist.
var ErrRootMissing = errors.New("netboot root directory does not exist")

// rootCheckScript exits 3 when "$1" is not a directory.
const rootCheckScript = `[ -d "$1" ] || exit 3`

// checkRoot returns an error matching ErrRootMissing when Root is set and
// is not a directory on the server.
func (s Server) checkRoot(ctx context.Context) error {
	if s.Root == "" {
		return nil
	}
	if err := checkPath(s.Root); err != nil {
		return err
	}
	_, err := s.Runner.Run(ctx, remote.Script(rootCheckScript, s.Root))
	var exit *remote.ExitError
	if errors.As(err, &exit) && exit.Code == 3 {
		return fmt.Errorf("%w: %s on %s (not mounted, or the netboot server was rebuilt?)", ErrRootMissing, s.Root, s.Runner)
	}
	if err != nil {
		return fmt.Errorf("checking netboot root %s on %s: %w", s.Root, s.Runner, err)
	}
	return nil
}

// prepareScript creates the parent directories given before "--" with mode
// 0755 (the upload itself would create them under umask 077, which an
// unprivileged TFTP daemon cannot traverse; existing directories are left as
// they are) and refuses targets, given after "--", that are directories: the
// upload's final "mv -f" would move the new file into such a directory and
// report success. Paths are absolute, so none equals "--".
const prepareScript = `set -e
umask 022
while [ "$#" -gt 0 ]; do
	if [ "$1" = -- ]; then shift; break; fi
	mkdir -p -- "$1"
	shift
done
for f; do
	if [ -d "$f" ]; then
		echo "$f is a directory, not a file: remove it so the boot file can be written" >&2
		exit 1
	fi
done`

// Write stores every file atomically (temporary file in the same directory,
// then mv -f over the target) with mode 0644, creating missing parent
// directories with mode 0755 and refusing targets that are directories.
// The files are uploaded concurrently; each one is either replaced whole or
// left as it was, and every failure is reported.
func (s Server) Write(ctx context.Context, files []File) error {
	if len(files) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	for _, f := range files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		dirs[path.Dir(f.Path)] = true
	}
	if err := s.checkRoot(ctx); err != nil {
		return err
	}
	args := append(append(sortedKeys(dirs), "--"), Paths(files)...)
	if _, err := s.Runner.Run(ctx, remote.Script(prepareScript, args...)); err != nil {
		return fmt.Errorf("preparing netboot directories on %s: %w", s.Runner, err)
	}
	errs := make([]error, len(files))
	each(len(files), func(i int) {
		errs[i] = s.Runner.Upload(ctx, files[i].Path, strings.NewReader(files[i].Content), FileMode)
	})
	return errors.Join(errs...)
}

// Read returns the content of every path that exists, reading them
// concurrently. A missing path is absent from the map; a missing Root is
// ErrRootMissing; any other failure,
// an unreachable server above all, is an error (test it with
// remote.IsUnreachable), never a missing file.
func (s Server) Read(ctx context.Context, paths []string) (map[string]string, error) {
	unique := map[string]bool{}
	for _, p := range paths {
		if err := checkPath(p); err != nil {
			return nil, err
		}
		unique[p] = true
	}
	if err := s.checkRoot(ctx); err != nil {
		return nil, err
	}
	todo := sortedKeys(unique)
	contents := make([][]byte, len(todo))
	errs := make([]error, len(todo))
	each(len(todo), func(i int) { contents[i], errs[i] = s.Runner.ReadFile(ctx, todo[i]) })
	got := make(map[string]string, len(todo))
	for i, p := range todo {
		switch err := errs[i]; {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			got[p] = string(contents[i])
		}
	}
	return got, nil
}

// each runs f(0) ... f(n-1) concurrently and waits for them: a netboot
// config has a handful of files, and over SSH they share one connection.
func each(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// removeScript deletes the files given before "--" and then every directory
// given after it that is empty. Paths are absolute, so none equals "--".
// A directory that gains an entry meanwhile is left alone.
const removeScript = `set -e
while [ "$#" -gt 0 ]; do
	if [ "$1" = -- ]; then shift; break; fi
	rm -f -- "$1"
	shift
done
for d; do
	[ -d "$d" ] || continue
	[ -z "$(ls -A -- "$d")" ] || continue
	rmdir -- "$d" 2>/dev/null || [ -n "$(ls -A -- "$d")" ] || rmdir -- "$d"
done`

// piSerialDir matches a Raspberry Pi serial directory name.
var piSerialDir = regexp.MustCompile(`^[0-9a-f]{8}$`)

// Remove deletes paths; missing ones are fine, so it is idempotent. When it
// removes a Raspberry Pi's cmdline.txt or config.txt, it also removes the
// Pi's serial directory if nothing else is left in it (firmware files a
// user put there keep it).
func (s Server) Remove(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := checkPath(p); err != nil {
			return err
		}
		if base := path.Base(p); base == "cmdline.txt" || base == "config.txt" {
			if dir := path.Dir(p); piSerialDir.MatchString(path.Base(dir)) {
				dirs[dir] = true
			}
		}
	}
	args := append(append(append([]string{}, paths...), "--"), sortedKeys(dirs)...)
	if _, err := s.Runner.Run(ctx, remote.Script(removeScript, args...)); err != nil {
		return fmt.Errorf("removing netboot files on %s: %w", s.Runner, err)
	}
	return nil
}

// checkPath refuses paths Server must never act on: relative or unclean
// ones could land anywhere.
func checkPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("pxe: refusing netboot file path %q: it must be an absolute, clean file path", p)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
