package rke2sim

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionOutput(t *testing.T) {
	old := Version
	Version = "v1.31.4+rke2r1"
	defer func() { Version = old }()
	for _, arg := range []string{"--version", "-v", "version"} {
		var out, errOut bytes.Buffer
		if code := run([]string{arg}, &out, &errOut); code != 0 {
			t.Fatalf("rke2 %s exited %d", arg, code)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 2 || lines[0] != "rke2 version v1.31.4+rke2r1 (simulator)" || !strings.HasPrefix(lines[1], "go version go") {
			t.Errorf("rke2 %s printed %q", arg, out.String())
		}
	}
}

func TestCommandErrors(t *testing.T) {
	simRoot(t, nil)
	t.Setenv("RKE2_URL", "")
	t.Setenv("RKE2_TOKEN", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, "unknown command"},
		{[]string{"agent"}, "--server is required"},
		{[]string{"agent", "--server", "https://127.0.0.1:9345"}, "--token is required"},
		{[]string{"agent", "--server", "http://127.0.0.1:9345", "--token", "x"}, "invalid server URL"},
		{[]string{"server", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"server", "--node-label", "bad"}, "invalid node label"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("rke2 %v: exit %d, stderr %q; want 1 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "HOME=/root"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("childEnv = %q: NOTIFY_SOCKET must not reach etcd/kube-apiserver", got)
	}
}
