package zfs

// Descriptions that the homelab_zpool resource and data source share.
const (
	poolHealthDesc        = "Pool health: ONLINE, DEGRADED, FAULTED, OFFLINE, REMOVED or UNAVAIL."
	poolSizeDesc          = "Pool size in bytes."
	poolAllocatedDesc     = "Allocated bytes."
	poolFreeDesc          = "Free bytes."
	poolFragmentationDesc = "Free-space fragmentation in percent (-1 when unknown)."
	poolStatusDesc        = "Every top-level vdev with its state, error counters and disks."
)

// statusAttr is one attribute of a vdev's or a disk's status: a string,
// or an error counter.
type statusAttr struct {
	name    string
	counter bool
	desc    string
}

// errorAttrs are the state and error counters a vdev and a disk share.
func errorAttrs(what string) []statusAttr {
	return []statusAttr{
		{name: "state", desc: "State of the " + what + ": ONLINE, DEGRADED, FAULTED, OFFLINE, REMOVED, UNAVAIL, or AVAIL/INUSE for spares."},
		{name: "read_errors", counter: true, desc: "Read errors of the " + what + "."},
		{name: "write_errors", counter: true, desc: "Write errors of the " + what + "."},
		{name: "checksum_errors", counter: true, desc: "Checksum errors of the " + what + "."},
	}
}

// vdevStatusAttrs and diskStatusAttrs are the one definition of the status
// list, rendered into the resource's and the data source's schema (the
// disks list nested in each vdev is added by the renderers).
var (
	vdevStatusAttrs = append(errorAttrs("vdev"),
		statusAttr{name: "role", desc: "Role: data, log, cache, spare, special or dedup."},
		statusAttr{name: "name", desc: "Name zpool gives the vdev, e.g. `mirror-0`, or the disk path."},
		statusAttr{name: "type", desc: "Type: disk, mirror, raidz1..3, draid."})
	diskStatusAttrs = append(errorAttrs("disk"), statusAttr{name: "path", desc: "Disk path."})
)

const vdevDisksDesc = "Disks of the vdev."
