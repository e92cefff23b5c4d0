package metallb

import (
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/connection"
)

// The Kubernetes client's deadline (issue 13, item 12): every API request
// is bounded, by the configured `timeout` or the client's documented
// default, so that no refresh can hang on an API server that stopped
// answering.

// kubeTimeout is the provider's kubernetes.timeout, else kube.DefaultTimeout.
func kubeTimeout(data *connection.Data) time.Duration {
	if data != nil && data.Kubernetes != nil {
		if d, err := time.ParseDuration(data.Kubernetes.Timeout.ValueString()); err == nil && d > 0 {
			return d
		}
	}
	return kube.DefaultTimeout
}
