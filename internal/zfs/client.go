package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// ErrNotFound reports that a pool or dataset does not exist on the host:
// the command ran and ZFS said so. Anything else (an unreachable host) is
// never ErrNotFound.
var ErrNotFound = errors.New("does not exist")

// Version is an OpenZFS userland version.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// JSON reports whether this version prints JSON (-j), added in 2.3.
func (v Version) JSON() bool { return v.AtLeast(2, 3) }

var versionRe = regexp.MustCompile(`zfs-(\d+)\.(\d+)\.(\d+)`)

// ParseVersion reads the userland version from `zfs version` output.
func ParseVersion(out []byte) (Version, error) {
	m := versionRe.FindSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("cannot read an OpenZFS version from %q", bytes.TrimSpace(out))
	}
	atoi := func(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
	return Version{atoi(m[1]), atoi(m[2]), atoi(m[3])}, nil
}

// Registry shares per-host read caches among the clients of one provider
// operation. Create one per provider configuration.
type Registry struct {
	mu    sync.Mutex
	hosts map[string]*hostState
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{hosts: map[string]*hostState{}} }

// Client returns a client for the host r reaches, sharing that host's cache.
func (reg *Registry) Client(r remote.Runner) *Client {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	h := reg.hosts[r.String()]
	if h == nil {
		h = &hostState{datasets: map[string]*datasetsCall{}, stale: map[string]bool{}}
		reg.hosts[r.String()] = h
	}
	return &Client{r: r, host: h}
}

// hostState is what clients of one host share.
type hostState struct {
	mu sync.Mutex
	// versionMu makes concurrent first callers wait for one zfs version.
	versionMu sync.Mutex
	version   *Version
	datasets  map[string]*datasetsCall // by pool
	// stale names datasets created since their pool was read: they are read
	// one by one rather than by reading the whole pool again.
	stale map[string]bool
	// Counters for benchmarks and tests.
	commands int
}

// datasetsCall is one recursive read of a pool's datasets, shared by
// everyone who asks while it runs and afterwards until a write.
type datasetsCall struct {
	done chan struct{}
	sets map[string]*Dataset
	err  error
}

// Client runs ZFS commands on one host.
type Client struct {
	r    remote.Runner
	host *hostState
}

// NewClient returns a client with a cache of its own (no sharing).
func NewClient(r remote.Runner) *Client { return NewRegistry().Client(r) }

// Runner returns the runner the client uses.
func (c *Client) Runner() remote.Runner { return c.r }

// Commands reports how many commands clients of this host have run.
func (c *Client) Commands() int {
	c.host.mu.Lock()
	defer c.host.mu.Unlock()
	return c.host.commands
}

func (c *Client) run(ctx context.Context, cmd remote.Cmd) ([]byte, error) {
	c.host.mu.Lock()
	c.host.commands++
	c.host.mu.Unlock()
	res, err := c.r.Run(ctx, cmd)
	return res.Stdout, err
}

// write runs a command that changes the host and drops the read caches.
func (c *Client) write(ctx context.Context, cmd remote.Cmd) ([]byte, error) {
	defer c.invalidate()
	return c.run(ctx, cmd)
}

func (c *Client) invalidate() {
	c.host.mu.Lock()
	c.host.datasets = map[string]*datasetsCall{}
	c.host.stale = map[string]bool{}
	c.host.mu.Unlock()
}

// writeNew runs a command that only adds the dataset name: the cached read
// of its pool stays valid for every other dataset, so creating many datasets
// does not re-read the whole pool after each one.
func (c *Client) writeNew(ctx context.Context, name string, cmd remote.Cmd) ([]byte, error) {
	defer func() {
		c.host.mu.Lock()
		c.host.stale[name] = true
		c.host.mu.Unlock()
	}()
	return c.run(ctx, cmd)
}

// Version returns the host's OpenZFS version, asked once per host.
func (c *Client) Version(ctx context.Context) (Version, error) {
	c.host.versionMu.Lock()
	defer c.host.versionMu.Unlock()
	c.host.mu.Lock()
	if v := c.host.version; v != nil {
		c.host.mu.Unlock()
		return *v, nil
	}
	c.host.mu.Unlock()
	out, err := c.run(ctx, remote.Command("zfs", "version"))
	if err != nil {
		if code, ok := remote.ExitCode(err); ok && code == 127 {
			return Version{}, fmt.Errorf("OpenZFS is not installed on %s (zfs: command not found): %w", c.r, err)
		}
		return Version{}, err
	}
	v, err := ParseVersion(out)
	if err != nil {
		return Version{}, err
	}
	c.host.mu.Lock()
	c.host.version = &v
	c.host.mu.Unlock()
	return v, nil
}

// notFound turns ZFS's "does not exist" answers into ErrNotFound.
func notFound(err error, what string) error {
	var ee *remote.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	s := ee.Stderr
	if strings.Contains(s, "no such pool") || strings.Contains(s, "dataset does not exist") ||
		strings.Contains(s, "no such dataset") {
		return fmt.Errorf("%s %w: %s", what, ErrNotFound, strings.TrimSpace(s))
	}
	return err
}
