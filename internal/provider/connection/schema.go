package connection

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/provider/validators"
)

type kind int

const (
	kString kind = iota
	kInt
	kBool
)

// attr describes one attribute once; it is rendered into every schema flavour.
type attr struct {
	name      string
	kind      kind
	desc      string
	sensitive bool
	// onlyHost marks attributes that belong to a host's own ssh {} block and
	// not to the provider's defaults.
	onlyHost bool
	strV     []validator.String
	intV     []validator.Int64
}

var sshAttrs = []attr{
	{name: "host", kind: kString, desc: "Address or DNS name of the host. In the provider's block it is the default host: resources and data sources whose `ssh` block is omitted or leaves `host` unset reach it, so a one-host homelab needs no `ssh` block per resource and imports by plain name.",
		strV: []validator.String{stringvalidator.LengthAtLeast(1)}},
	{name: "port", kind: kInt, desc: "SSH port. Defaults to the provider's `ssh.port`, then 22.", intV: validators.Port()},
	{name: "user", kind: kString, desc: "User to log in as. Defaults to the provider's `ssh.user`, then `root`. Non-root users need `sudo = true` for privileged operations."},
	{name: "private_key", kind: kString, sensitive: true, desc: "Private key (PEM or OpenSSH format, the key's content, not a path; use `file()` to read one). Passphrase-protected keys must go through `agent` instead."},
	{name: "password", kind: kString, sensitive: true, desc: "Password for password or keyboard-interactive authentication. Prefer keys."},
	{name: "agent", kind: kBool, desc: "Authenticate with the keys of the ssh-agent at `$SSH_AUTH_SOCK`."},
	{name: "known_hosts_file", kind: kString, desc: "known_hosts file that host keys are verified against. Defaults to `~/.ssh/known_hosts`. Entries for non-standard ports are written `[host]:port`; hashed entries are supported."},
	{name: "host_key", kind: kString, onlyHost: true, desc: "Pinned public host key of this host (`ssh-ed25519 AAAA...`, as in `/etc/ssh/ssh_host_ed25519_key.pub`). When set, it is used instead of `known_hosts_file`."},
	{name: "insecure_ignore_host_key", kind: kBool, desc: "Skip host key verification. Anyone between the provider and the host can then read and change everything sent, including secrets. Emits a warning."},
	{name: "sudo", kind: kBool, desc: "Run commands through `sudo -n` when `user` is not root. Sudo must not ask for a password (a `NOPASSWD` rule): a prompt fails at once instead of hanging."},
	{name: "timeout", kind: kString, desc: "How long to wait for the TCP connection and SSH handshake, as a Go duration (`30s`, `2m`). Defaults to the provider's `ssh.timeout`, then `30s`.",
		strV: []validator.String{validators.Duration()}},
	{name: "command_timeout", kind: kString, desc: "How long one command may run when the operation has no deadline of its own (refresh, plan, data sources; create, update and delete are bounded by the resource's `timeouts` instead), as a Go duration. A command that does not answer in time (a hung disk, a suspended pool, a frozen host) fails the operation with an error that keeps the state. Defaults to the provider's `ssh.command_timeout`, then `5m`.",
		strV: []validator.String{validators.Duration()}},
	{name: "local", kind: kBool, onlyHost: true, desc: "Run commands on the machine Terraform runs on, without SSH. Requires `host = \"localhost\"`; `sudo` still applies."},
}

var bastionAttrs = []attr{
	{name: "host", kind: kString, desc: "Address or DNS name of the jump host.", strV: []validator.String{stringvalidator.LengthAtLeast(1)}},
	{name: "port", kind: kInt, desc: "SSH port of the jump host. Defaults to 22.", intV: validators.Port()},
	{name: "user", kind: kString, desc: "User on the jump host. Defaults to the target's user."},
	{name: "private_key", kind: kString, sensitive: true, desc: "Private key for the jump host. Defaults to the target's key."},
	{name: "password", kind: kString, sensitive: true, desc: "Password for the jump host. Defaults to the target's password."},
	{name: "host_key", kind: kString, desc: "Pinned public host key of the jump host. Defaults to verifying it against the target's `known_hosts_file`."},
}

const (
	sshBlockDesc     = "How to reach the host: over SSH, or on the local machine with `local = true`. Unset attributes fall back to the provider's `ssh` block; without this block, the provider's default `host` is used."
	providerSSHDesc  = "Defaults for every `ssh` block of the provider's resources and data sources. Host keys are verified unless `insecure_ignore_host_key` is set."
	bastionBlockDesc = "Jump host the connection is made through, like OpenSSH's `ProxyJump`. Its connection is pooled too."
)

func pick(attrs []attr, host bool) []attr {
	var out []attr
	for _, a := range attrs {
		if a.onlyHost && !host {
			continue
		}
		out = append(out, a)
	}
	return out
}

// RequiredResourceBlock is ResourceBlock for hosts that must be named in the
// resource itself (the nodes of a cluster, whose identity is their host).
func RequiredResourceBlock() rschema.SingleNestedBlock {
	b := ResourceBlock()
	b.Validators = []validator.Object{objectvalidator.IsRequired()}
	return b
}

// ResourceBlock is the ssh {} block of a resource. It may be omitted: the
// host then comes from the provider's ssh block (its default host).
func ResourceBlock() rschema.SingleNestedBlock {
	attrs := map[string]rschema.Attribute{}
	for _, a := range pick(sshAttrs, true) {
		attrs[a.name] = resourceAttr(a, false)
	}
	bastion := map[string]rschema.Attribute{}
	for _, a := range bastionAttrs {
		bastion[a.name] = resourceAttr(a, false)
	}
	return rschema.SingleNestedBlock{
		Description: sshBlockDesc, MarkdownDescription: sshBlockDesc,
		Attributes: attrs,
		Blocks: map[string]rschema.Block{"bastion": rschema.SingleNestedBlock{
			Description: bastionBlockDesc, MarkdownDescription: bastionBlockDesc, Attributes: bastion}},
	}
}

func resourceAttr(a attr, required bool) rschema.Attribute {
	switch a.kind {
	case kInt:
		return rschema.Int64Attribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive, Validators: a.intV}
	case kBool:
		return rschema.BoolAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive}
	}
	return rschema.StringAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive, Validators: a.strV}
}

// DataSourceBlock is the ssh {} block of a data source. It may be omitted:
// the host then comes from the provider's ssh block (its default host).
func DataSourceBlock() dschema.SingleNestedBlock {
	attrs := map[string]dschema.Attribute{}
	for _, a := range pick(sshAttrs, true) {
		attrs[a.name] = dataSourceAttr(a, false)
	}
	bastion := map[string]dschema.Attribute{}
	for _, a := range bastionAttrs {
		bastion[a.name] = dataSourceAttr(a, false)
	}
	return dschema.SingleNestedBlock{
		Description: sshBlockDesc, MarkdownDescription: sshBlockDesc,
		Attributes: attrs,
		Blocks: map[string]dschema.Block{"bastion": dschema.SingleNestedBlock{
			Description: bastionBlockDesc, MarkdownDescription: bastionBlockDesc, Attributes: bastion}},
	}
}

func dataSourceAttr(a attr, required bool) dschema.Attribute {
	switch a.kind {
	case kInt:
		return dschema.Int64Attribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive, Validators: a.intV}
	case kBool:
		return dschema.BoolAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive}
	}
	return dschema.StringAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: !required, Required: required, Sensitive: a.sensitive, Validators: a.strV}
}

// ProviderBlock is the provider's ssh {} block of defaults.
func ProviderBlock() pschema.SingleNestedBlock {
	attrs := map[string]pschema.Attribute{}
	for _, a := range pick(sshAttrs, false) {
		attrs[a.name] = providerAttr(a)
	}
	bastion := map[string]pschema.Attribute{}
	for _, a := range bastionAttrs {
		bastion[a.name] = providerAttr(a)
	}
	return pschema.SingleNestedBlock{
		Description: providerSSHDesc, MarkdownDescription: providerSSHDesc,
		Attributes: attrs,
		Blocks: map[string]pschema.Block{"bastion": pschema.SingleNestedBlock{
			Description: bastionBlockDesc, MarkdownDescription: bastionBlockDesc, Attributes: bastion}},
	}
}

func providerAttr(a attr) pschema.Attribute {
	switch a.kind {
	case kInt:
		return pschema.Int64Attribute{Description: a.desc, MarkdownDescription: a.desc, Optional: true, Sensitive: a.sensitive, Validators: a.intV}
	case kBool:
		return pschema.BoolAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: true, Sensitive: a.sensitive}
	}
	return pschema.StringAttribute{Description: a.desc, MarkdownDescription: a.desc, Optional: true, Sensitive: a.sensitive, Validators: a.strV}
}

// OptionalResourceBlock is a resource's ssh block where it may be omitted
// (restic then runs locally; a netboot server may be a local directory).
func OptionalResourceBlock(desc string) rschema.SingleNestedBlock {
	b := ResourceBlock()
	b.Validators = nil
	b.Description, b.MarkdownDescription = desc, desc
	return b
}

// OptionalDataSourceBlock is a data source's ssh block where it may be
// omitted (restic then runs locally).
func OptionalDataSourceBlock(desc string) dschema.SingleNestedBlock {
	b := DataSourceBlock()
	b.Validators = nil
	b.Description, b.MarkdownDescription = desc, desc
	return b
}
