package connection

import (
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
)

// KubeAccess is how a resource reaches the Kubernetes API, by the one rule
// (see String): its own kubeconfig, when set, is all of its access (a
// cluster built in the same apply); else the provider's kubernetes block
// (kubeconfig_path, kubeconfig, context). The timeout is the provider's,
// else kube.DefaultTimeout.
func (d *Data) KubeAccess(ownKubeconfig types.String) kube.Access {
	def := KubernetesModel{KubeconfigPath: types.StringNull(), Kubeconfig: types.StringNull(),
		Context: types.StringNull(), Timeout: types.StringNull()}
	if d != nil && d.Kubernetes != nil {
		def = *d.Kubernetes
	}
	a := kube.Access{Timeout: Duration(types.StringNull(), def.Timeout, kube.DefaultTimeout)}
	if setString(ownKubeconfig) {
		a.Kubeconfig = []byte(ownKubeconfig.ValueString())
		return a
	}
	a.KubeconfigPath = ExpandHome(String(types.StringNull(), def.KubeconfigPath, ""))
	a.Kubeconfig = []byte(String(types.StringNull(), def.Kubeconfig, ""))
	a.Context = String(types.StringNull(), def.Context, "")
	return a
}
