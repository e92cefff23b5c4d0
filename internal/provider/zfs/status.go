// Terraform values of ZFS objects that the pool resource and the pool data
// source share.

package zfs

import (
	"github.com/hashicorp/terraform-plugin-framework/attr"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// diskStatusType is the object type of one disk in a status list.
var diskStatusType = map[string]attr.Type{
	"path": types.StringType, "state": types.StringType,
	"read_errors": types.Int64Type, "write_errors": types.Int64Type, "checksum_errors": types.Int64Type,
}

// vdevStatusType is the object type of one top-level vdev in a status list.
var vdevStatusType = map[string]attr.Type{
	"role": types.StringType, "name": types.StringType, "type": types.StringType, "state": types.StringType,
	"read_errors": types.Int64Type, "write_errors": types.Int64Type, "checksum_errors": types.Int64Type,
	"disks": types.ListType{ElemType: types.ObjectType{AttrTypes: diskStatusType}},
}

// statusList renders a pool's vdev tree: every top-level vdev with its
// state, error counters and leaf disks.
func statusList(p *zfs.Pool) types.List {
	errVals := func(d zfs.Device) map[string]attr.Value {
		return map[string]attr.Value{
			"state": types.StringValue(d.State), "read_errors": types.Int64Value(int64(d.Read)),
			"write_errors": types.Int64Value(int64(d.Write)), "checksum_errors": types.Int64Value(int64(d.Checksum)),
		}
	}
	var leaves func(d zfs.Device) []zfs.Device
	leaves = func(d zfs.Device) []zfs.Device {
		if len(d.Children) == 0 {
			return []zfs.Device{d}
		}
		var out []zfs.Device
		for _, c := range d.Children {
			out = append(out, leaves(c)...)
		}
		return out
	}
	var vdevs []attr.Value
	for _, d := range p.Devices {
		var disks []attr.Value
		for _, leaf := range leaves(d) {
			v := errVals(leaf)
			v["path"] = types.StringValue(leaf.Path)
			disks = append(disks, types.ObjectValueMust(diskStatusType, v))
		}
		v := errVals(d)
		v["role"] = types.StringValue(d.Role)
		v["name"] = types.StringValue(d.Name)
		v["type"] = types.StringValue(d.Type)
		v["disks"] = types.ListValueMust(types.ObjectType{AttrTypes: diskStatusType}, disks)
		vdevs = append(vdevs, types.ObjectValueMust(vdevStatusType, v))
	}
	return types.ListValueMust(types.ObjectType{AttrTypes: vdevStatusType}, vdevs)
}

// statusAttrs renders status attributes into one schema flavour, given its
// computed string and number attributes.
func statusAttrs[A any](as []statusAttr, str, num func(desc string) A) map[string]A {
	out := map[string]A{}
	for _, a := range as {
		if a.counter {
			out[a.name] = num(a.desc)
		} else {
			out[a.name] = str(a.desc)
		}
	}
	return out
}

// statusResourceAttribute is the status list in the resource's schema.
func statusResourceAttribute() rschema.ListNestedAttribute {
	str := func(d string) rschema.Attribute { return rschema.StringAttribute{Computed: true, Description: d} }
	num := func(d string) rschema.Attribute { return rschema.Int64Attribute{Computed: true, Description: d} }
	vdev := statusAttrs(vdevStatusAttrs, str, num)
	vdev["disks"] = rschema.ListNestedAttribute{Computed: true, Description: vdevDisksDesc,
		NestedObject: rschema.NestedAttributeObject{Attributes: statusAttrs(diskStatusAttrs, str, num)}}
	return rschema.ListNestedAttribute{Computed: true, Description: poolStatusDesc,
		NestedObject: rschema.NestedAttributeObject{Attributes: vdev}}
}

// statusDataSourceAttribute is the status list in the data source's schema.
func statusDataSourceAttribute() dschema.ListNestedAttribute {
	str := func(d string) dschema.Attribute { return dschema.StringAttribute{Computed: true, Description: d} }
	num := func(d string) dschema.Attribute { return dschema.Int64Attribute{Computed: true, Description: d} }
	vdev := statusAttrs(vdevStatusAttrs, str, num)
	vdev["disks"] = dschema.ListNestedAttribute{Computed: true, Description: vdevDisksDesc,
		NestedObject: dschema.NestedAttributeObject{Attributes: statusAttrs(diskStatusAttrs, str, num)}}
	return dschema.ListNestedAttribute{Computed: true, Description: poolStatusDesc,
		NestedObject: dschema.NestedAttributeObject{Attributes: vdev}}
}
