package zfs

import (
	"fmt"
	"slices"
	"strings"
)

// Roles a top-level vdev can have in a pool.
const (
	RoleData    = "data"
	RoleLog     = "log"
	RoleCache   = "cache"
	RoleSpare   = "spare"
	RoleSpecial = "special"
	RoleDedup   = "dedup"
)

// Roles lists the vdev roles in the order zpool create takes them.
var Roles = []string{RoleData, RoleLog, RoleCache, RoleSpare, RoleSpecial, RoleDedup}

// Vdev types as written in configuration. "stripe" means every disk is a
// top-level vdev of its own; "disk" is one such vdev after expansion.
const (
	TypeStripe = "stripe"
	TypeDisk   = "disk"
	TypeMirror = "mirror"
	TypeRaidz1 = "raidz1"
	TypeRaidz2 = "raidz2"
	TypeRaidz3 = "raidz3"
	TypeDraid  = "draid"
)

// VdevSpec is one vdev block of configuration: a role, a type and disks.
type VdevSpec struct {
	Role  string
	Type  string
	Disks []string
}

// Vdev is one top-level vdev: a single disk, a mirror, a raidz or a draid.
type Vdev struct {
	Role string
	// Type is disk, mirror, raidz1..3 or a draid spec such as "draid1:2d:4c:0s".
	Type  string
	Disks []string
	// Name is the name zpool gives the vdev ("mirror-0", "raidz1-1"), or the
	// disk path for a single-disk vdev. Empty for a vdev not created yet.
	Name string
}

// Topology is a pool's layout: its top-level vdevs in zpool's order within
// each role.
type Topology []Vdev

// Expand turns configuration blocks into top-level vdevs: a stripe block
// becomes one single-disk vdev per disk.
func Expand(specs []VdevSpec) Topology {
	var t Topology
	for _, s := range specs {
		role := s.Role
		if role == "" {
			role = RoleData
		}
		typ := s.Type
		if typ == "" {
			typ = TypeStripe
		}
		// Cache devices and spares are always single devices.
		if typ == TypeStripe || role == RoleCache || role == RoleSpare {
			for _, d := range s.Disks {
				t = append(t, Vdev{Role: role, Type: TypeDisk, Disks: []string{d}})
			}
			continue
		}
		t = append(t, Vdev{Role: role, Type: typ, Disks: slices.Clone(s.Disks)})
	}
	return t
}

// ByRole returns the vdevs of one role, in order.
func (t Topology) ByRole(role string) []Vdev {
	var out []Vdev
	for _, v := range t {
		if v.Role == role {
			out = append(out, v)
		}
	}
	return out
}

// Disks returns every disk of the topology.
func (t Topology) Disks() []string {
	var out []string
	for _, v := range t {
		out = append(out, v.Disks...)
	}
	return out
}

// Equal reports whether two topologies describe the same pool layout. Order
// matters within a role (zpool numbers vdevs in order) but not across roles.
func Equal(a, b Topology) bool {
	for _, role := range Roles {
		x, y := a.ByRole(role), b.ByRole(role)
		if len(x) != len(y) {
			return false
		}
		if role == RoleCache || role == RoleSpare {
			// Single devices whose order zpool does not use.
			if !sameDiskSet(x, y) {
				return false
			}
			continue
		}
		for i := range x {
			if !sameVdev(x[i], y[i]) {
				return false
			}
		}
	}
	return true
}

func sameDiskSet(x, y []Vdev) bool {
	a, b := diskSet(x), diskSet(y)
	if len(a) != len(b) {
		return false
	}
	for d := range a {
		if !b[d] {
			return false
		}
	}
	return true
}

// sameVdev compares two vdevs. The order of a vdev's disks does not matter
// to ZFS (a mirror or raidz is the same whatever order its disks are listed in).
func sameVdev(a, b Vdev) bool {
	return a.Role == b.Role && a.Type == b.Type && sameDiskSet([]Vdev{a}, []Vdev{b}) && len(a.Disks) == len(b.Disks)
}

// Specs groups a topology back into configuration blocks: consecutive
// single-disk vdevs of one role form one stripe block. This is the layout
// import produces.
func (t Topology) Specs() []VdevSpec {
	var out []VdevSpec
	for _, role := range Roles {
		for _, v := range t.ByRole(role) {
			if v.Type == TypeDisk {
				if n := len(out); n > 0 && out[n-1].Role == role && out[n-1].Type == TypeStripe {
					out[n-1].Disks = append(out[n-1].Disks, v.Disks...)
					continue
				}
				out = append(out, VdevSpec{Role: role, Type: TypeStripe, Disks: slices.Clone(v.Disks)})
				continue
			}
			out = append(out, VdevSpec{Role: role, Type: v.Type, Disks: slices.Clone(v.Disks)})
		}
	}
	return out
}

// CreateArgs renders the vdev part of a zpool create command line.
func (t Topology) CreateArgs() []string {
	var args []string
	for _, role := range Roles {
		vdevs := t.ByRole(role)
		if len(vdevs) == 0 {
			continue
		}
		if role != RoleData {
			args = append(args, role)
		}
		for _, v := range vdevs {
			args = append(args, vdevArgs(v)...)
		}
	}
	return args
}

func vdevArgs(v Vdev) []string {
	if v.Type == TypeDisk {
		return slices.Clone(v.Disks)
	}
	return append([]string{v.Type}, v.Disks...)
}

// isRaidz reports whether typ is a raidz type.
func isRaidz(typ string) bool {
	return typ == TypeRaidz1 || typ == TypeRaidz2 || typ == TypeRaidz3
}

// minDisks is how many disks a vdev type needs.
func minDisks(typ string) int {
	switch typ {
	case TypeMirror:
		return 2
	case TypeRaidz1:
		return 2
	case TypeRaidz2:
		return 3
	case TypeRaidz3:
		return 4
	}
	return 1
}

// Validate checks a configuration for mistakes zpool would refuse, so they
// show at plan time with the block they are in.
func Validate(specs []VdevSpec) []error {
	var errs []error
	seen := map[string]int{}
	dataVdevs := 0
	for i, s := range specs {
		role, typ := s.Role, s.Type
		if role == "" {
			role = RoleData
		}
		if typ == "" {
			typ = TypeStripe
		}
		if role == RoleData {
			dataVdevs++
		}
		if len(s.Disks) == 0 {
			errs = append(errs, fmt.Errorf("vdev %d has no disks", i))
		}
		if n := minDisks(typ); len(s.Disks) < n && len(s.Disks) > 0 {
			errs = append(errs, fmt.Errorf("vdev %d: a %s needs at least %d disks, it has %d", i, typ, n, len(s.Disks)))
		}
		if (role == RoleCache || role == RoleSpare) && typ != TypeStripe {
			errs = append(errs, fmt.Errorf("vdev %d: %s devices are single disks; use type = \"stripe\" (the default), not %q", i, role, typ))
		}
		if role == RoleLog && (isRaidz(typ) || strings.HasPrefix(typ, TypeDraid)) {
			errs = append(errs, fmt.Errorf("vdev %d: a log can be a disk or a mirror, not %s", i, typ))
		}
		for _, d := range s.Disks {
			if j, dup := seen[d]; dup {
				errs = append(errs, fmt.Errorf("disk %s is in vdev %d and vdev %d", d, j, i))
			}
			seen[d] = i
		}
	}
	if dataVdevs == 0 && len(specs) > 0 {
		errs = append(errs, fmt.Errorf("a pool needs at least one data vdev"))
	}
	return errs
}
