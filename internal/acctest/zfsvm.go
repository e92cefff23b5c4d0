package acctest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

var sharedVM struct {
	once sync.Once
	mu   sync.Mutex // one test at a time uses the VM
	vm   *testbed.ZFSVM
	err  error
}

// ZFSVM returns the package's OpenZFS VM, booting it on first use, reset to
// clean disks and no pools. The test holds the VM until it ends: tests that
// use it do not run in parallel with each other.
func ZFSVM(t *testing.T) *testbed.ZFSVM {
	t.Helper()
	skipUnlessAcceptance(t)
	sharedVM.once.Do(func() {
		dir, err := os.MkdirTemp("", "homelab-acc-zfsvm-")
		if err != nil {
			sharedVM.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		start := time.Now()
		sharedVM.vm, sharedVM.err = testbed.StartZFSVM(ctx, dir, testbed.ZFSVMOptions{
			Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "zfsvm: "+f+"\n", a...) },
		})
		if sharedVM.err == nil {
			fmt.Fprintf(os.Stderr, "zfsvm: booted in %s\n", time.Since(start).Round(time.Second))
			atExit(func() { _ = sharedVM.vm.Stop(); _ = os.RemoveAll(dir) })
		}
	})
	if sharedVM.err != nil {
		t.Fatalf("the OpenZFS VM could not start: %v", sharedVM.err)
	}
	sharedVM.mu.Lock()
	t.Cleanup(sharedVM.mu.Unlock)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sharedVM.vm.Reset(ctx); err != nil {
		t.Fatalf("resetting the OpenZFS VM: %v", err)
	}
	return sharedVM.vm
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
