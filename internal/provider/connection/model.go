package connection

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// ProviderSSHModel holds the attributes the provider's ssh {} block and a
// host's ssh {} block have in common; on the provider they are defaults.
type ProviderSSHModel struct {
	// Host is a host's address; on the provider, the default host.
	Host                  types.String  `tfsdk:"host"`
	Port                  types.Int64   `tfsdk:"port"`
	User                  types.String  `tfsdk:"user"`
	PrivateKey            types.String  `tfsdk:"private_key"`
	Password              types.String  `tfsdk:"password"`
	Agent                 types.Bool    `tfsdk:"agent"`
	KnownHostsFile        types.String  `tfsdk:"known_hosts_file"`
	InsecureIgnoreHostKey types.Bool    `tfsdk:"insecure_ignore_host_key"`
	Sudo                  types.Bool    `tfsdk:"sudo"`
	Timeout               types.String  `tfsdk:"timeout"`
	CommandTimeout        types.String  `tfsdk:"command_timeout"`
	Bastion               *BastionModel `tfsdk:"bastion"`
}

// SSHModel is a host's ssh {} block: the common attributes plus those that
// only make sense for one host.
type SSHModel struct {
	ProviderSSHModel
	HostKey types.String `tfsdk:"host_key"`
	Local   types.Bool   `tfsdk:"local"`
}

// BastionModel is a bastion {} block.
type BastionModel struct {
	Host       types.String `tfsdk:"host"`
	Port       types.Int64  `tfsdk:"port"`
	User       types.String `tfsdk:"user"`
	PrivateKey types.String `tfsdk:"private_key"`
	Password   types.String `tfsdk:"password"`
	HostKey    types.String `tfsdk:"host_key"`
}

// BMCModel is the provider's bmc {} block of defaults for homelab_node.
type BMCModel struct {
	Username    types.String `tfsdk:"username"`
	Password    types.String `tfsdk:"password"`
	Protocol    types.String `tfsdk:"protocol"`
	InsecureTLS types.Bool   `tfsdk:"insecure_tls"`
	Timeout     types.String `tfsdk:"timeout"`
}

// KubernetesModel is the provider's kubernetes {} block.
type KubernetesModel struct {
	KubeconfigPath types.String `tfsdk:"kubeconfig_path"`
	Kubeconfig     types.String `tfsdk:"kubeconfig"`
	Context        types.String `tfsdk:"context"`
	Timeout        types.String `tfsdk:"timeout"`
}

// Defaults is what the provider hands every resource and data source: the
// shared SSH pool and the provider-level defaults (nil when a block is absent).
type Defaults struct {
	Pool       *remote.Pool
	SSH        *ProviderSSHModel
	BMC        *BMCModel
	Kubernetes *KubernetesModel
}

// Target is a resolved way to reach one host.
type Target struct {
	Local bool
	Sudo  bool
	// CommandTimeout bounds commands without a deadline of their own, on
	// SSH (also in Config) and local targets alike.
	CommandTimeout time.Duration
	Config         remote.Config
}

// String names the target in messages.
func (t Target) String() string {
	if t.Local {
		return "localhost (local)"
	}
	return t.Config.String()
}

// Unknowns lists the attributes (as paths relative to the block) that are
// still unknown, in the host's block or the provider's defaults. A target
// cannot be resolved until they are known.
func Unknowns(m *SSHModel, d *ProviderSSHModel) []string {
	var out []string
	if m != nil {
		unknownFields("", reflect.ValueOf(m).Elem(), &out)
	}
	if d != nil {
		unknownFields("provider ssh.", reflect.ValueOf(d).Elem(), &out)
	}
	return out
}

// unknownFields appends the tfsdk names of the unknown values of the model
// struct v, its own fields first, then those of embedded structs, nested
// blocks (pointers to structs) as block.attribute. It reads the models, so
// that an attribute added to the table and the model is checked too.
func unknownFields(prefix string, v reflect.Value, out *[]string) {
	var embedded []reflect.Value
	for i := 0; i < v.NumField(); i++ {
		f, fv := v.Type().Field(i), v.Field(i)
		switch {
		case f.Anonymous:
			embedded = append(embedded, fv)
		case fv.Kind() == reflect.Pointer:
			if !fv.IsNil() && fv.Elem().Kind() == reflect.Struct {
				unknownFields(prefix+f.Tag.Get("tfsdk")+".", fv.Elem(), out)
			}
		default:
			if u, ok := fv.Interface().(interface{ IsUnknown() bool }); ok && u.IsUnknown() {
				*out = append(*out, prefix+f.Tag.Get("tfsdk"))
			}
		}
	}
	for _, e := range embedded {
		unknownFields(prefix, e, out)
	}
}

// Resolve merges a host's ssh {} block over the provider's defaults. at is
// the path of the ssh block, for attribute errors.
func Resolve(m *SSHModel, d *ProviderSSHModel, at path.Path) (Target, diag.Diagnostics) {
	var diags diag.Diagnostics
	if m == nil {
		// No ssh block: everything comes from the provider's block.
		m = &SSHModel{}
	}
	if d == nil {
		d = &ProviderSSHModel{}
	}
	if u := Unknowns(m, d); len(u) > 0 {
		diags.AddAttributeError(at, "Unknown connection settings",
			fmt.Sprintf("These connection settings are not known yet: %s. They must be known before the host can be reached; "+
				"if they come from a resource that is not created yet, add `depends_on` on that resource so this is read during apply, "+
				"after the value is known.", strings.Join(u, ", ")))
		return Target{}, diags
	}
	host := String(m.Host, d.Host, "")
	if host == "" {
		diags.AddAttributeError(at.AtName("host"), "Missing SSH host",
			"Set `host` in this `ssh` block, or a default `host` in the provider's `ssh` block (a one-host homelab then needs no `ssh` block per resource).")
		return Target{}, diags
	}
	t := Target{Sudo: Bool(m.Sudo, d.Sudo)}
	commandTimeout, err := time.ParseDuration(String(m.CommandTimeout, d.CommandTimeout, remote.DefaultCommandTimeout.String()))
	if err != nil {
		diags.AddAttributeError(at.AtName("command_timeout"), "Invalid SSH command timeout", err.Error())
		return Target{}, diags
	}
	t.CommandTimeout = commandTimeout
	if m.Local.ValueBool() {
		if host != "localhost" {
			diags.AddAttributeError(at.AtName("local"), "Local execution needs host = \"localhost\"",
				fmt.Sprintf("`local = true` runs commands on the machine Terraform runs on, but `host` is %q. "+
					"Set `host = \"localhost\"`, or remove `local` to connect over SSH.", host))
			return Target{}, diags
		}
		t.Local = true
		return t, diags
	}
	timeout, err := time.ParseDuration(String(m.Timeout, d.Timeout, remote.DefaultTimeout.String()))
	if err != nil {
		diags.AddAttributeError(at.AtName("timeout"), "Invalid SSH timeout", err.Error())
		return Target{}, diags
	}
	cfg := remote.Config{
		Host:                  host,
		Port:                  int(Int64(m.Port, d.Port, remote.DefaultPort)),
		User:                  String(m.User, d.User, "root"),
		PrivateKey:            String(m.PrivateKey, d.PrivateKey, ""),
		Password:              String(m.Password, d.Password, ""),
		Agent:                 Bool(m.Agent, d.Agent),
		KnownHostsFile:        ExpandHome(String(m.KnownHostsFile, d.KnownHostsFile, "")),
		HostKey:               String(m.HostKey, types.StringNull(), ""),
		InsecureIgnoreHostKey: Bool(m.InsecureIgnoreHostKey, d.InsecureIgnoreHostKey),
		Timeout:               timeout,
		CommandTimeout:        commandTimeout,
		Sudo:                  t.Sudo,
	}
	if cfg.PrivateKey == "" && cfg.Password == "" && !cfg.Agent {
		diags.AddAttributeError(at, "No SSH authentication configured",
			fmt.Sprintf("Nothing to log in to %s with: set `private_key`, `password` or `agent = true` in this `ssh` block or the provider's.", cfg))
		return Target{}, diags
	}
	b := m.Bastion
	if b == nil {
		b = d.Bastion
	}
	if b != nil {
		if !known(b.Host) || b.Host.ValueString() == "" {
			diags.AddAttributeError(at.AtName("bastion").AtName("host"), "Missing bastion host", "A `bastion` block needs `host`.")
			return Target{}, diags
		}
		bc := cfg // the jump host inherits the target's credentials and known_hosts
		bc.Bastion, bc.HostKey, bc.Sudo = nil, "", false
		bc.Host = b.Host.ValueString()
		bc.Port = int(Int64(b.Port, types.Int64Null(), remote.DefaultPort))
		bc.User = String(b.User, types.StringNull(), cfg.User)
		bc.PrivateKey = String(b.PrivateKey, types.StringNull(), cfg.PrivateKey)
		bc.Password = String(b.Password, types.StringNull(), cfg.Password)
		bc.HostKey = String(b.HostKey, types.StringNull(), "")
		cfg.Bastion = &bc
	}
	t.Config = cfg
	return t, diags
}

// Warnings returns the warnings a configuration deserves (host key
// verification switched off), attached to the ssh block at.
func Warnings(m *SSHModel, d *ProviderSSHModel, at path.Path) diag.Diagnostics {
	var diags diag.Diagnostics
	if m != nil && m.InsecureIgnoreHostKey.ValueBool() {
		diags.AddAttributeWarning(at.AtName("insecure_ignore_host_key"), "Host key verification is disabled",
			fmt.Sprintf("insecure_ignore_host_key = true: the identity of %s is not checked, so anyone on the network path can "+
				"impersonate it and read everything sent, including secrets. Record its key in known_hosts or pin `host_key` instead.",
				m.Host.ValueString()))
	}
	return diags
}

// connect resolves the target and returns a Runner for it.
func connect(d *Defaults, m *SSHModel, at path.Path) (remote.Runner, Target, diag.Diagnostics) {
	var def *ProviderSSHModel
	if d != nil {
		def = d.SSH
	}
	t, diags := Resolve(m, def, at)
	if diags.HasError() {
		return nil, t, diags
	}
	if t.Local {
		return remote.NewLocalBounded(t.Sudo, t.CommandTimeout), t, diags
	}
	if d == nil || d.Pool == nil {
		diags.AddError("Provider not configured", "The homelab provider was not configured before use; this is a bug in the provider.")
		return nil, t, diags
	}
	r, err := d.Pool.Runner(t.Config)
	if err != nil {
		diags.AddAttributeError(at, "Unable to set up SSH connection to "+t.String(), err.Error())
		return nil, t, diags
	}
	return r, t, diags
}
