package zfs

import (
	"fmt"
	"slices"
	"strings"
)

// OpKind is one in-place change zpool can make to a pool's layout.
type OpKind string

const (
	// OpAdd adds a top-level vdev (zpool add).
	OpAdd OpKind = "add"
	// OpRemove removes a log, cache or spare device or log mirror (zpool remove).
	OpRemove OpKind = "remove"
	// OpAttach attaches a disk to a single disk or a mirror (zpool attach).
	OpAttach OpKind = "attach"
	// OpDetach detaches a disk from a mirror (zpool detach).
	OpDetach OpKind = "detach"
	// OpExpand grows a raidz vdev by one disk (zpool attach POOL raidzN-M DISK, OpenZFS 2.3+).
	OpExpand OpKind = "expand"
	// OpReplace replaces one disk by another and resilvers (zpool replace).
	OpReplace OpKind = "replace"
)

// Op is one step of an in-place layout change.
type Op struct {
	Kind OpKind
	// Vdev is the vdev to add (OpAdd).
	Vdev Vdev
	// Target is the existing disk (attach, detach, replace, remove) or vdev
	// name (expand, remove of a log mirror).
	Target string
	// Disk is the new disk (attach, expand, replace).
	Disk string
}

// Args renders the zpool command line of op for pool.
func (op Op) Args(pool string, force bool) []string {
	f := func(args ...string) []string {
		if force {
			return append([]string{args[0], "-f"}, args[1:]...)
		}
		return args
	}
	switch op.Kind {
	case OpAdd:
		args := []string{"add"}
		if force {
			args = append(args, "-f")
		}
		args = append(args, pool)
		if op.Vdev.Role != RoleData {
			args = append(args, op.Vdev.Role)
		}
		return append(args, vdevArgs(op.Vdev)...)
	case OpRemove:
		return []string{"remove", pool, op.Target}
	case OpAttach, OpExpand:
		return f("attach", pool, op.Target, op.Disk)
	case OpDetach:
		return []string{"detach", pool, op.Target}
	case OpReplace:
		return f("replace", pool, op.Target, op.Disk)
	}
	return nil
}

func (op Op) String() string {
	switch op.Kind {
	case OpAdd:
		return fmt.Sprintf("add %s %s [%s]", op.Vdev.Role, op.Vdev.Type, strings.Join(op.Vdev.Disks, " "))
	case OpRemove, OpDetach:
		return fmt.Sprintf("%s %s", op.Kind, op.Target)
	}
	return fmt.Sprintf("%s %s to %s", op.Kind, op.Disk, op.Target)
}

// ReplaceError explains why a layout change cannot be made in place.
type ReplaceError struct{ Reasons []string }

func (e *ReplaceError) Error() string {
	return "this change needs a new pool: " + strings.Join(e.Reasons, "; ")
}

// Plan works out the zpool operations that turn the current layout into the
// desired one without recreating the pool, in a safe order: removals, then
// replacements, detaches and attaches, then raidz expansions, then
// additions. It returns a *ReplaceError when some change cannot be made in
// place.
func Plan(current, desired Topology) ([]Op, error) {
	var ops []Op
	var reasons []string
	for _, role := range Roles {
		cur, des := current.ByRole(role), desired.ByRole(role)
		var o []Op
		var r []string
		if role == RoleCache || role == RoleSpare {
			o = planDeviceSet(cur, des)
		} else {
			o, r = planOrdered(role, cur, des)
		}
		ops = append(ops, o...)
		reasons = append(reasons, r...)
	}
	if len(reasons) > 0 {
		return nil, &ReplaceError{Reasons: reasons}
	}
	order := map[OpKind]int{OpRemove: 0, OpReplace: 1, OpDetach: 2, OpAttach: 3, OpExpand: 4, OpAdd: 5}
	slices.SortStableFunc(ops, func(a, b Op) int { return order[a.Kind] - order[b.Kind] })
	return ops, nil
}

// planDeviceSet handles cache devices and spares: a set of single disks.
func planDeviceSet(cur, des []Vdev) []Op {
	have, want := diskSet(cur), diskSet(des)
	var ops []Op
	for _, v := range cur {
		if !want[v.Disks[0]] {
			ops = append(ops, Op{Kind: OpRemove, Target: v.Disks[0]})
		}
	}
	for _, v := range des {
		if !have[v.Disks[0]] {
			ops = append(ops, Op{Kind: OpAdd, Vdev: v})
		}
	}
	return ops
}

func diskSet(vs []Vdev) map[string]bool {
	m := map[string]bool{}
	for _, v := range vs {
		for _, d := range v.Disks {
			m[d] = true
		}
	}
	return m
}

// planOrdered handles data, log, special and dedup vdevs, matched by position.
func planOrdered(role string, cur, des []Vdev) ([]Op, []string) {
	var ops []Op
	var reasons []string
	for i := range min(len(cur), len(des)) {
		o, err := transform(cur[i], des[i])
		if err != "" {
			reasons = append(reasons, fmt.Sprintf("%s vdev %d (%s): %s", role, i+1, describe(cur[i]), err))
			continue
		}
		ops = append(ops, o...)
	}
	for _, v := range des[min(len(cur), len(des)):] {
		ops = append(ops, Op{Kind: OpAdd, Vdev: v})
	}
	for i := len(des); i < len(cur); i++ {
		if role == RoleLog {
			ops = append(ops, Op{Kind: OpRemove, Target: removeTarget(cur[i])})
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s vdev %d (%s) was removed from the configuration: this provider removes only log, cache and spare vdevs in place", role, i+1, describe(cur[i])))
	}
	return ops, reasons
}

func removeTarget(v Vdev) string {
	if v.Type == TypeDisk || v.Name == "" {
		return v.Disks[0]
	}
	return v.Name
}

func describe(v Vdev) string {
	if v.Type == TypeDisk {
		return "disk " + v.Disks[0]
	}
	return fmt.Sprintf("%s of %s", v.Type, strings.Join(v.Disks, ", "))
}

// transform plans the change of one existing top-level vdev; a non-empty
// string says why it cannot be done in place.
func transform(cur, des Vdev) ([]Op, string) {
	if sameVdev(cur, des) {
		return nil, ""
	}
	kept, added, dropped := diskDiff(cur, des)
	mirrorish := func(t string) bool { return t == TypeDisk || t == TypeMirror }
	switch {
	case len(added) == len(dropped) && (cur.Type == des.Type || mirrorish(cur.Type) && mirrorish(des.Type) && len(kept) > 0):
		// Same shape, some disks swapped for others: replace pairwise.
		var ops []Op
		for i := range dropped {
			ops = append(ops, Op{Kind: OpReplace, Target: dropped[i], Disk: added[i]})
		}
		return ops, ""
	case mirrorish(cur.Type) && mirrorish(des.Type) && len(dropped) == 0:
		// Single disk to mirror, or a wider mirror: attach to a disk that stays.
		var ops []Op
		for _, d := range added {
			ops = append(ops, Op{Kind: OpAttach, Target: kept[0], Disk: d})
		}
		return ops, ""
	case mirrorish(cur.Type) && mirrorish(des.Type) && len(added) == 0:
		var ops []Op
		for _, d := range dropped {
			ops = append(ops, Op{Kind: OpDetach, Target: d})
		}
		return ops, ""
	case mirrorish(cur.Type) && mirrorish(des.Type):
		return nil, fmt.Sprintf("adding %s and removing %s at once is ambiguous; change the disks one step at a time",
			strings.Join(added, ", "), strings.Join(dropped, ", "))
	case isRaidz(cur.Type) && cur.Type == des.Type && len(dropped) == 0:
		if cur.Name == "" {
			return nil, "the raidz's name in the pool is not known; refresh and plan again"
		}
		// Raidz expansion, one disk at a time.
		var ops []Op
		for _, d := range added {
			ops = append(ops, Op{Kind: OpExpand, Target: cur.Name, Disk: d})
		}
		return ops, ""
	case isRaidz(cur.Type) && cur.Type == des.Type && len(added) < len(dropped):
		return nil, "ZFS cannot remove disks from a raidz"
	case cur.Type == des.Type:
		return nil, fmt.Sprintf("adding %s and removing %s at once is ambiguous; change the disks one step at a time",
			strings.Join(added, ", "), strings.Join(dropped, ", "))
	}
	return nil, fmt.Sprintf("ZFS cannot turn a %s into a %s in place", typeName(cur), typeName(des))
}

// diskDiff splits the disks of two versions of a vdev into those kept,
// added and dropped, each in configuration order.
func diskDiff(cur, des Vdev) (kept, added, dropped []string) {
	have, want := diskSet([]Vdev{cur}), diskSet([]Vdev{des})
	for _, d := range cur.Disks {
		if want[d] {
			kept = append(kept, d)
		} else {
			dropped = append(dropped, d)
		}
	}
	for _, d := range des.Disks {
		if !have[d] {
			added = append(added, d)
		}
	}
	return kept, added, dropped
}

func typeName(v Vdev) string {
	if v.Type == TypeDisk {
		return "single disk"
	}
	return v.Type
}
