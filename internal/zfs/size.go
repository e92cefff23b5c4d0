package zfs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a size the way zfs does: a number with an optional
// binary suffix (K, M, G, T, P, E, optionally followed by B or iB), or
// "none". It returns the size in bytes.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	if t == "NONE" || t == "0" {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1.0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGTPE", t[n-1]); i >= 0 {
			mult = math.Pow(1024, float64(i+1))
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a size such as 512, 64K, 10G or 1.5T", s)
	}
	v := f * mult
	if v >= math.MaxUint64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(v), nil
}

// SameValue reports whether a configured property value and the value zfs
// reports (with -p, so sizes in bytes) mean the same: equal strings, or
// equal sizes.
func SameValue(configured, actual string) bool {
	if configured == actual || strings.EqualFold(configured, actual) && isKeyword(actual) {
		return true
	}
	a, err1 := ParseSize(configured)
	b, err2 := ParseSize(actual)
	return err1 == nil && err2 == nil && a == b
}

// isKeyword reports values zfs accepts in any case (on, off, none, ...).
func isKeyword(s string) bool {
	switch strings.ToLower(s) {
	case "on", "off", "none", "legacy", "inherit", "standard", "always", "disabled", "enabled":
		return true
	}
	return false
}

// sizeProperties are the properties whose values are sizes.
var sizeProperties = map[string]bool{
	"quota": true, "refquota": true, "reservation": true, "refreservation": true, "volsize": true,
	"volblocksize": true, "recordsize": true, "special_small_blocks": true,
}

// Readable renders the exact value zfs reports for a property (with -p) the
// way people write it: 1048576 as 1M. Values that are not sizes, or not exact
// multiples of a unit, are returned unchanged. Import uses it so the state
// matches a configuration written by hand.
func Readable(property, value string) string {
	if !sizeProperties[property] {
		return value
	}
	n, err := strconv.ParseUint(value, 10, 64)
	if err != nil || n == 0 {
		if value == "0" && (property == "quota" || property == "refquota" || strings.HasSuffix(property, "reservation")) {
			return "none"
		}
		return value
	}
	units := "KMGTPE"
	unit := -1
	for unit+1 < len(units) && n%1024 == 0 {
		n /= 1024
		unit++
	}
	if unit < 0 {
		return value
	}
	return strconv.FormatUint(n, 10) + string(units[unit])
}
