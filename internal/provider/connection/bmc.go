package connection

import (
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
)

// BMCConfig is a resource's bmc settings merged over the provider's bmc
// block by the one rule (see String): username, password, protocol (else
// auto), insecure_tls and timeout (else bmc.DefaultTimeout). The address
// and port are the resource's own.
func (d *Data) BMCConfig(host string, port int, own BMCModel) bmc.Config {
	def := BMCModel{Username: types.StringNull(), Password: types.StringNull(), Protocol: types.StringNull(),
		InsecureTLS: types.BoolNull(), Timeout: types.StringNull()}
	if d != nil && d.BMC != nil {
		def = *d.BMC
	}
	return bmc.Config{
		Host:        host,
		Port:        port,
		Username:    String(own.Username, def.Username, ""),
		Password:    String(own.Password, def.Password, ""),
		Protocol:    String(own.Protocol, def.Protocol, "auto"),
		InsecureTLS: Bool(own.InsecureTLS, def.InsecureTLS),
		Timeout:     Duration(own.Timeout, def.Timeout, bmc.DefaultTimeout),
	}
}
