package zfs

import "regexp"

// unstableRe matches kernel names the kernel hands out in probe order:
// /dev/sdX, /dev/vdX, /dev/hdX, /dev/xvdX and /dev/nvmeXnY (with or without
// a partition number). Adding, removing or reordering a disk, a controller
// or a boot can give the same name to another disk.
var unstableRe = regexp.MustCompile(`^/dev/(sd[a-z]+|vd[a-z]+|hd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)(p?[0-9]+)?$`)

// UnstablePath reports whether a disk path may name another disk after a
// reboot or a hardware change; /dev/disk/by-id/... and by-path names do not.
func UnstablePath(p string) bool { return unstableRe.MatchString(p) }
