package pxe

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRenderGeneratedIPXEAndPxelinux(t *testing.T) {
	files, err := Render(Config{
		MAC:     "52-54-00-AB-CD-EF",
		Root:    "/srv/tftp",
		Kernel:  "./debian//linux",
		Initrd:  []string{"debian/initrd.gz", "https://boot.example.net/fw/firmware.cpio.gz?v=2"},
		Cmdline: "console=ttyS0,115200n8 auto=true priority=critical",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "/srv/tftp/52-54-00-ab-cd-ef.ipxe", Content: `#!ipxe
# Managed by Terraform (homelab provider); local changes are overwritten.
imgfree
kernel debian/linux initrd=initrd.gz initrd=firmware.cpio.gz console=ttyS0,115200n8 auto=true priority=critical BOOTIF=01-52-54-00-ab-cd-ef
initrd --name initrd.gz debian/initrd.gz
initrd --name firmware.cpio.gz https://boot.example.net/fw/firmware.cpio.gz?v=2
boot
`},
		{Path: "/srv/tftp/pxelinux.cfg/01-52-54-00-ab-cd-ef", Content: `# Managed by Terraform (homelab provider); local changes are overwritten.
DEFAULT homelab
LABEL homelab
  KERNEL debian/linux
  INITRD debian/initrd.gz,https://boot.example.net/fw/firmware.cpio.gz?v=2
  APPEND console=ttyS0,115200n8 auto=true priority=critical
  IPAPPEND 2
`},
	}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Render =\n%#v\nwant\n%#v", files, want)
	}
	if got := Paths(files); !reflect.DeepEqual(got, []string{want[0].Path, want[1].Path}) {
		t.Fatalf("Paths = %q", got)
	}
}

func TestRenderMinimalKernelOnly(t *testing.T) {
	files, err := Render(Config{MAC: "aa:bb:cc:dd:ee:f0", Root: "/", Kernel: "http://10.0.0.1/memtest.efi"})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "/aa-bb-cc-dd-ee-f0.ipxe", Content: "#!ipxe\n" + Header + "\nimgfree\n" +
			"kernel http://10.0.0.1/memtest.efi BOOTIF=01-aa-bb-cc-dd-ee-f0\nboot\n"},
		{Path: "/pxelinux.cfg/01-aa-bb-cc-dd-ee-f0", Content: Header + "\n" +
			"DEFAULT homelab\nLABEL homelab\n  KERNEL http://10.0.0.1/memtest.efi\n  IPAPPEND 2\n"},
	}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Render =\n%#v\nwant\n%#v", files, want)
	}
}

func TestRenderKeepsAnExplicitBootIF(t *testing.T) {
	files, err := Render(Config{MAC: "aa:bb:cc:dd:ee:f0", Root: "/srv/tftp", Kernel: "vmlinuz",
		Initrd: []string{"initrd.img"}, Cmdline: "  ip=dhcp BOOTIF=01-11-22-33-44-55-66  "})
	if err != nil {
		t.Fatal(err)
	}
	if want := "kernel vmlinuz initrd=initrd.img ip=dhcp BOOTIF=01-11-22-33-44-55-66\n"; !strings.Contains(files[0].Content, want) {
		t.Errorf("iPXE script %q lacks %q", files[0].Content, want)
	}
	if strings.Contains(files[1].Content, "IPAPPEND") || !strings.Contains(files[1].Content, "  APPEND ip=dhcp BOOTIF=01-11-22-33-44-55-66\n") {
		t.Errorf("pxelinux file %q must keep the given BOOTIF and not add IPAPPEND 2", files[1].Content)
	}
}

func TestRenderCustomIPXEScriptVerbatim(t *testing.T) {
	script := "#!ipxe\nchain http://matchbox.lan/boot.ipxe?mac=${net0/mac}"
	files, err := Render(Config{MAC: "AABBCCDDEEF0", Root: "/var/lib/tftpboot", IPXEScript: script})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{Path: "/var/lib/tftpboot/aa-bb-cc-dd-ee-f0.ipxe", Content: script}}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Render = %#v, want %#v", files, want)
	}
}

func TestRenderRaspberryPi(t *testing.T) {
	files, err := Render(Config{Root: "/srv/tftp", RaspberryPi: &RaspberryPi{
		Serial:  "100000001A2B3C4D",
		Cmdline: "console=serial0,115200 root=/dev/nfs nfsroot=10.0.0.1:/pi,vers=4 rw ip=dhcp",
		Config:  "arm_64bit=1\nenable_uart=1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "/srv/tftp/1a2b3c4d/cmdline.txt", Content: "console=serial0,115200 root=/dev/nfs nfsroot=10.0.0.1:/pi,vers=4 rw ip=dhcp\n"},
		{Path: "/srv/tftp/1a2b3c4d/config.txt", Content: "arm_64bit=1\nenable_uart=1\n"},
	}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("Render = %#v, want %#v", files, want)
	}
	// A MAC is optional for a Pi, an empty config.txt stays empty and a
	// config already ending in a newline gets no second one.
	files, err = Render(Config{MAC: "dc:a6:32:01:02:03", Root: "/srv/tftp", RaspberryPi: &RaspberryPi{Serial: "1a2b3c4d"}})
	if err != nil || files[0].Content != "\n" || files[1].Content != "" {
		t.Fatalf("Render = %#v, %v", files, err)
	}
	files, _ = Render(Config{Root: "/srv/tftp", RaspberryPi: &RaspberryPi{Serial: "1a2b3c4d", Config: "a=1\n"}})
	if files[1].Content != "a=1\n" {
		t.Fatalf("config.txt = %q", files[1].Content)
	}
}

func TestValidationNamesTheBadValue(t *testing.T) {
	ok := Config{MAC: "aa:bb:cc:dd:ee:f0", Root: "/srv/tftp", Kernel: "vmlinuz"}
	pi := &RaspberryPi{Serial: "1a2b3c4d"}
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		attr   string
		substr string
	}{
		{"root missing", func(c *Config) { c.Root = "" }, "root", "required"},
		{"root relative", func(c *Config) { c.Root = "srv/tftp" }, "root", `"srv/tftp": must be an absolute path`},
		{"root unclean", func(c *Config) { c.Root = "/srv/tftp/" }, "root", `"/srv/tftp/": must be a clean path ("/srv/tftp")`},
		{"root dotdot", func(c *Config) { c.Root = "/srv/../tftp" }, "root", `"/srv/../tftp"`},
		{"root newline", func(c *Config) { c.Root = "/srv/tftp\nx" }, "root", "control"},
		{"mac missing", func(c *Config) { c.MAC = "" }, "mac", "required"},
		{"mac bad", func(c *Config) { c.MAC = "aa:bb:cc:dd:ee" }, "mac", `"aa:bb:cc:dd:ee"`},
		{"no layout", func(c *Config) { c.Kernel = "" }, "kernel", "required unless ipxe_script or raspberrypi"},
		{"initrd without kernel", func(c *Config) { c.Kernel, c.Initrd = "", []string{"initrd.img"} }, "kernel", "required"},
		{"kernel escapes", func(c *Config) { c.Kernel = "../etc/shadow" }, "kernel", `"../etc/shadow": escapes root`},
		{"kernel escapes after clean", func(c *Config) { c.Kernel = "boot/../../x" }, "kernel", "escapes root"},
		{"kernel absolute", func(c *Config) { c.Kernel = "/srv/tftp/vmlinuz" }, "kernel", "relative to root"},
		{"kernel is root", func(c *Config) { c.Kernel = "./" }, "kernel", "root itself"},
		{"kernel space", func(c *Config) { c.Kernel = "my kernel" }, "kernel", "spaces"},
		{"kernel ftp", func(c *Config) { c.Kernel = "ftp://host/vmlinuz" }, "kernel", "http:// or https://"},
		{"kernel no host", func(c *Config) { c.Kernel = "http:///vmlinuz" }, "kernel", "no host"},
		{"initrd escapes", func(c *Config) { c.Initrd = []string{"ok.img", ".."} }, "initrd[1]", `"..": escapes root`},
		{"initrd empty", func(c *Config) { c.Initrd = []string{""} }, "initrd[0]", "empty"},
		{"initrd comma", func(c *Config) { c.Initrd = []string{"a,b.img"} }, "initrd[0]", "comma"},
		{"initrd url without file", func(c *Config) { c.Initrd = []string{"http://host/"} }, "initrd[0]", "file name"},
		{"initrd duplicate name", func(c *Config) { c.Initrd = []string{"a/initrd.img", "b/initrd.img"} }, "initrd[1]", `initrd[0] "a/initrd.img"`},
		{"initrd named like kernel", func(c *Config) { c.Initrd = []string{"other/vmlinuz"} }, "initrd[0]", "same file name"},
		{"cmdline newline", func(c *Config) { c.Cmdline = "quiet\ninit=/bin/sh" }, "cmdline", `"quiet\ninit=/bin/sh": must be one line`},
		{"script without shebang", func(c *Config) { c.Kernel, c.IPXEScript = "", "chain boot.ipxe" }, "ipxe_script", "#!ipxe"},
		{"script and kernel", func(c *Config) { c.IPXEScript = "#!ipxe\nboot" }, "ipxe_script", "cannot be combined"},
		{"pi and kernel", func(c *Config) { c.RaspberryPi = pi }, "raspberrypi", "cannot be combined"},
		{"pi and script", func(c *Config) { c.Kernel, c.IPXEScript, c.RaspberryPi = "", "#!ipxe", pi }, "raspberrypi", "ipxe_script"},
		{"pi serial", func(c *Config) { c.Kernel, c.RaspberryPi = "", &RaspberryPi{Serial: "xyz"} }, "raspberrypi.serial", `"xyz"`},
		{"pi cmdline newline", func(c *Config) { c.Kernel, c.RaspberryPi = "", &RaspberryPi{Serial: "1a2b3c4d", Cmdline: "a\nb"} }, "cmdline", "one line"},
		{"pi bad mac", func(c *Config) { c.Kernel, c.MAC, c.RaspberryPi = "", "nope", pi }, "mac", `"nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("want an error")
			}
			if _, rerr := Render(c); rerr == nil || rerr.Error() != err.Error() {
				t.Fatalf("Render error %v differs from Validate error %v", rerr, err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Attribute != tc.attr {
				t.Fatalf("want a ValidationError for %s, got %v", tc.attr, err)
			}
			if !strings.Contains(err.Error(), tc.attr) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("error %q should mention %q and %q", err, tc.attr, tc.substr)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	err := Config{MAC: "x", Root: "tftp", Kernel: "../k", Cmdline: "a\nb"}.Validate()
	var attrs []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		attrs = append(attrs, e.(*ValidationError).Attribute)
	}
	if want := []string{"root", "mac", "kernel", "cmdline"}; !reflect.DeepEqual(attrs, want) {
		t.Fatalf("attributes %q, want %q (error: %v)", attrs, want, err)
	}
}
