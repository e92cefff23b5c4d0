package rke2sim

import (
	"maps"
	"slices"
	"testing"
)

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels([]string{"a=b", "example.com/role=worker", "empty=", "a=c"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "c", "example.com/role": "worker", "empty": ""}
	if !maps.Equal(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
	for _, bad := range []string{"novalue", "=v", "bad key=v", "k=bad value", "-k=v", "a/b/c=v"} {
		if _, err := ParseLabels([]string{bad}); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
}

func TestParseTaints(t *testing.T) {
	got, err := ParseTaints([]string{"CriticalAddonsOnly=true:NoExecute", "dedicated:NoSchedule", "example.com/gpu=a100:PreferNoSchedule"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Taint{
		{Key: "CriticalAddonsOnly", Value: "true", Effect: "NoExecute"},
		{Key: "dedicated", Effect: "NoSchedule"},
		{Key: "example.com/gpu", Value: "a100", Effect: "PreferNoSchedule"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("taints = %v, want %v", got, want)
	}
	if got[1].String() != "dedicated:NoSchedule" || got[0].String() != "CriticalAddonsOnly=true:NoExecute" {
		t.Errorf("String() = %q, %q", got[1], got[0])
	}
	for _, bad := range [][]string{{"k=v"}, {"k=v:NoWay"}, {"=v:NoSchedule"}, {"k=bad value:NoSchedule"}, {"k=a:NoSchedule", "k=b:NoSchedule"}} {
		if _, err := ParseTaints(bad); err == nil {
			t.Errorf("taints %q accepted", bad)
		}
	}
}

func TestNodeSpecFrom(t *testing.T) {
	simRoot(t, map[string]string{"etc/rancher/rke2/config.yaml": "node-label: [a=b]\nnode-taint: [k=v:NoSchedule]\nadvertise-address: 10.0.0.5\nbind-address: 10.0.0.6\n"})
	cfg, err := LoadConfig("server", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	n, err := nodeSpecFrom(cfg, "My-Host", true)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "my-host" || n.InternalIP != "10.0.0.5" || n.Labels["a"] != "b" || len(n.Taints) != 1 {
		t.Errorf("server node = %+v", n)
	}
	for _, l := range serverRoleLabels {
		if n.Labels[l] != "true" {
			t.Errorf("server lacks role label %s", l)
		}
	}

	simRoot(t, map[string]string{"etc/rancher/rke2/config.yaml": "node-name: Worker-1\nnode-ip: 10.0.0.7\nnode-external-ip: 203.0.113.7\nadvertise-address: 10.0.0.5\n"})
	cfg, err = LoadConfig("agent", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	n, err = nodeSpecFrom(cfg, "host", false)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "worker-1" || n.InternalIP != "10.0.0.7" || n.ExternalIP != "203.0.113.7" || len(n.Labels) != 0 {
		t.Errorf("agent node = %+v", n)
	}

	for _, content := range []string{"node-ip: not-an-ip\n", "node-name: under_score\n", "node-label: [bad]\n", "node-taint: [k=v]\n"} {
		simRoot(t, map[string]string{"etc/rancher/rke2/config.yaml": content})
		cfg, err := LoadConfig("agent", nil, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nodeSpecFrom(cfg, "host", false); err == nil {
			t.Errorf("config %q accepted", content)
		}
	}
}

func TestFirstServiceIP(t *testing.T) {
	for cidr, want := range map[string]string{"10.43.0.0/16": "10.43.0.1", "10.55.0.0/16,fd00::/108": "10.55.0.1", "192.168.1.0/24": "192.168.1.1"} {
		if got := firstServiceIP(cidr); got.String() != want {
			t.Errorf("firstServiceIP(%s) = %s, want %s", cidr, got, want)
		}
	}
}
