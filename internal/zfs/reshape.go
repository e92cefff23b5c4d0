package zfs

import (
	"context"
	"fmt"
)

// WaitsForIdle reports whether an operation of this kind starts a resilver
// or a raidz expansion that must finish before the next step: zpool
// replace, attach, and raidz expansion do; add, remove and detach do not.
func (k OpKind) WaitsForIdle() bool {
	return k == OpReplace || k == OpAttach || k == OpExpand
}

// ReshapeOptions tunes Reshape.
type ReshapeOptions struct {
	// Force passes -f to zpool add, attach and replace.
	Force bool
	// KnownGUIDs maps disk GUIDs to the paths the last read saw them at
	// (the shape of Pool.DiskGUIDs), so a disk that re-enumerated is
	// followed by its GUID. Nil when nothing is known.
	KnownGUIDs map[string]string
	// Progress, if not nil, is called before step (1-based) of `of` runs,
	// with an empty activity, and while Reshape waits after it for a
	// resilver or expansion, with what zpool status says is running.
	Progress func(step, of int, op Op, activity string)
}

// Reshape turns the pool's live layout into desired, one zpool operation at
// a time, waiting for each resilver or raidz expansion to finish. A failed
// step is reported as "step N of M (op): error"; the steps before it stay
// done.
func (c *Client) Reshape(ctx context.Context, pool string, desired Topology, opts ReshapeOptions) error {
	p, err := c.Pool(ctx, pool)
	if err != nil {
		return err
	}
	named := map[string]bool{}
	for _, d := range desired.Disks() {
		named[d] = true
	}
	// A disk that re-enumerated is the same disk: planned by the name the
	// last read knew it by, addressed by its GUID so no command touches the
	// disk that now has that name.
	current, moved := FollowGUIDs(p.Topology(), p.DiskGUIDs(), opts.KnownGUIDs, named)
	ops, err := Plan(current, desired)
	if err != nil {
		return err
	}
	for i := range ops {
		for _, mv := range moved {
			if ops[i].Target == mv.Was {
				ops[i].Target = mv.GUID
			}
		}
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(int, int, Op, string) {}
	}
	for i, op := range ops {
		progress(i+1, len(ops), op, "")
		if err := c.Apply(ctx, pool, op, opts.Force); err != nil {
			return fmt.Errorf("step %d of %d (%s): %w", i+1, len(ops), op, err)
		}
		if op.Kind.WaitsForIdle() {
			err := c.WaitIdle(ctx, pool, func(activity string) { progress(i+1, len(ops), op, activity) })
			if err != nil {
				return fmt.Errorf("step %d of %d (%s): %w", i+1, len(ops), op, err)
			}
		}
	}
	return nil
}

// PreviewNames returns a copy of t, a layout as Terraform state holds it,
// in which every vdev other than a single disk has a placeholder name
// ("mirror-?", "raidz1-?"). State does not hold the names zpool gives
// vdevs ("raidz1-0"); Reshape reads them from the pool at apply time.
// Plan refuses a raidz expansion whose vdev name is unknown, so planning
// on state alone would reject a change that is possible in place; with
// the placeholders, Plan can decide at plan time whether a change needs a
// new pool.
func PreviewNames(t Topology) Topology {
	out := make(Topology, len(t))
	for i, v := range t {
		if v.Type != TypeDisk {
			v.Name = v.Type + "-?"
		}
		out[i] = v
	}
	return out
}
