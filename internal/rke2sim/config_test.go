package rke2sim

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// simRoot points RKE2_SIM_ROOT at a new directory and writes files (paths
// relative to it).
func simRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	t.Setenv(RootEnv, root)
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noEnv(string) string { return "" }

func TestLoadConfigMerge(t *testing.T) {
	simRoot(t, map[string]string{
		"etc/rancher/rke2/config.yaml": `token: from-main
node-name: main
node-label:
  - a=1
  - b=2
tls-san: [one.example, "10.0.0.9"]
write-kubeconfig-mode: 0644
selinux: true
no-such-flag: x
`,
		// Drop-ins apply in lexical order whatever their file names.
		"etc/rancher/rke2/config.yaml.d/20-append.yaml": "node-label+: [c=3]\ntls-san+: two.example\n",
		"etc/rancher/rke2/config.yaml.d/10-replace.yml": "node-name: dropin\nnode-label: [x=9]\n",
		"etc/rancher/rke2/config.yaml.d/30-ignored.txt": "node-name: ignored\n",
		"etc/rancher/rke2/config.yaml.d/40-empty.yaml":  "",
	})
	cfg, err := LoadConfig("server", []string{"--node-label", "cli=1", "--token=from-cli"}, func(k string) string {
		return map[string]string{"RKE2_TOKEN": "from-env", "RKE2_NODE_NAME": "env", "RKE2_KUBECONFIG_OUTPUT": "/tmp/kc"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"token", cfg.String("token"), "from-cli"},                             // CLI over file over env
		{"node-name", cfg.String("node-name"), "dropin"},                       // later file replaces
		{"write-kubeconfig", cfg.String("write-kubeconfig"), "/tmp/kc"},        // env when unset
		{"write-kubeconfig-mode", cfg.String("write-kubeconfig-mode"), "0644"}, // raw scalar, not 420
		{"selinux", cfg.Bool("selinux"), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if got, want := cfg.List("node-label"), []string{"x=9", "c=3", "cli=1"}; !slices.Equal(got, want) {
		t.Errorf("node-label = %v, want %v", got, want)
	}
	if got, want := cfg.List("tls-san"), []string{"one.example", "10.0.0.9", "two.example"}; !slices.Equal(got, want) {
		t.Errorf("tls-san = %v, want %v", got, want)
	}
	if want := []string{"Unknown flag --no-such-flag found in config.yaml, skipping"}; !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings = %q, want %q", cfg.Warnings, want)
	}
	if len(cfg.Files) != 4 || !strings.HasSuffix(cfg.Files[1], "10-replace.yml") || !strings.HasSuffix(cfg.Files[3], "40-empty.yaml") {
		t.Errorf("files read: %v", cfg.Files)
	}
}

func TestLoadConfigServerKeysWarnOnAgents(t *testing.T) {
	simRoot(t, map[string]string{"etc/rancher/rke2/config.yaml": "server: https://10.0.0.1:9345\ntoken: x\ncluster-cidr: 10.42.0.0/16\nwrite-kubeconfig-mode: \"0644\"\nnode-label: [a=b]\n"})
	cfg, err := LoadConfig("agent", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Unknown flag --cluster-cidr found in config.yaml, skipping",
		"Unknown flag --write-kubeconfig-mode found in config.yaml, skipping",
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("agent warnings = %q, want %q", cfg.Warnings, want)
	}
	if cfg.IsSet("cluster-cidr") || cfg.String("server") != "https://10.0.0.1:9345" {
		t.Errorf("cluster-cidr set %v, server %q", cfg.IsSet("cluster-cidr"), cfg.String("server"))
	}
	if _, err := LoadConfig("server", nil, noEnv); err != nil {
		t.Errorf("the same file for a server: %v", err)
	}
}

func TestLoadConfigFiles(t *testing.T) {
	simRoot(t, nil)
	cfg, err := LoadConfig("server", nil, noEnv)
	if err != nil {
		t.Fatalf("a missing default config file must be fine: %v", err)
	}
	if len(cfg.Files) != 0 {
		t.Errorf("files %v", cfg.Files)
	}
	if _, err := LoadConfig("server", []string{"--config", "/etc/rancher/rke2/other.yaml"}, noEnv); err == nil {
		t.Error("a missing explicit config file was accepted")
	}
	root := simRoot(t, map[string]string{"etc/rancher/rke2/other.yaml": "node-name: other\n"})
	cfg, err = LoadConfig("agent", []string{"-c", "/etc/rancher/rke2/other.yaml"}, noEnv)
	if err != nil || cfg.String("node-name") != "other" || cfg.Files[0] != filepath.Join(root, "etc/rancher/rke2/other.yaml") {
		t.Errorf("explicit config: %v, %+v", err, cfg)
	}
	for name, content := range map[string]string{
		"list":    "- a\n- b\n",
		"invalid": "a: [b\n",
		"nested":  "node-label: {a: b}\n",
	} {
		simRoot(t, map[string]string{"etc/rancher/rke2/config.yaml": content})
		if _, err := LoadConfig("server", nil, noEnv); err == nil {
			t.Errorf("%s config accepted", name)
		}
	}
}

func TestParseArgs(t *testing.T) {
	args, err := parseArgs("server", []string{"--debug", "-t", "tok", "--node-label=a=b", "--server", "https://x:9345", "--disable-kube-proxy"})
	if err != nil {
		t.Fatal(err)
	}
	want := []cliArg{{"debug", "true"}, {"token", "tok"}, {"node-label", "a=b"}, {"server", "https://x:9345"}, {"disable-kube-proxy", "true"}}
	if !slices.Equal(args, want) {
		t.Errorf("args = %v, want %v", args, want)
	}
	for _, bad := range [][]string{{"--nope"}, {"positional"}, {"--token"}, {"--tls-san", "x"}} {
		cmd := "agent"
		if _, err := parseArgs(cmd, bad); err == nil {
			t.Errorf("%s %v accepted", cmd, bad)
		}
	}
}

func TestParseFileMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"": 0o600, "0644": 0o644, "644": 0o644, "0o640": 0o640, "0600": 0o600} {
		if got, err := parseFileMode(in, 0o600); err != nil || got != want {
			t.Errorf("parseFileMode(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, bad := range []string{"rw-r--r--", "0999", "1777", "-1"} {
		if _, err := parseFileMode(bad, 0o600); err == nil {
			t.Errorf("parseFileMode(%q) accepted", bad)
		}
	}
}
