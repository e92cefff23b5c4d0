package connection

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var at = path.Root("ssh")

func host(h string) *SSHModel {
	return &SSHModel{ProviderSSHModel: ProviderSSHModel{Host: types.StringValue(h)}}
}

func TestResolveMergesHostOverProviderDefaults(t *testing.T) {
	m := host("nas.lan")
	m.Port = types.Int64Value(2222)
	d := &ProviderSSHModel{
		User:           types.StringValue("admin"),
		Port:           types.Int64Value(22),
		PrivateKey:     types.StringValue("KEY"),
		KnownHostsFile: types.StringValue("/etc/homelab/known_hosts"),
		Sudo:           types.BoolValue(true),
		Timeout:        types.StringValue("5s"),
	}
	tgt, diags := Resolve(m, d, at)
	if diags.HasError() {
		t.Fatal(diags)
	}
	c := tgt.Config
	if c.Host != "nas.lan" || c.Port != 2222 || c.User != "admin" || c.PrivateKey != "KEY" ||
		c.KnownHostsFile != "/etc/homelab/known_hosts" || !c.Sudo || c.Timeout != 5*time.Second || tgt.Local {
		t.Fatalf("merged config %+v", c)
	}
	// The host's own values win over the defaults.
	m.User = types.StringValue("root")
	m.Sudo = types.BoolValue(false)
	tgt, _ = Resolve(m, d, at)
	if tgt.Config.User != "root" || tgt.Config.Sudo {
		t.Fatalf("host values did not override defaults: %+v", tgt.Config)
	}
}

func TestResolveBuiltInDefaults(t *testing.T) {
	m := host("nas.lan")
	m.Agent = types.BoolValue(true)
	tgt, diags := Resolve(m, nil, at)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if tgt.Config.Port != 22 || tgt.Config.User != "root" || tgt.Config.Timeout != 30*time.Second || tgt.Config.KnownHostsFile != "" {
		t.Fatalf("defaults %+v", tgt.Config)
	}
}

func TestResolveUnknownValuesWaitInsteadOfFailingOddly(t *testing.T) {
	m := host("nas.lan")
	d := &ProviderSSHModel{PrivateKey: types.StringUnknown()}
	_, diags := Resolve(m, d, at)
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), "provider ssh.private_key") || !strings.Contains(diags[0].Detail(), "depends_on") {
		t.Fatalf("want an error naming the unknown value and the way out, got %v", diags)
	}
}

func TestResolveNeedsHostAndCredentials(t *testing.T) {
	if _, diags := Resolve(&SSHModel{}, nil, at); !diags.HasError() || diags[0].Summary() != "Missing SSH host" {
		t.Fatalf("missing host: %v", diags)
	}
	if _, diags := Resolve(nil, nil, at); !diags.HasError() {
		t.Fatal("a missing ssh block must be an error")
	}
	if _, diags := Resolve(host("nas"), nil, at); !diags.HasError() || diags[0].Summary() != "No SSH authentication configured" {
		t.Fatalf("no credentials: %v", diags)
	}
}

func TestResolveLocal(t *testing.T) {
	m := host("localhost")
	m.Local = types.BoolValue(true)
	tgt, diags := Resolve(m, nil, at)
	if diags.HasError() || !tgt.Local {
		t.Fatalf("local: %+v %v", tgt, diags)
	}
	m.Host = types.StringValue("nas.lan")
	if _, diags := Resolve(m, nil, at); !diags.HasError() {
		t.Fatal("local = true with a remote host name must be refused")
	}
}

func TestResolveBastionInheritsTargetCredentials(t *testing.T) {
	m := host("10.0.0.5")
	m.PrivateKey = types.StringValue("TARGETKEY")
	m.User = types.StringValue("admin")
	m.KnownHostsFile = types.StringValue("/kh")
	m.Sudo = types.BoolValue(true)
	m.Bastion = &BastionModel{Host: types.StringValue("jump.example.net")}
	tgt, diags := Resolve(m, nil, at)
	if diags.HasError() {
		t.Fatal(diags)
	}
	b := tgt.Config.Bastion
	if b == nil || b.Host != "jump.example.net" || b.Port != 22 || b.User != "admin" || b.PrivateKey != "TARGETKEY" ||
		b.KnownHostsFile != "/kh" || b.Sudo || b.Bastion != nil {
		t.Fatalf("bastion %+v", b)
	}
	m.Bastion = &BastionModel{Host: types.StringValue("jump"), User: types.StringValue("hop"), PrivateKey: types.StringValue("HOPKEY"),
		Port: types.Int64Value(2200)}
	tgt, _ = Resolve(m, nil, at)
	if b := tgt.Config.Bastion; b.User != "hop" || b.PrivateKey != "HOPKEY" || b.Port != 2200 {
		t.Fatalf("bastion overrides ignored: %+v", b)
	}
	// The provider's bastion applies when the host has none.
	m.Bastion = nil
	tgt, _ = Resolve(m, &ProviderSSHModel{Bastion: &BastionModel{Host: types.StringValue("pjump")}}, at)
	if tgt.Config.Bastion == nil || tgt.Config.Bastion.Host != "pjump" {
		t.Fatalf("provider bastion not used: %+v", tgt.Config.Bastion)
	}
}

func TestWarningsForInsecureHostKey(t *testing.T) {
	m := host("nas")
	if d := Warnings(m, nil, at); len(d) != 0 {
		t.Fatalf("unexpected warnings %v", d)
	}
	m.InsecureIgnoreHostKey = types.BoolValue(true)
	d := Warnings(m, nil, at)
	if len(d) != 1 || !strings.Contains(d[0].Detail(), "nas") {
		t.Fatalf("want one warning naming the host, got %v", d)
	}
}

// The provider's ssh.host is the default host: a resource without an ssh
// block, or whose block leaves host unset, reaches it; a host of its own
// wins; with neither, the error names both places.
func TestResolveDefaultHost(t *testing.T) {
	d := &ProviderSSHModel{Host: types.StringValue("nas.lan"), Agent: types.BoolValue(true),
		CommandTimeout: types.StringValue("90s")}
	for name, m := range map[string]*SSHModel{"no block": nil, "block without host": {}} {
		tgt, diags := Resolve(m, d, at)
		if diags.HasError() {
			t.Fatalf("%s: %v", name, diags)
		}
		if tgt.Config.Host != "nas.lan" || tgt.CommandTimeout != 90*time.Second || tgt.Config.CommandTimeout != 90*time.Second {
			t.Fatalf("%s: %+v", name, tgt)
		}
	}
	tgt, _ := Resolve(host("other.lan"), d, at)
	if tgt.Config.Host != "other.lan" {
		t.Fatalf("the block's own host lost to the default: %+v", tgt.Config)
	}
	_, diags := Resolve(nil, &ProviderSSHModel{Agent: types.BoolValue(true)}, at)
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), "provider's `ssh` block") {
		t.Fatalf("a missing host must name both places: %v", diags)
	}
	// An unknown default host waits instead of failing oddly.
	_, diags = Resolve(nil, &ProviderSSHModel{Host: types.StringUnknown()}, at)
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), "provider ssh.host") {
		t.Fatalf("unknown provider host: %v", diags)
	}
}

func TestUnknownsNamesEveryUnknownAttribute(t *testing.T) {
	m := host("nas")
	m.HostKey, m.Port = types.StringUnknown(), types.Int64Unknown()
	m.Bastion = &BastionModel{Host: types.StringValue("jump"), User: types.StringUnknown()}
	d := &ProviderSSHModel{CommandTimeout: types.StringUnknown()}
	got := strings.Join(Unknowns(m, d), ",")
	if want := "host_key,port,bastion.user,provider ssh.command_timeout"; got != want {
		t.Fatalf("Unknowns = %s, want %s", got, want)
	}
}
