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

// statusResourceAttribute is the status list in the resource's schema.
func statusResourceAttribute() rschema.ListNestedAttribute {
	attrs := func(as []statusAttr) map[string]rschema.Attribute {
		out := map[string]rschema.Attribute{}
		for _, a := range as {
			if a.counter {
				out[a.name] = rschema.Int64Attribute{Computed: true, Description: a.desc}
			} else {
				out[a.name] = rschema.StringAttribute{Computed: true, Description: a.desc}
			}
		}
		return out
	}
	vdev := attrs(vdevStatusAttrs)
	vdev["disks"] = rschema.ListNestedAttribute{Computed: true, Description: vdevDisksDesc,
		NestedObject: rschema.NestedAttributeObject{Attributes: attrs(diskStatusAttrs)}}
	return rschema.ListNestedAttribute{Computed: true, Description: poolStatusDesc,
		NestedObject: rschema.NestedAttributeObject{Attributes: vdev}}
}

// statusDataSourceAttribute is the status list in the data source's schema.
func statusDataSourceAttribute() dschema.ListNestedAttribute {
	attrs := func(as []statusAttr) map[string]dschema.Attribute {
		out := map[string]dschema.Attribute{}
		for _, a := range as {
			if a.counter {
				out[a.name] = dschema.Int64Attribute{Computed: true, Description: a.desc}
			} else {
				out[a.name] = dschema.StringAttribute{Computed: true, Description: a.desc}
			}
		}
		return out
	}
	vdev := attrs(vdevStatusAttrs)
	vdev["disks"] = dschema.ListNestedAttribute{Computed: true, Description: vdevDisksDesc,
		NestedObject: dschema.NestedAttributeObject{Attributes: attrs(diskStatusAttrs)}}
	return dschema.ListNestedAttribute{Computed: true, Description: poolStatusDesc,
		NestedObject: dschema.NestedAttributeObject{Attributes: vdev}}
}
