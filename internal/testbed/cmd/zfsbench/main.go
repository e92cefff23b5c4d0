// Command zfsbench measures what homelab_zfs_dataset costs against the real
// OpenZFS VM: for N datasets, the time, SSH connections and commands of an
// apply that creates them and of a plan that refreshes them with nothing to
// change, next to the floor for the same work (N zfs create in one SSH
// session; one recursive zfs get). Connections and commands are counted from
// the provider's own debug log.
//
//	go run ./internal/testbed/cmd/zfsbench [-n 10,100,500]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

func main() {
	sizes := flag.String("n", "10,100,500", "comma-separated dataset counts")
	flag.Parse()
	if err := run(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "zfsbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	vm        *testbed.ZFSVM
	tofuPath  string
	cliConfig string
	dir       string
}

func run(sizes string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "zfsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	tofu, err := testbed.EnsureOpenTofu(ctx, logf)
	if err != nil {
		return err
	}
	bin, err := testbed.BuildProvider(ctx, filepath.Join(dir, "plugins"))
	if err != nil {
		return err
	}
	b := &bench{tofuPath: tofu, dir: dir, cliConfig: filepath.Join(dir, "tofurc")}
	if err := testbed.WriteCLIConfig(b.cliConfig, filepath.Dir(bin)); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "booting the OpenZFS VM...")
	b.vm, err = testbed.StartZFSVM(ctx, filepath.Join(dir, "vm"), testbed.ZFSVMOptions{Disks: 2, DiskSize: "4G", Logf: logf})
	if err != nil {
		return err
	}
	defer b.vm.Stop()

	fmt.Printf("%6s | %-32s | %-22s | %-32s | %-18s\n", "N", "apply (create N)", "N x zfs create, 1 ssh", "plan (refresh N, no change)", "1 recursive zfs get")
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		if err := b.one(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

type measured struct {
	elapsed     time.Duration
	connections int
	commands    int
}

func (m measured) String() string {
	return fmt.Sprintf("%7.1fs %3d conn %5d cmds", m.elapsed.Seconds(), m.connections, m.commands)
}

func (b *bench) one(ctx context.Context, n int) error {
	if err := b.vm.Reset(ctx); err != nil {
		return err
	}
	if out, err := b.vm.Run(ctx, fmt.Sprintf("zpool create -f tank %s", strings.Join(b.vm.Disks, " "))); err != nil {
		return fmt.Errorf("creating the pool: %v: %s", err, out)
	}
	work := filepath.Join(b.dir, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	config := fmt.Sprintf(`terraform {
  required_providers {
    homelab = { source = "terraform-homelab/homelab" }
  }
}
provider "homelab" {
  ssh {
    private_key      = file(%q)
    known_hosts_file = %q
  }
}
resource "homelab_zfs_dataset" "d" {
  count = %d
  ssh {
    host = %q
    port = %d
  }
  name       = "tank/ds${count.index}"
  properties = { compression = "zstd", "homelab:index" = tostring(count.index) }
}
`, b.vm.KeyPath, b.vm.KnownHostsPath, n, b.vm.SSHHost, b.vm.SSHPort)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(config), 0o644); err != nil {
		return err
	}
	apply, err := b.tofu(ctx, work, "apply", "-auto-approve", "-input=false")
	if err != nil {
		return err
	}
	plan, err := b.tofu(ctx, work, "plan", "-input=false", "-detailed-exitcode")
	if err != nil {
		return fmt.Errorf("the plan after apply is not empty or failed: %w", err)
	}
	start := time.Now()
	if out, err := b.vm.Run(ctx, fmt.Sprintf(`i=0; while [ $i -lt %d ]; do zfs create -o compression=zstd -o homelab:index=$i tank/base$i || exit 1; i=$((i+1)); done`, n)); err != nil {
		return fmt.Errorf("baseline creates: %v: %s", err, out)
	}
	creates := time.Since(start)
	start = time.Now()
	if out, err := b.vm.Run(ctx, "zfs get -j -p -r -t filesystem,volume all tank >/dev/null"); err != nil {
		return fmt.Errorf("baseline get: %v: %s", err, out)
	}
	get := time.Since(start)
	fmt.Printf("%6d | %s | %7.1fs (x%4.1f)       | %s | %6.1fs (x%4.1f)\n", n,
		apply, creates.Seconds(), apply.elapsed.Seconds()/creates.Seconds(),
		plan, get.Seconds(), plan.elapsed.Seconds()/get.Seconds())
	return nil
}

// tofu runs one OpenTofu command with the provider's debug log captured,
// and counts the connections it opened and the commands it ran.
func (b *bench) tofu(ctx context.Context, dir string, args ...string) (measured, error) {
	logPath := filepath.Join(dir, args[0]+".log")
	_ = os.Remove(logPath)
	cmd := exec.CommandContext(ctx, b.tofuPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+b.cliConfig, "TF_IN_AUTOMATION=1",
		"TF_LOG_PROVIDER=DEBUG", "TF_LOG_PATH="+logPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := measured{elapsed: time.Since(start)}
	if err != nil {
		return m, fmt.Errorf("tofu %s: %w\n%s", args[0], err, out.String())
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		return m, err
	}
	m.connections = bytes.Count(log, []byte("SSH connection opened"))
	m.commands = bytes.Count(log, []byte("running command over SSH"))
	return m, nil
}
