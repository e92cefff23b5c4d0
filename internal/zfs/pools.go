package zfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Device is one node of a pool's vdev tree as zpool status reports it.
type Device struct {
	Role string // data, log, cache, spare, special, dedup
	// Name is what zpool calls it: "mirror-0", "raidz1-0", a disk path, or a
	// GUID for a disk that is missing.
	Name string
	// Type is mirror, raidz1..3, draid..., replacing, spare, or disk.
	Type string
	// Path is a disk's device path (for a missing disk, the path it had).
	Path string
	// GUID is the vdev's ZFS GUID, which survives a re-enumeration of the
	// disk's path ("" from the text parser of OpenZFS before 2.3).
	GUID     string
	State    string
	Read     uint64
	Write    uint64
	Checksum uint64
	Children []Device
}

// Pool is the status and capacity of a pool.
type Pool struct {
	Name          string
	GUID          string
	Health        string
	Size          uint64
	Allocated     uint64
	Free          uint64
	Fragmentation int64 // percent; -1 when unknown
	// Devices are the top-level vdevs, grouped by role, in zpool's order.
	Devices []Device
	// Activity describes a resilver or raidz expansion in progress ("" when idle).
	Activity string
}

// Topology turns the device tree into a layout comparable with configuration.
// A disk being replaced counts as its replacement, a disk covered by a hot
// spare as the original disk.
func (p *Pool) Topology() Topology {
	var t Topology
	for _, d := range p.Devices {
		v := Vdev{Role: d.Role, Type: d.Type, Name: d.Name}
		if d.Type == TypeDisk || d.Type == "replacing" || d.Type == "spare" {
			v.Type = TypeDisk
			v.Disks = []string{leafPath(d)}
		} else {
			for _, c := range d.Children {
				v.Disks = append(v.Disks, leafPath(c))
			}
		}
		t = append(t, v)
	}
	return t
}

// DiskGUIDs maps the GUID of every disk the topology names to its path now.
func (p *Pool) DiskGUIDs() map[string]string {
	out := map[string]string{}
	for _, d := range p.Devices {
		if d.Type == TypeDisk || d.Type == "replacing" || d.Type == "spare" {
			if l := leafDevice(d); l.GUID != "" {
				out[l.GUID] = diskPath(l.Path)
			}
			continue
		}
		for _, c := range d.Children {
			if l := leafDevice(c); l.GUID != "" {
				out[l.GUID] = diskPath(l.Path)
			}
		}
	}
	return out
}

// Moved is a disk of the pool that is now at another path.
type Moved struct{ GUID, Was, Now string }

// FollowGUIDs names the disks of t by the paths known (GUID to path, from
// the last read) recorded for them: a disk that re-enumerated (/dev/sdb that
// is now /dev/sdc) is the same disk, not a missing one plus a new one, so
// nothing is planned onto whatever disk now has its old name. It returns
// the renamed topology and the disks that moved. Disks without a known
// GUID keep their live path, and so does a disk the configuration (named,
// nil for none) already calls by its new path and no longer by its old one.
func FollowGUIDs(t Topology, live, known map[string]string, named map[string]bool) (Topology, []Moved) {
	rename := map[string]string{}
	var moved []Moved
	for guid, now := range live {
		if was, ok := known[guid]; ok && was != now && was != "" && !(named[now] && !named[was]) {
			rename[now] = was
			moved = append(moved, Moved{GUID: guid, Was: was, Now: now})
		}
	}
	if len(rename) == 0 {
		return t, nil
	}
	sort.Slice(moved, func(i, j int) bool { return moved[i].Was < moved[j].Was })
	out := make(Topology, len(t))
	for i, v := range t {
		v.Disks = slices.Clone(v.Disks)
		for k, d := range v.Disks {
			if was, ok := rename[d]; ok {
				v.Disks[k] = was
			}
		}
		out[i] = v
	}
	return out, moved
}

// leafDevice resolves a device to the disk that configuration names.
func leafDevice(d Device) Device {
	switch {
	case d.Type == "replacing" && len(d.Children) > 0:
		return leafDevice(d.Children[len(d.Children)-1])
	case d.Type == "spare" && len(d.Children) > 0:
		return leafDevice(d.Children[0])
	}
	return d
}

// leafPath resolves a device to the disk that configuration names.
func leafPath(d Device) string {
	switch {
	case d.Type == "replacing" && len(d.Children) > 0:
		return leafPath(d.Children[len(d.Children)-1])
	case d.Type == "spare" && len(d.Children) > 0:
		return leafPath(d.Children[0])
	}
	return diskPath(d.Path)
}

// diskPath maps the partition ZFS creates on a whole disk back to the disk:
// /dev/disk/by-id/x-part1 to /dev/disk/by-id/x, /dev/sdb1 to /dev/sdb,
// /dev/nvme0n1p1 to /dev/nvme0n1.
func diskPath(p string) string {
	switch {
	case strings.HasPrefix(p, "/dev/disk/") && strings.HasSuffix(p, "-part1"):
		return strings.TrimSuffix(p, "-part1")
	case strings.HasPrefix(p, "/dev/sd") || strings.HasPrefix(p, "/dev/vd") || strings.HasPrefix(p, "/dev/xvd"):
		if strings.HasSuffix(p, "1") && len(p) > 8 && p[len(p)-2] >= 'a' && p[len(p)-2] <= 'z' {
			return strings.TrimSuffix(p, "1")
		}
	case strings.HasPrefix(p, "/dev/nvme") && strings.HasSuffix(p, "p1"):
		return strings.TrimSuffix(p, "p1")
	}
	return p
}

// Problems lists the devices that are not healthy, for a warning.
func (p *Pool) Problems() []string {
	var out []string
	var walk func(d Device)
	walk = func(d Device) {
		if d.State != "" && d.State != "ONLINE" && d.State != "AVAIL" && d.State != "INUSE" {
			name := d.Path
			if name == "" {
				name = d.Name
			}
			out = append(out, fmt.Sprintf("%s is %s", name, d.State))
		}
		if d.Read+d.Write+d.Checksum > 0 && len(d.Children) == 0 {
			out = append(out, fmt.Sprintf("%s has %d read, %d write and %d checksum errors", d.Path, d.Read, d.Write, d.Checksum))
		}
		for _, c := range d.Children {
			walk(c)
		}
	}
	for _, d := range p.Devices {
		walk(d)
	}
	return out
}

// Pool reads a pool's status and capacity (see LookupPool).
func (c *Client) Pool(ctx context.Context, name string) (*Pool, error) {
	return c.LookupPool(ctx, name, "")
}

// LookupPool reads a pool's status and capacity. A pool that is not
// imported is an error wrapping ErrNotImported (a *NotImportedError) when
// `zpool import` lists it by name or, when guid is not empty, by GUID; only
// a pool that is neither imported nor importable is an error wrapping
// ErrNotFound.
func (c *Client) LookupPool(ctx context.Context, name, guid string) (*Pool, error) {
	p, err := c.pool(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, c.missingPool(ctx, name, guid, err)
	}
	return p, err
}

func (c *Client) pool(ctx context.Context, name string) (*Pool, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	var p *Pool
	if v.JSON() {
		out, err := c.run(ctx, remote.Command("zpool", "status", "-j", "-p", "-P", name))
		if err != nil {
			return nil, notFound(err, "pool "+name)
		}
		if p, err = ParseStatusJSON(out, name); err != nil {
			return nil, err
		}
	} else {
		out, err := c.run(ctx, remote.Command("zpool", "status", "-p", "-P", name))
		if err != nil {
			return nil, notFound(err, "pool "+name)
		}
		if p, err = ParseStatusText(out); err != nil {
			return nil, err
		}
	}
	out, err := c.run(ctx, remote.Command("zpool", "list", "-H", "-p", "-o", "name,size,allocated,free,fragmentation,health,guid", name))
	if err != nil {
		return nil, notFound(err, "pool "+name)
	}
	if err := parseListLine(out, p); err != nil {
		return nil, err
	}
	return p, nil
}

// parseListLine fills capacity fields from `zpool list -H -p -o name,size,allocated,free,fragmentation,health,guid`.
func parseListLine(out []byte, p *Pool) error {
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 7 {
		return fmt.Errorf("unexpected zpool list output %q", out)
	}
	num := func(s string) uint64 { n, _ := strconv.ParseUint(strings.TrimSuffix(s, "%"), 10, 64); return n }
	p.Size, p.Allocated, p.Free = num(f[1]), num(f[2]), num(f[3])
	p.Fragmentation = -1
	if n, err := strconv.ParseInt(strings.TrimSuffix(f[4], "%"), 10, 64); err == nil {
		p.Fragmentation = n
	}
	p.Health, p.GUID = f[5], f[6]
	return nil
}

// PoolProperties returns every pool property.
func (c *Client) PoolProperties(ctx context.Context, name string) (map[string]Property, error) {
	out, err := c.run(ctx, remote.Command("zpool", "get", "-H", "-p", "-o", "name,property,value,source", "all", name))
	if err != nil {
		return nil, notFound(err, "pool "+name)
	}
	sets, err := ParseGetTabs(out)
	if err != nil {
		return nil, err
	}
	if d, ok := sets[name]; ok {
		return d.Props, nil
	}
	return nil, fmt.Errorf("zpool get printed no properties for %s", name)
}

// PoolSpec describes a pool to create.
type PoolSpec struct {
	Name         string
	Topology     Topology
	Properties   map[string]string // pool properties (-o)
	FSProperties map[string]string // root dataset properties (-O)
	// Force passes -f: use disks that hold data or another pool's label.
	Force bool
}

// CreatePool runs zpool create. It refuses, with an error wrapping
// ErrNotImported, when a pool of the same name is not imported but could be
// (an exported pool whose disks are there): creating it would, with Force,
// overwrite that pool's disks.
func (c *Client) CreatePool(ctx context.Context, s PoolSpec) error {
	if err := c.exported(ctx, s.Name, ""); err != nil {
		return fmt.Errorf("refusing to create pool %s: %w", s.Name, err)
	}
	args := []string{"create"}
	if s.Force {
		args = append(args, "-f")
	}
	args = append(args, propertyArgs(s.Properties)...)
	for _, kv := range propertyArgs(s.FSProperties) {
		if kv == "-o" {
			kv = "-O"
		}
		args = append(args, kv)
	}
	args = append(args, s.Name)
	args = append(args, s.Topology.CreateArgs()...)
	_, err := c.write(ctx, remote.Command("zpool", args...))
	return err
}

// SetPoolProperties sets pool properties, one zpool set each (zpool set takes one).
func (c *Client) SetPoolProperties(ctx context.Context, name string, props map[string]string) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := c.write(ctx, remote.Command("zpool", "set", k+"="+props[k], name)); err != nil {
			return fmt.Errorf("setting %s: %w", k, notFound(err, "pool "+name))
		}
	}
	return nil
}

// Apply runs one layout operation.
func (c *Client) Apply(ctx context.Context, pool string, op Op, force bool) error {
	_, err := c.write(ctx, remote.Command("zpool", op.Args(pool, force)...))
	return notFound(err, "pool "+pool)
}

// WaitIdle waits until no resilver or raidz expansion runs on the pool,
// reporting progress, polling with backoff, bounded by ctx.
func (c *Client) WaitIdle(ctx context.Context, pool string, progress func(string)) error {
	delay := time.Second
	for {
		p, err := c.Pool(ctx, pool)
		if err != nil {
			return err
		}
		if p.Activity == "" {
			return nil
		}
		progress(p.Activity)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s on pool %s: %w", p.Activity, pool, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
	}
}

// DestroyPool destroys a pool. The caller checks it holds nothing first.
func (c *Client) DestroyPool(ctx context.Context, name string) error {
	_, err := c.write(ctx, remote.Command("zpool", "destroy", name))
	return notFound(err, "pool "+name)
}

// Contents says what a pool holds beyond its empty root dataset: child
// datasets, snapshots, or files in the root dataset. Empty means the pool
// can be destroyed without losing anything.
func (c *Client) Contents(ctx context.Context, name string) ([]string, error) {
	deps, err := c.Dependents(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(deps) > 0 {
		return deps, nil
	}
	// The root dataset itself: look for files when it is mounted, otherwise
	// go by how much it references (an empty one references a few dozen KiB).
	// The mountpoint is one line of zfs get's output, spaces and all: it
	// is never split into words.
	const script = `v=$(zfs get -H -o value mounted,mountpoint "$1") || exit
mounted=${v%%
*}
mp=${v#*
}
if [ "$mounted" = yes ] && [ -d "$mp" ]; then
  find "$mp" -xdev -mindepth 1 -maxdepth 1 -print -quit
else
  echo "-"
fi`
	out, err := c.run(ctx, remote.Script(script, name))
	if err != nil {
		return nil, notFound(err, "pool "+name)
	}
	if s := strings.TrimSpace(string(out)); s != "" && s != "-" {
		return []string{"files in the root dataset (e.g. " + s + ")"}, nil
	}
	if strings.TrimSpace(string(out)) == "-" {
		ds, err := c.Dataset(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if ds != nil {
			if n, _ := strconv.ParseUint(ds.Get("logicalreferenced"), 10, 64); n > 1<<20 {
				return []string{fmt.Sprintf("%d bytes in the unmounted root dataset", n)}, nil
			}
		}
	}
	return nil, nil
}
