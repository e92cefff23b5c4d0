package pxe

import (
	"path"
	"strings"
)

// File is one file a Config owns on the netboot server.
type File struct {
	// Path is absolute, under Config.Root.
	Path string
	// Content is the file's full content.
	Content string
}

// Header is the comment the generated iPXE and pxelinux files start with
// (after "#!ipxe").
const Header = "# Managed by Terraform (homelab provider); local changes are overwritten."

// pxelinuxLabel is the single LABEL of a generated pxelinux file.
const pxelinuxLabel = "homelab"

// Render validates c and returns the files it owns, in a fixed order:
// the iPXE script then the pxelinux file, the custom iPXE script alone, or
// the Pi's cmdline.txt then config.txt. See the package documentation for
// the formats. Errors are as Validate's.
func Render(c Config) ([]File, error) {
	n, err := c.normalize()
	if err != nil {
		return nil, err
	}
	switch {
	case n.pi != nil:
		dir := path.Join(n.root, n.pi.Serial)
		cfg := n.pi.Config
		if cfg != "" && !strings.HasSuffix(cfg, "\n") {
			cfg += "\n"
		}
		return []File{
			{Path: path.Join(dir, "cmdline.txt"), Content: n.pi.Cmdline + "\n"},
			{Path: path.Join(dir, "config.txt"), Content: cfg},
		}, nil
	case n.script != "":
		return []File{{Path: ipxePath(n.root, n.mac), Content: n.script}}, nil
	}
	return []File{
		{Path: ipxePath(n.root, n.mac), Content: renderIPXE(n)},
		{Path: pxelinuxPath(n.root, n.mac), Content: renderPxelinux(n)},
	}, nil
}

// Paths returns the paths of files, in order.
func Paths(files []File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

// hexhyp writes a normalized MAC as iPXE's ${netX/mac:hexhyp} does.
func hexhyp(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

func ipxePath(root, mac string) string { return path.Join(root, hexhyp(mac)+".ipxe") }

func pxelinuxPath(root, mac string) string {
	return path.Join(root, "pxelinux.cfg", "01-"+hexhyp(mac))
}

// hasBootIF reports whether the command line already names the boot interface.
func hasBootIF(cmdline string) bool {
	for _, w := range strings.Fields(cmdline) {
		if strings.HasPrefix(w, "BOOTIF=") {
			return true
		}
	}
	return false
}

func renderIPXE(n normalized) string {
	args := []string{"kernel", n.kernel}
	for _, name := range n.names {
		args = append(args, "initrd="+name)
	}
	if c := strings.TrimSpace(n.cmdline); c != "" {
		args = append(args, c)
	}
	if !hasBootIF(n.cmdline) {
		args = append(args, "BOOTIF=01-"+hexhyp(n.mac))
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n" + Header + "\nimgfree\n")
	b.WriteString(strings.Join(args, " ") + "\n")
	for i, p := range n.initrds {
		b.WriteString("initrd --name " + n.names[i] + " " + p + "\n")
	}
	b.WriteString("boot\n")
	return b.String()
}

func renderPxelinux(n normalized) string {
	var b strings.Builder
	b.WriteString(Header + "\n")
	b.WriteString("DEFAULT " + pxelinuxLabel + "\n")
	b.WriteString("LABEL " + pxelinuxLabel + "\n")
	b.WriteString("  KERNEL " + n.kernel + "\n")
	if len(n.initrds) > 0 {
		b.WriteString("  INITRD " + strings.Join(n.initrds, ",") + "\n")
	}
	if c := strings.TrimSpace(n.cmdline); c != "" {
		b.WriteString("  APPEND " + c + "\n")
	}
	if !hasBootIF(n.cmdline) {
		b.WriteString("  IPAPPEND 2\n")
	}
	return b.String()
}
