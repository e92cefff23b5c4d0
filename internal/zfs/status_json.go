package zfs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// orderedObject is a JSON object whose keys keep the order they were
// printed in: zpool prints vdevs in vdev-id order, which is the pool's order.
type orderedObject []struct {
	Key   string
	Value json.RawMessage
}

func (o *orderedObject) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("expected a JSON object, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("expected an object key, got %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*o = append(*o, struct {
			Key   string
			Value json.RawMessage
		}{key, v})
	}
	return nil
}

type jsonVdev struct {
	Name           string        `json:"name"`
	VdevType       string        `json:"vdev_type"`
	Path           string        `json:"path"`
	GUID           jsonValue     `json:"guid"`
	State          string        `json:"state"`
	ReadErrors     jsonValue     `json:"read_errors"`
	WriteErrors    jsonValue     `json:"write_errors"`
	ChecksumErrors jsonValue     `json:"checksum_errors"`
	Vdevs          orderedObject `json:"vdevs"`
}

type jsonPool struct {
	Name      string        `json:"name"`
	State     string        `json:"state"`
	PoolGUID  jsonValue     `json:"pool_guid"`
	Vdevs     orderedObject `json:"vdevs"`
	Logs      orderedObject `json:"logs"`
	L2Cache   orderedObject `json:"l2cache"`
	Spares    orderedObject `json:"spares"`
	Special   orderedObject `json:"special"`
	Dedup     orderedObject `json:"dedup"`
	ScanStats *struct {
		Function  string    `json:"function"`
		State     string    `json:"state"`
		Examined  jsonValue `json:"examined"`
		ToExamine jsonValue `json:"to_examine"`
		Issued    jsonValue `json:"issued"`
	} `json:"scan_stats"`
	RaidzExpand *struct {
		Name     string    `json:"name"`
		State    string    `json:"state"`
		Reflowed jsonValue `json:"reflowed"`
		ToReflow jsonValue `json:"to_reflow"`
	} `json:"raidz_expand_stats"`
}

// ParseStatusJSON parses `zpool status -j -p -P POOL` (OpenZFS 2.3+). The
// client does not pass --json-int: with it OpenZFS 2.3.2 clamps 64-bit values
// such as GUIDs to INT64_MAX.
func ParseStatusJSON(out []byte, name string) (*Pool, error) {
	var doc struct {
		Pools map[string]jsonPool `json:"pools"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parsing zpool status JSON: %w", err)
	}
	jp, ok := doc.Pools[name]
	if !ok {
		return nil, fmt.Errorf("zpool status JSON has no pool %s", name)
	}
	p := &Pool{Name: jp.Name, Health: jp.State, GUID: string(jp.PoolGUID), Fragmentation: -1}
	// The root vdev holds the data vdevs (and, on some versions, special and
	// dedup vdevs marked by their class).
	for _, root := range jp.Vdevs {
		var rv jsonVdev
		if err := json.Unmarshal(root.Value, &rv); err != nil {
			return nil, fmt.Errorf("parsing vdev %s: %w", root.Key, err)
		}
		devs, err := jsonDevices(rv.Vdevs, RoleData)
		if err != nil {
			return nil, err
		}
		p.Devices = append(p.Devices, devs...)
	}
	for _, sec := range []struct {
		obj  orderedObject
		role string
	}{{jp.Special, RoleSpecial}, {jp.Dedup, RoleDedup}, {jp.Logs, RoleLog}, {jp.L2Cache, RoleCache}, {jp.Spares, RoleSpare}} {
		devs, err := jsonDevices(sec.obj, sec.role)
		if err != nil {
			return nil, err
		}
		p.Devices = append(p.Devices, devs...)
	}
	p.Activity = jsonActivity(&jp)
	return p, nil
}

func jsonDevices(obj orderedObject, role string) ([]Device, error) {
	var out []Device
	for _, kv := range obj {
		var v struct {
			jsonVdev
			Class string `json:"class"`
		}
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("parsing vdev %s: %w", kv.Key, err)
		}
		d := Device{Role: role, Name: v.Name, State: v.State, Path: v.Path, GUID: string(v.GUID)}
		switch v.Class {
		case "special":
			d.Role = RoleSpecial
		case "dedup":
			d.Role = RoleDedup
		}
		d.Type = jsonType(v.VdevType, v.Name)
		d.Read, d.Write, d.Checksum = v.ReadErrors.uint(), v.WriteErrors.uint(), v.ChecksumErrors.uint()
		children, err := jsonDevices(v.Vdevs, d.Role)
		if err != nil {
			return nil, err
		}
		d.Children = children
		out = append(out, d)
	}
	return out, nil
}

// jsonType maps vdev_type to this package's types; raidz vdevs report
// "raidz" and carry their parity in the name (raidz2-0).
func jsonType(vdevType, name string) string {
	switch vdevType {
	case "disk", "file":
		return TypeDisk
	case "raidz", "draid":
		return deviceType(name)
	}
	return vdevType
}

func (v jsonValue) uint() uint64 {
	var n uint64
	_, _ = fmt.Sscan(string(v), &n)
	return n
}

// jsonActivity describes a resilver or raidz expansion in progress.
func jsonActivity(jp *jsonPool) string {
	if s := jp.ScanStats; s != nil && strings.EqualFold(s.State, "SCANNING") && strings.EqualFold(s.Function, "RESILVER") {
		return fmt.Sprintf("resilver in progress; %s of %s bytes issued", s.Issued, s.ToExamine)
	}
	if e := jp.RaidzExpand; e != nil && strings.EqualFold(e.State, "SCANNING") {
		return fmt.Sprintf("raidz expansion in progress; %s of %s bytes reflowed", e.Reflowed, e.ToReflow)
	}
	return ""
}
