package node

import (
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
)

// Deadlines of the BMC and Kubernetes clients (issue 13, item 12): every
// BMC operation and every API request is bounded, by the configured
// `timeout` or the client's documented default, so that no refresh can
// hang on a peer that stopped answering. The values were validated as
// positive durations by the schema; an unset or unknown one means the
// default.

// bmcTimeout is the node's bmc.timeout, else the provider's, else
// bmc.DefaultTimeout.
func bmcTimeout(b *NodeBMCModel, data *connection.Data) time.Duration {
	if b != nil {
		if d, err := time.ParseDuration(b.Timeout.ValueString()); err == nil && d > 0 {
			return d
		}
	}
	if data != nil && data.BMC != nil {
		if d, err := time.ParseDuration(data.BMC.Timeout.ValueString()); err == nil && d > 0 {
			return d
		}
	}
	return bmc.DefaultTimeout
}
