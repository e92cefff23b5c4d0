package pxe

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"
)

// Config is one node's network-boot configuration. Exactly one layout is
// used: the generated iPXE script and pxelinux file (Kernel set), a custom
// iPXE script (IPXEScript set) or a Raspberry Pi directory (RaspberryPi set).
type Config struct {
	// MAC is the booting interface's address, in any notation NormalizeMAC
	// accepts. Required except for the Raspberry Pi layout, where it is only
	// checked when set.
	MAC string
	// Root is the absolute, clean directory the netboot server serves.
	Root string
	// Kernel is a path relative to Root or an http(s):// URL.
	Kernel string
	// Initrd lists initrds, each like Kernel, in load order.
	Initrd []string
	// Cmdline is the kernel command line (one line).
	Cmdline string
	// IPXEScript, when set, is written verbatim instead of the generated iPXE
	// script, and no pxelinux file is written.
	IPXEScript string
	// RaspberryPi selects the Raspberry Pi layout.
	RaspberryPi *RaspberryPi
}

// RaspberryPi is the Raspberry Pi network-boot layout.
type RaspberryPi struct {
	// Serial is the Pi's serial number; see NormalizePiSerial.
	Serial string
	// Cmdline is the content of cmdline.txt (one line).
	Cmdline string
	// Config is the content of config.txt.
	Config string
}

// ValidationError reports a configuration value that cannot be used.
// Attribute names the value the way the homelab_node resource does:
// "mac", "root", "kernel", "initrd[1]", "cmdline", "ipxe_script",
// "raspberrypi", "raspberrypi.serial". A Raspberry Pi's Cmdline is reported
// as "cmdline", the resource's one command line attribute.
type ValidationError struct {
	Attribute string
	Value     string
	Reason    string
}

func (e *ValidationError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Attribute, e.Reason)
	}
	return fmt.Sprintf("%s %s: %s", e.Attribute, strconv.Quote(shorten(e.Value, 200)), e.Reason)
}

// shorten cuts long values (whole scripts) down for messages.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Validate checks c without rendering it. It returns nil or the errors.Join
// of one *ValidationError per problem found.
func (c Config) Validate() error {
	_, err := c.normalize()
	return err
}

// normalized is a validated Config in the form the renderers write.
type normalized struct {
	root    string
	mac     string // aa:bb:cc:dd:ee:ff, "" only for a Pi without MAC
	kernel  string
	initrds []string
	names   []string // iPXE image names of initrds
	cmdline string
	script  string
	pi      *RaspberryPi // Serial normalized
}

func (c Config) normalize() (normalized, error) {
	var errs []error
	bad := func(attr, value, reason string) {
		errs = append(errs, &ValidationError{Attribute: attr, Value: value, Reason: reason})
	}
	n := normalized{root: c.Root, cmdline: c.Cmdline, script: c.IPXEScript}

	switch {
	case c.Root == "":
		bad("root", "", "the netboot server's directory is required")
	case !path.IsAbs(c.Root):
		bad("root", c.Root, "must be an absolute path")
	case hasControl(c.Root):
		bad("root", c.Root, "must not contain control characters such as newlines")
	case path.Clean(c.Root) != c.Root:
		bad("root", c.Root, fmt.Sprintf("must be a clean path (%q)", path.Clean(c.Root)))
	}

	generated := c.Kernel != "" || len(c.Initrd) > 0 || c.Cmdline != ""
	switch {
	case c.RaspberryPi != nil && c.IPXEScript != "":
		bad("raspberrypi", "", "cannot be combined with ipxe_script: choose one boot layout")
	case c.RaspberryPi != nil && generated:
		bad("raspberrypi", "", "cannot be combined with kernel, initrd or a kernel command line outside it: the Pi boots what its cmdline.txt and config.txt say")
	case c.IPXEScript != "" && generated:
		bad("ipxe_script", "", "cannot be combined with kernel, initrd or cmdline: the script replaces the generated one")
	}

	if c.RaspberryPi != nil {
		pi := *c.RaspberryPi
		serial, err := NormalizePiSerial(pi.Serial)
		if err != nil {
			errs = append(errs, err)
		}
		pi.Serial = serial
		if hasControl(pi.Cmdline) {
			bad("cmdline", pi.Cmdline, "must be one line without control characters (cmdline.txt is read as a single line)")
		}
		n.pi = &pi
	}

	switch {
	case c.MAC == "" && c.RaspberryPi == nil:
		bad("mac", "", "the booting interface's MAC address is required (only the Raspberry Pi layout does without)")
	case c.MAC != "":
		mac, err := NormalizeMAC(c.MAC)
		if err != nil {
			errs = append(errs, err)
		}
		n.mac = mac
	}

	switch {
	case c.RaspberryPi != nil:
	case c.IPXEScript != "":
		if !strings.HasPrefix(c.IPXEScript, "#!ipxe") && !strings.HasPrefix(c.IPXEScript, "#!gpxe") {
			bad("ipxe_script", c.IPXEScript, `must start with "#!ipxe": iPXE runs nothing else as a script`)
		}
	case c.Kernel == "":
		bad("kernel", "", "is required unless ipxe_script or raspberrypi is set")
	default:
		k, err := bootPath("kernel", c.Kernel)
		if err != nil {
			errs = append(errs, err)
		}
		n.kernel = k
		kernelName := imageName(k)
		seen := map[string]int{}
		for i, v := range c.Initrd {
			attr := fmt.Sprintf("initrd[%d]", i)
			p, err := bootPath(attr, v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if strings.Contains(p, ",") {
				bad(attr, v, "must not contain a comma (pxelinux separates initrds with commas)")
				continue
			}
			name := imageName(p)
			switch j, dup := seen[name]; {
			case name == "" || name == "." || name == "/":
				bad(attr, v, "must end in a file name (iPXE names the initrd after it)")
				continue
			case dup:
				bad(attr, v, fmt.Sprintf("has the file name %q of initrd[%d] %q; iPXE loads each initrd under its file name, which must be unique", name, j, c.Initrd[j]))
				continue
			case name == kernelName:
				bad(attr, v, fmt.Sprintf("has the same file name %q as the kernel; iPXE would replace one image with the other", name))
				continue
			}
			seen[name] = i
			n.initrds = append(n.initrds, p)
			n.names = append(n.names, name)
		}
		if hasControl(c.Cmdline) {
			bad("cmdline", c.Cmdline, "must be one line without control characters such as newlines")
		}
	}
	if len(errs) > 0 {
		return normalized{}, errors.Join(errs...)
	}
	return n, nil
}

// bootPath checks a kernel or initrd reference and returns it as written
// into the boot files: a cleaned relative path or the URL unchanged.
func bootPath(attr, v string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &ValidationError{Attribute: attr, Value: v, Reason: reason}
	}
	switch {
	case v == "":
		return bad("is empty")
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return bad("must not contain spaces or control characters: iPXE and pxelinux split their lines on blanks")
	case strings.Contains(v, "://"):
		u, err := url.Parse(v)
		if err != nil {
			return bad("is not a valid URL: " + err.Error())
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
			return bad("must be a path relative to root or an http:// or https:// URL")
		}
		if u.Host == "" {
			return bad("has no host")
		}
		return v, nil
	case strings.HasPrefix(v, "/"):
		return bad(`must be relative to root (e.g. "debian/linux", not an absolute path) or an http(s):// URL`)
	}
	p := path.Clean(v)
	switch {
	case p == ".":
		return bad("names root itself, not a file")
	case p == ".." || strings.HasPrefix(p, "../"):
		return bad("escapes root: a relative path must stay inside the served directory")
	}
	return p, nil
}

// imageName is the file name iPXE gives an image fetched from p.
func imageName(p string) string {
	if strings.Contains(p, "://") {
		if u, err := url.Parse(p); err == nil {
			p = u.Path
		}
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return ""
	}
	return path.Base(p)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
