package zfs

import "fmt"

// ParseStatusJSON parses `zpool status -j -p --json-int -P POOL`.
func ParseStatusJSON(out []byte, name string) (*Pool, error) {
	return nil, fmt.Errorf("not yet")
}
