package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// PoolOf returns the pool a dataset belongs to.
func PoolOf(dataset string) string {
	pool, _, _ := strings.Cut(dataset, "/")
	pool, _, _ = strings.Cut(pool, "@")
	return pool
}

// Datasets returns every filesystem and volume of pool with all their
// properties, from one recursive zfs get shared by all clients of the host
// until the next write.
func (c *Client) Datasets(ctx context.Context, pool string) (map[string]*Dataset, error) {
	c.host.mu.Lock()
	call, ok := c.host.datasets[pool]
	if !ok {
		call = &datasetsCall{done: make(chan struct{})}
		c.host.datasets[pool] = call
	}
	c.host.mu.Unlock()
	if !ok {
		sets, err := c.readDatasets(ctx, pool)
		c.host.mu.Lock()
		call.sets, call.err = sets, err
		c.host.mu.Unlock()
		close(call.done)
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.host.mu.Lock()
	defer c.host.mu.Unlock()
	if call.err != nil {
		// Do not keep failures: the next reader tries again.
		if c.host.datasets[pool] == call {
			delete(c.host.datasets, pool)
		}
		return nil, call.err
	}
	// A copy: datasets read one by one are filed into the shared map later.
	sets := make(map[string]*Dataset, len(call.sets))
	for k, v := range call.sets {
		sets[k] = v
	}
	return sets, nil
}

func isDone(call *datasetsCall) bool {
	select {
	case <-call.done:
		return true
	default:
		return false
	}
}

func (c *Client) readDatasets(ctx context.Context, pool string) (map[string]*Dataset, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	var out []byte
	if v.JSON() {
		out, err = c.run(ctx, remote.Command("zfs", "get", "-j", "-p", "-r", "-t", "filesystem,volume", "all", pool))
	} else {
		out, err = c.run(ctx, remote.Command("zfs", "get", "-H", "-p", "-r", "-t", "filesystem,volume",
			"-o", "name,property,value,source", "all", pool))
	}
	if err != nil {
		// The root dataset is missing exactly when the pool is not imported.
		err = notFound(err, "pool "+pool)
		if errors.Is(err, ErrNotFound) {
			err = c.missingPool(ctx, pool, "", err)
		}
		return nil, err
	}
	if v.JSON() {
		return ParseGetJSON(out)
	}
	return ParseGetTabs(out)
}

// Dataset returns one dataset, or an error wrapping ErrNotFound. It comes
// from the shared read of its pool, or, for a dataset created since that
// read, from a read of that dataset alone.
func (c *Client) Dataset(ctx context.Context, name string) (*Dataset, error) {
	c.host.mu.Lock()
	stale := c.host.stale[name]
	c.host.mu.Unlock()
	if stale {
		return c.readOne(ctx, name)
	}
	sets, err := c.Datasets(ctx, PoolOf(name))
	if err != nil {
		return nil, err
	}
	d, ok := sets[name]
	if !ok {
		return nil, fmt.Errorf("dataset %s %w on %s", name, ErrNotFound, c.r)
	}
	return d, nil
}

// readOne reads a single dataset and files it into the cached pool read.
func (c *Client) readOne(ctx context.Context, name string) (*Dataset, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	var out []byte
	if v.JSON() {
		out, err = c.run(ctx, remote.Command("zfs", "get", "-j", "-p", "all", name))
	} else {
		out, err = c.run(ctx, remote.Command("zfs", "get", "-H", "-p", "-o", "name,property,value,source", "all", name))
	}
	if err != nil {
		err = notFound(err, "dataset "+name)
		if errors.Is(err, ErrNotFound) {
			err = c.missingDataset(ctx, name, err)
		}
		return nil, err
	}
	var sets map[string]*Dataset
	if v.JSON() {
		sets, err = ParseGetJSON(out)
	} else {
		sets, err = ParseGetTabs(out)
	}
	if err != nil {
		return nil, err
	}
	d, ok := sets[name]
	if !ok {
		return nil, fmt.Errorf("dataset %s %w on %s", name, ErrNotFound, c.r)
	}
	// File it into a finished pool read. With no pool read cached, the next
	// one will include it; with one still running, which may have listed the
	// pool before the dataset existed, it stays stale and is read alone again.
	c.host.mu.Lock()
	call, cached := c.host.datasets[PoolOf(name)]
	switch {
	case !cached:
		delete(c.host.stale, name)
	case isDone(call) && call.err == nil:
		call.sets[name] = d
		delete(c.host.stale, name)
	}
	c.host.mu.Unlock()
	return d, nil
}

// DatasetSpec describes a dataset to create.
type DatasetSpec struct {
	Name string
	// Volume creates a zvol of VolSize bytes (a string zfs understands, e.g. "10G").
	Volume       bool
	VolSize      string
	VolBlockSize string
	Sparse       bool
	Properties   map[string]string
	// Key is the encryption key or passphrase, sent on stdin; empty when the
	// key comes from a keylocation file or there is no encryption.
	Key []byte
}

// CreateDataset creates a filesystem or volume; parents must exist.
func (c *Client) CreateDataset(ctx context.Context, s DatasetSpec) error {
	args := []string{"create"}
	if s.Volume {
		if s.Sparse {
			args = append(args, "-s")
		}
		if s.VolBlockSize != "" {
			args = append(args, "-b", s.VolBlockSize)
		}
		args = append(args, "-V", s.VolSize)
	}
	args = append(args, propertyArgs(s.Properties)...)
	args = append(args, s.Name)
	cmd := remote.Command("zfs", args...)
	if len(s.Key) > 0 {
		cmd = cmd.WithStdin(bytes.NewReader(s.Key))
	}
	_, err := c.writeNew(ctx, s.Name, cmd)
	return err
}

// propertyArgs renders -o k=v pairs in a stable order.
func propertyArgs(props map[string]string) []string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, "-o", k+"="+props[k])
	}
	return args
}

// SetProperties sets properties on a dataset in one command.
func (c *Client) SetProperties(ctx context.Context, name string, props map[string]string) error {
	if len(props) == 0 {
		return nil
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"set"}
	for _, k := range keys {
		args = append(args, k+"="+props[k])
	}
	_, err := c.write(ctx, remote.Command("zfs", append(args, name)...))
	return notFound(err, "dataset "+name)
}

// Inherit clears a locally set property so the dataset inherits it again.
func (c *Client) Inherit(ctx context.Context, name, prop string) error {
	_, err := c.write(ctx, remote.Command("zfs", "inherit", prop, name))
	return notFound(err, "dataset "+name)
}

// Rename renames a dataset in place.
func (c *Client) Rename(ctx context.Context, from, to string) error {
	_, err := c.write(ctx, remote.Command("zfs", "rename", from, to))
	return notFound(err, "dataset "+from)
}

// Dependents lists what would be destroyed with a dataset: its descendant
// datasets and its snapshots (and theirs).
func (c *Client) Dependents(ctx context.Context, name string) ([]string, error) {
	out, err := c.run(ctx, remote.Command("zfs", "list", "-H", "-o", "name", "-t", "all", "-r", name))
	if err != nil {
		err = notFound(err, "dataset "+name)
		if errors.Is(err, ErrNotFound) {
			err = c.missingDataset(ctx, name, err)
		}
		return nil, err
	}
	var deps []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && l != name {
			deps = append(deps, l)
		}
	}
	return deps, nil
}

// DestroyDataset destroys a dataset; recursive also destroys its children
// and snapshots.
func (c *Client) DestroyDataset(ctx context.Context, name string, recursive bool) error {
	args := []string{"destroy"}
	if recursive {
		args = append(args, "-r")
	}
	_, err := c.write(ctx, remote.Command("zfs", append(args, name)...))
	return notFound(err, "dataset "+name)
}

// LoadKey loads the key of an encryption root: from key (on stdin) when it
// is not nil, otherwise from the dataset's keylocation.
func (c *Client) LoadKey(ctx context.Context, name string, key io.Reader) error {
	cmd := remote.Command("zfs", "load-key", name)
	if key != nil {
		cmd = remote.Command("zfs", "load-key", "-L", "prompt", name).WithStdin(key)
	}
	_, err := c.write(ctx, cmd)
	return notFound(err, "dataset "+name)
}

// Encrypted reports whether a dataset is encrypted, and if so its
// encryption root (the dataset whose key unlocks it: itself, or the
// ancestor it inherits encryption from) and whether that key is loaded
// (keystatus available).
func (d *Dataset) Encrypted() (encrypted bool, root string, keyLoaded bool) {
	if e := d.Get("encryption"); e == "" || e == "off" {
		return false, "", false
	}
	return true, d.Get("encryptionroot"), d.Get("keystatus") == "available"
}

// MountUnlocked mounts the filesystems that the key of encryption root
// root unlocks (root and the descendants that inherit its encryption) and
// that would be mounted by zfs mount -a: canmount=on, a mountpoint that is
// a path, not mounted yet. Parents are mounted before their children.
func (c *Client) MountUnlocked(ctx context.Context, root string) error {
	sets, err := c.Datasets(ctx, PoolOf(root))
	if err != nil {
		return err
	}
	var names []string
	for n, d := range sets {
		if n != root && !strings.HasPrefix(n, root+"/") || d.Type != "filesystem" {
			continue
		}
		enc, r, loaded := d.Encrypted()
		mp := d.Get("mountpoint")
		if enc && r == root && loaded && d.Get("canmount") == "on" && strings.HasPrefix(mp, "/") && d.Get("mounted") != "yes" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := c.write(ctx, remote.Command("zfs", "mount", n)); err != nil {
			return fmt.Errorf("mounting %s: %w", n, notFound(err, "dataset "+n))
		}
	}
	return nil
}

// ChangeKey replaces the wrapping key of an encrypted dataset with the key
// read from key (zfs change-key, keylocation=prompt). The current key must be loaded.
func (c *Client) ChangeKey(ctx context.Context, name, format string, key io.Reader) error {
	args := []string{"change-key", "-o", "keylocation=prompt"}
	if format != "" {
		args = append(args, "-o", "keyformat="+format)
	}
	_, err := c.write(ctx, remote.Command("zfs", append(args, name)...).WithStdin(key))
	return notFound(err, "dataset "+name)
}
