package zfs

import (
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/tfhelp"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/zfs"
)

// explainZFS is explain with what to do about a pool that is not imported.
func explainZFS(err error) string {
	var ni *zfs.NotImportedError
	if !errors.As(err, &ni) {
		return tfhelp.Explain(err)
	}
	return err.Error() + fmt.Sprintf("\n\nThe pool %s exists on the host's disks but is not imported (a reboot without the cache file, "+
		"moved disks or a rescue boot leave it so). Nothing was changed and the state was kept. Import it on the host with `%s` "+
		"(`-l` loads encryption keys that can be loaded), then plan again. If it should no longer be managed here, remove it and its "+
		"datasets from the state (`terraform state rm`) instead.", ni.Asked, ni.ImportCommand())
}

// saveCreated stores what a create that failed after making something
// knows of it: the planned values, with every value not known yet (what
// the read-back would have filled in) null. Terraform then keeps the
// resource in state as tainted, instead of forgetting something that
// exists on the host and creating it again over the top.
func saveCreated(plan tftypes.Value, state *tfsdk.State) error {
	v, err := tftypes.Transform(plan, func(_ *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
		if !v.IsKnown() {
			return tftypes.NewValue(v.Type(), nil), nil
		}
		return v, nil
	})
	if err != nil {
		return err
	}
	state.Raw = v
	return nil
}
