package acctest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

var sharedVM sharedPeer[*testbed.ZFSVM]

// SharedZFSVMDisks is the number of data disks of the shared ZFS VM.
const SharedZFSVMDisks = 13

// ZFSVM returns the package's OpenZFS VM, booting it on first use, reset to
// clean disks and no pools. It has 13 data disks: enough for the layout of
// the users' storage box (raidz2 of 8, a mirrored SLOG, an L2ARC), a USB
// backup disk and a replacement disk. The test holds the VM until it ends: tests that
// use it do not run in parallel with each other.
func ZFSVM(t *testing.T) *testbed.ZFSVM {
	t.Helper()
	vm := sharedVM.acquire(t, "zfsvm", func(dir string, logf func(string, ...any)) (*testbed.ZFSVM, func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		vm, err := testbed.StartZFSVM(ctx, dir, testbed.ZFSVMOptions{Disks: SharedZFSVMDisks, Logf: logf})
		if err != nil {
			return nil, nil, err
		}
		return vm, func() { _ = vm.Stop() }, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := vm.Reset(ctx); err != nil {
		t.Fatalf("resetting the OpenZFS VM: %v", err)
	}
	return vm
}

// VMRun runs a shell script as root on the VM, failing the test on error.
func VMRun(t *testing.T, vm *testbed.ZFSVM, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := vm.Run(ctx, script)
	if err != nil {
		t.Fatalf("on the VM: %s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(out)
}

// VMProvider renders a provider block that reaches the VM as root with its
// key, verifying its host key.
func VMProvider(vm *testbed.ZFSVM) string {
	return fmt.Sprintf(`
provider "homelab" {
  ssh {
    private_key      = file(%q)
    known_hosts_file = %q
  }
}
`, vm.KeyPath, vm.KnownHostsPath)
}

// VMSSH renders the ssh block of a resource on the VM.
func VMSSH(vm *testbed.ZFSVM) string {
	return fmt.Sprintf(`ssh {
    host = %q
    port = %d
  }`, vm.SSHHost, vm.SSHPort)
}

// VMUpload copies a local file onto the VM (as root, atomically).
func VMUpload(t *testing.T, vm *testbed.ZFSVM, local, remotePath string, mode os.FileMode) {
	t.Helper()
	key, err := os.ReadFile(vm.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	p := remote.NewPool(nil)
	defer p.Close()
	r, err := p.Runner(remote.Config{Host: vm.SSHHost, Port: vm.SSHPort, User: "root", PrivateKey: string(key),
		KnownHostsFile: vm.KnownHostsPath, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.Upload(ctx, remotePath, f, mode); err != nil {
		t.Fatalf("uploading %s to the VM: %v", local, err)
	}
}
