package rke2

import (
	"reflect"
	"strings"
	"testing"
)

func TestBuildServerAndAgent(t *testing.T) {
	cluster := map[string]string{"disable": "rke2-ingress-nginx,rke2-metrics-server", "kubelet-arg": "max-pods=200", "cni": "cilium"}
	typed := Config{"cluster-cidr": "10.52.0.0/16", "tls-san": []string{"k8s.lan"}}
	first := Build(NodeSpec{Role: Server, Name: "cp1", Token: "s3cret", Cluster: cluster, ServerTyped: typed,
		Node: map[string]string{"node-ip": "192.168.1.21", "kubelet-arg": "max-pods=110"}, ExtraSANs: []string{"192.168.1.21", "k8s.lan"},
		Labels: map[string]string{"zone": "rack1", "a": "b"}, Taints: []string{"dedicated=cp:NoSchedule"}})
	want := Config{
		"node-name": "cp1", "token": "s3cret", "node-ip": "192.168.1.21",
		"kubelet-arg":  "max-pods=110", // the node's own value wins
		"disable":      "rke2-ingress-nginx,rke2-metrics-server",
		"cni":          "cilium",
		"cluster-cidr": "10.52.0.0/16",
		"tls-san":      []string{"k8s.lan", "192.168.1.21"}, // endpoint added once
		"node-label":   []string{"a=b", "zone=rack1"},       // sorted
		"node-taint":   []string{"dedicated=cp:NoSchedule"},
	}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("first server config:\n got %#v\nwant %#v", first, want)
	}
	agent := Build(NodeSpec{Role: Agent, Name: "w1", JoinURL: JoinURL("k8s.lan"), Cluster: cluster, ServerTyped: typed, ExtraSANs: []string{"k8s.lan"}})
	want = Config{"node-name": "w1", "server": "https://k8s.lan:9345", "kubelet-arg": "max-pods=200"}
	if !reflect.DeepEqual(agent, want) {
		t.Fatalf("agent config (server-only keys must be left out):\n got %#v\nwant %#v", agent, want)
	}
}

func TestRenderParseHash(t *testing.T) {
	c := Build(NodeSpec{Role: Server, Name: "cp1", Token: "s3cret", JoinURL: JoinURL("fd00::10"),
		Node: map[string]string{"write-kubeconfig-mode": "0644", "selinux": "true", "node-ip": "10.0.0.1"}, ExtraSANs: []string{"fd00::10"}})
	data, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, s := range []string{"# Written by terraform-provider-homelab", "server: https://[fd00::10]:9345", "token: s3cret", "- fd00::10", `write-kubeconfig-mode: "0644"`, `selinux: "true"`} {
		mustContain(t, text, s)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// Strings stay strings when read back (quoted where YAML would retype them).
	if back["write-kubeconfig-mode"] != "0644" || back["selinux"] != "true" {
		t.Fatalf("values changed type on the way back: %#v", back)
	}
	h1, err := HashRendered(c)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashFile(data)
	if h1 != h2 || !strings.HasPrefix(h1.Config, "sha256:") || h1.Secrets != "" {
		t.Fatalf("planned hash %s, read back %s", h1, h2)
	}
	// The token is not part of the hash: no hash of a secret is stored.
	c2 := Build(NodeSpec{Role: Server, Name: "cp1", Token: "other", JoinURL: JoinURL("fd00::10"),
		Node: map[string]string{"write-kubeconfig-mode": "0644", "selinux": "true", "node-ip": "10.0.0.1"}, ExtraSANs: []string{"fd00::10"}})
	if h, _ := HashRendered(c2); h != h1 {
		t.Fatal("the hash depends on the token")
	}
	// Comments, key order and quoting do not count; values do.
	same := "node-ip: 10.0.0.1\n# a comment\nselinux: 'true'\nwrite-kubeconfig-mode: '0644'\ntls-san: [fd00::10]\nnode-name: cp1\nserver: https://[fd00::10]:9345\ntoken: whatever\n"
	if h, _ := HashFile([]byte(same)); h != h1 {
		t.Fatalf("an equivalent file hashes differently: %s vs %s", h, h1)
	}
	edited := strings.Replace(text, "node-ip: 10.0.0.1", "node-ip: 10.0.0.9", 1)
	if h, _ := HashFile([]byte(edited)); h == h1 {
		t.Fatal("an edited value did not change the hash")
	}
	retyped := strings.Replace(text, `selinux: "true"`, "selinux: true", 1)
	if h, _ := HashFile([]byte(retyped)); h == h1 {
		t.Fatal("a value edited from string to bool did not change the hash")
	}
	if _, err := HashFile([]byte("a: [b\n")); err == nil {
		t.Fatal("broken YAML hashed without error")
	}
	if h, err := HashFile(nil); err != nil || h.Config == "" {
		t.Fatalf("empty file: %q %v", h, err)
	}
}

func TestManagedKeys(t *testing.T) {
	for _, k := range []string{"token", "server", "node-name", "node-label", "node-taint"} {
		if !IsManagedKey(k) {
			t.Errorf("%s should be managed", k)
		}
	}
	if IsManagedKey("node-ip") {
		t.Error("node-ip is the user's")
	}
}

func TestURLs(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "https://10.0.0.1:6443", "k8s.lan": "https://k8s.lan:6443",
		"fd00::1": "https://[fd00::1]:6443", "[fd00::1]": "https://[fd00::1]:6443",
	} {
		if got := APIURL(in); got != want {
			t.Errorf("APIURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := JoinURL("fd00::1"); got != "https://[fd00::1]:9345" {
		t.Errorf("JoinURL = %q", got)
	}
}

func TestParseVersion(t *testing.T) {
	for _, f := range []string{"version-sim.txt", "version-real.txt"} {
		v, err := ParseVersion(testdata(t, f))
		if err != nil || v != "v1.31.4+rke2r1" {
			t.Errorf("%s: %q %v", f, v, err)
		}
	}
	for _, bad := range []string{"", "bash: rke2: command not found", "rke2 version"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for v, ok := range map[string]bool{"v1.31.4+rke2r1": true, "v1.32.0-rc1+rke2r1": true, "1.31.4": false, "v1.31.4+k3s1": false} {
		if VersionRe.MatchString(v) != ok {
			t.Errorf("VersionRe(%q) != %v", v, ok)
		}
	}
	for c, ok := range map[string]bool{"stable": true, "latest": true, "v1.31": true, "v1.31.4": false} {
		if ChannelRe.MatchString(c) != ok {
			t.Errorf("ChannelRe(%q) != %v", c, ok)
		}
	}
}
