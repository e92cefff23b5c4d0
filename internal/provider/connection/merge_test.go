package connection

import (
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/bmc"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/kube"
)

func TestBMCConfigMergesOverProviderDefaults(t *testing.T) {
	d := &Data{Defaults: Defaults{BMC: &BMCModel{Username: types.StringValue("admin"), Password: types.StringValue("pw"),
		Protocol: types.StringValue("ipmi"), InsecureTLS: types.BoolValue(true), Timeout: types.StringValue("5s")}}}
	c := d.BMCConfig("bmc1", 623, BMCModel{Username: types.StringValue("root"), Password: types.StringNull(),
		Protocol: types.StringNull(), InsecureTLS: types.BoolNull(), Timeout: types.StringValue("9s")})
	if c.Host != "bmc1" || c.Port != 623 || c.Username != "root" || c.Password != "pw" || c.Protocol != "ipmi" ||
		!c.InsecureTLS || c.Timeout != 9*time.Second {
		t.Fatalf("merged %+v", c)
	}
	var none *Data
	c = none.BMCConfig("bmc1", 0, BMCModel{})
	if c.Protocol != "auto" || c.Timeout != bmc.DefaultTimeout || c.Username != "" {
		t.Fatalf("built-in defaults %+v", c)
	}
}

func TestKubeAccessOwnKubeconfigIsAllOfIt(t *testing.T) {
	d := &Data{Defaults: Defaults{Kubernetes: &KubernetesModel{KubeconfigPath: types.StringValue("/kc"),
		Kubeconfig: types.StringNull(), Context: types.StringValue("lab"), Timeout: types.StringValue("7s")}}}
	a := d.KubeAccess(types.StringNull())
	if a.KubeconfigPath != "/kc" || a.Context != "lab" || a.Timeout != 7*time.Second {
		t.Fatalf("provider access %+v", a)
	}
	a = d.KubeAccess(types.StringValue("apiVersion: v1"))
	if string(a.Kubeconfig) != "apiVersion: v1" || a.KubeconfigPath != "" || a.Context != "" || a.Timeout != 7*time.Second {
		t.Fatalf("own kubeconfig %+v", a)
	}
	var none *Data
	if a := none.KubeAccess(types.StringValue("")); a.Timeout != kube.DefaultTimeout || len(a.Kubeconfig) != 0 {
		t.Fatalf("defaults %+v", a)
	}
}
