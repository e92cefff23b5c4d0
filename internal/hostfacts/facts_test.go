package hostfacts

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Output recorded from a Debian 12 VM with OpenZFS from bookworm-backports,
// restic 0.18.1 and an RKE2 install.
const recordedFull = `hostname=nas
effective_user=root
os_id=debian
os_version=12
os_pretty_name=Debian GNU/Linux 12 (bookworm)
kernel=6.1.0-41-amd64
architecture=x86_64
cpu_count=2
mem_total_kb=2010516
zfs=zfs-2.3.2-1~bpo12+1
restic=restic 0.18.1 compiled with go1.25.1 on linux/amd64
rke2=rke2 version v1.31.4+rke2r1 (a1b2c3d4)
`

// A Raspberry Pi running Ubuntu with none of the tools.
const recordedBare = `hostname=pi-1
os_id=ubuntu
os_version=24.04
os_pretty_name=Ubuntu 24.04.1 LTS
kernel=6.8.0-1013-raspi
architecture=aarch64
cpu_count=4
mem_total_kb=7995940
`

func TestParseFull(t *testing.T) {
	f, err := Parse([]byte(recordedFull))
	if err != nil {
		t.Fatal(err)
	}
	want := Facts{Hostname: "nas", EffectiveUser: "root", OSID: "debian", OSVersion: "12", OSPrettyName: "Debian GNU/Linux 12 (bookworm)",
		Kernel: "6.1.0-41-amd64", Architecture: "x86_64", CPUCount: 2, MemoryBytes: 2010516 * 1024,
		ZFSVersion: "2.3.2", ResticVersion: "0.18.1", RKE2Version: "v1.31.4+rke2r1"}
	if f != want {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
}

func TestParseWithoutTools(t *testing.T) {
	f, err := Parse([]byte(recordedBare))
	if err != nil {
		t.Fatal(err)
	}
	if f.ZFSVersion != "" || f.ResticVersion != "" || f.RKE2Version != "" || f.Architecture != "aarch64" || f.CPUCount != 4 {
		t.Fatalf("got %+v", f)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse([]byte("Welcome to the machine\n")); err == nil {
		t.Fatal("output without facts must be an error")
	}
	if _, err := Parse([]byte("hostname=x\nkernel=y\ncpu_count=many\n")); err == nil {
		t.Fatal("a non-numeric cpu_count must be an error")
	}
}

func TestParseDebianResticAndZFS22(t *testing.T) {
	f, err := Parse([]byte("hostname=a\nkernel=b\nzfs=zfs-2.1.11-1\nrestic=restic 0.14.0 compiled with go1.19.8 on linux/amd64\n"))
	if err != nil || f.ZFSVersion != "2.1.11" || f.ResticVersion != "0.14.0" {
		t.Fatalf("got %+v, %v", f, err)
	}
}

// The script itself runs on this machine through the local runner.
func TestGatherLocal(t *testing.T) {
	f, err := Gather(context.Background(), remote.NewLocal(false))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if f.Hostname != host || f.CPUCount != int64(runtime.NumCPU()) || f.MemoryBytes <= 0 {
		t.Fatalf("facts %+v do not match this machine (%s, %d CPUs)", f, host, runtime.NumCPU())
	}
	if runtime.GOARCH == "amd64" && f.Architecture != "x86_64" {
		t.Fatalf("architecture %q", f.Architecture)
	}
	if !strings.Contains(f.OSPrettyName, f.OSVersion) {
		t.Fatalf("os facts inconsistent: %+v", f)
	}
}
