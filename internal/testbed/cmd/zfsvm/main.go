// Command zfsvm builds and boots the testbed's OpenZFS VM by hand.
//
// Usage:
//
//	go run ./internal/testbed/cmd/zfsvm build
//	go run ./internal/testbed/cmd/zfsvm boot [-disks N] [-disk-size 1G] [-memory MB] [-cpus N] [-dir DIR]
//	go run ./internal/testbed/cmd/zfsvm record [-out DIR]
//
// build makes sure the VM image is cached (a cold build takes about five
// minutes; CI can run it ahead of the tests) and prints its directory.
// boot starts one VM in the foreground, prints how to reach it and stops it
// on Ctrl-C. record boots a VM, builds pools in known states and saves the
// output of zpool and zfs commands as parser fixtures (by default into
// internal/zfs/testdata; see recordFixtures). All need root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "build":
		if len(os.Args) != 2 {
			usage()
		}
		err = build(ctx)
	case "boot":
		err = boot(ctx, os.Args[2:])
	case "record":
		err = record(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "zfsvm %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// usage reports wrong arguments and exits.
func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./internal/testbed/cmd/zfsvm build | boot [-disks N] [-disk-size SIZE] [-memory MB] [-cpus N] [-dir DIR] | record [-out DIR] [-only SCENARIO]")
	os.Exit(2)
}

// logf prints progress to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "zfsvm: "+format+"\n", args...)
}

// build ensures the cached image and reports where it is.
func build(ctx context.Context) error {
	start := time.Now()
	img, err := testbed.EnsureZFSImage(ctx, logf)
	if err != nil {
		return err
	}
	fmt.Printf("ZFS VM image %s (ready in %s)\n", img.Dir, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// boot runs one VM until interrupted.
func boot(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("boot", flag.ExitOnError)
	disks := fs.Int("disks", 6, "number of data disks")
	diskSize := fs.String("disk-size", "1G", "size of each sparse data disk")
	memory := fs.Int("memory", 2048, "guest memory in MiB")
	cpus := fs.Int("cpus", 2, "guest CPUs")
	dir := fs.String("dir", "", "VM directory (default: a temporary one, removed on exit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		usage()
	}
	vmDir := *dir
	if vmDir == "" {
		tmp, err := os.MkdirTemp("", "zfsvm-")
		if err != nil {
			return fmt.Errorf("creating VM dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		vmDir = tmp
	}

	start := time.Now()
	vm, err := testbed.StartZFSVM(ctx, vmDir, testbed.ZFSVMOptions{
		Disks: *disks, DiskSize: *diskSize, MemoryMB: *memory, CPUs: *cpus, Logf: logf,
	})
	if err != nil {
		return err
	}
	defer vm.Stop() //nolint:errcheck // reported below on the normal path
	fmt.Printf("ZFS VM up in %s (pid %d, dir %s)\n", time.Since(start).Round(100*time.Millisecond), vm.PID, vm.Dir)
	fmt.Printf("  ssh -i %s -o UserKnownHostsFile=%s -p %d root@%s\n", vm.KeyPath, vm.KnownHostsPath, vm.SSHPort, vm.SSHHost)
	fmt.Printf("  data disks: %v\n", vm.Disks)
	fmt.Printf("  QMP: %s   console: %s\n", vm.QMPPath, vm.ConsoleLogPath)
	fmt.Println("Ctrl-C stops the VM.")
	<-ctx.Done()
	if err := vm.Stop(); err != nil {
		return err
	}
	fmt.Println("ZFS VM stopped")
	return nil
}

// record boots a VM and records fixtures into the output directory.
func record(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("record", flag.ExitOnError)
	out := fs.String("out", "", "output directory (default: internal/zfs/testdata in the repository)")
	only := fs.String("only", "", "record only this scenario: healthy, errors, degraded, raidz or exported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		usage()
	}
	if *out == "" {
		root, err := testbed.RepoRoot()
		if err != nil {
			return err
		}
		*out = filepath.Join(root, "internal", "zfs", "testdata")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	vmDir, err := os.MkdirTemp("", "zfsvm-record-")
	if err != nil {
		return fmt.Errorf("creating VM dir: %w", err)
	}
	defer os.RemoveAll(vmDir)
	vm, err := testbed.StartZFSVM(ctx, vmDir, testbed.ZFSVMOptions{Logf: logf})
	if err != nil {
		return err
	}
	defer vm.Stop() //nolint:errcheck // nothing to do about it
	r := &recorder{vm: vm, dir: *out, only: *only}
	if err := r.recordFixtures(ctx); err != nil {
		return err
	}
	for _, n := range r.notes {
		logf("note: %s", n)
	}
	logf("recorded %d files into %s", r.files, *out)
	return nil
}

// recorder saves command outputs of a ZFS VM as fixture files.
type recorder struct {
	vm    *testbed.ZFSVM
	dir   string
	files int
	// only names the one scenario to record ("" for all).
	only string
	// notes lists surprises worth reporting (unsupported flags, ...).
	notes []string
}

// Disk paths as the guest names them.
func disk(i int) string { return fmt.Sprintf("/dev/disk/by-id/virtio-disk%d", i) }

// Pool layouts of the fixtures.
var (
	mainPool = fmt.Sprintf("zpool create -f -o ashift=12 tank mirror %s %s log %s cache %s spare %s",
		disk(1), disk(2), disk(3), disk(4), disk(5))
	raidzPool = fmt.Sprintf("zpool create -f -o ashift=12 tank raidz1 %s %s %s", disk(1), disk(2), disk(3))
)

// statusJSON and statusText are the zpool status invocations recorded for
// every pool state.
const (
	statusJSON = "zpool status -j -p --json-int tank"
	statusText = "zpool status -p tank"
)

// recordFixtures runs the whole scenario. ZED is stopped first so that it
// does not activate the hot spare on its own while a disk is missing: the
// spare is brought in explicitly instead, which is what ZED would do.
func (r *recorder) recordFixtures(ctx context.Context) error {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"healthy", r.recordHealthyPool},
		{"errors", r.recordErrors},
		{"degraded", r.recordDegradedAndResilver},
		{"raidz", r.recordRaidzExpansion},
		{"exported", r.recordExportedPool},
	}
	found := false
	for _, step := range steps {
		if r.only != "" && r.only != step.name {
			continue
		}
		found = true
		if err := r.vm.Reset(ctx); err != nil {
			return err
		}
		if _, err := r.vm.Run(ctx, "systemctl stop zfs-zed"); err != nil {
			return err
		}
		if err := step.run(ctx); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("no scenario %q", r.only)
	}
	return r.vm.Reset(ctx)
}

// createMainPool creates the mirror+log+cache+spare pool with datasets, a
// zvol, a snapshot, a user property and 200 MiB of data (so that a resilver
// takes a moment).
func (r *recorder) createMainPool(ctx context.Context) error {
	_, err := r.vm.Run(ctx, mainPool+` &&
zfs create tank/a && zfs create tank/a/b && zfs create -V 64M tank/vol &&
zfs set homelab:owner=test tank/a &&
dd if=/dev/urandom of=/tank/a/data bs=1M count=200 status=none &&
zfs snapshot tank/a@s1 && zpool sync tank`)
	return err
}

// recordHealthyPool records the read commands against the healthy pool.
func (r *recorder) recordHealthyPool(ctx context.Context) error {
	if err := r.createMainPool(ctx); err != nil {
		return err
	}
	for _, f := range []struct{ name, cmd string }{
		{"zpool-status-mirror-log-cache-spare.json", statusJSON},
		{"zpool-status-mirror-log-cache-spare.txt", statusText},
		{"zpool-status-mirror-log-cache-spare-default-flags.json", "zpool status -j tank"},
		{"zpool-list.json", "zpool list -j -p --json-int tank"},
		{"zpool-list.tsv", "zpool list -H -p -o name,size,allocated,free,fragmentation,health,guid tank"},
		{"zpool-get-all.json", "zpool get -j -p --json-int all tank"},
		{"zpool-get-all.tsv", "zpool get -H -p -o name,property,value,source all tank"},
		{"zfs-get-recursive.json", "zfs get -j -p --json-int -r all tank"},
		{"zfs-get-recursive.tsv", "zfs get -H -p -o name,property,value,source -r all tank"},
		{"zfs-list-recursive.json", "zfs list -j -p --json-int -r -t all tank"},
		{"zfs-version.txt", "zfs version"},
		{"zfs-version.json", "zfs version -j"},
		{"zpool-version.txt", "zpool version"},
	} {
		if err := r.stdout(ctx, f.name, f.cmd); err != nil {
			return err
		}
	}
	return nil
}

// recordExportedPool records what a pool looks like when it is not
// imported: zpool import's listing (healthy, and with a disk missing), the
// errors of reading it, and an encrypted dataset tree before the export and
// after an import that did not load the key.
func (r *recorder) recordExportedPool(ctx context.Context) error {
	if _, err := r.vm.Run(ctx, fmt.Sprintf(`zpool create -f -o ashift=12 tank mirror %s %s && zfs create tank/a &&
echo 'correct horse battery staple' | zfs create -o encryption=on -o keyformat=passphrase tank/secret &&
zfs create tank/secret/app && zpool sync tank`, disk(1), disk(2))); err != nil {
		return err
	}
	for _, f := range []struct{ name, cmd string }{
		{"zfs-get-encrypted.json", "zfs get -j -p --json-int -r all tank"},
		{"zfs-get-encrypted.tsv", "zfs get -H -p -o name,property,value,source -r all tank"},
	} {
		if err := r.stdout(ctx, f.name, f.cmd); err != nil {
			return err
		}
	}
	if _, err := r.vm.Run(ctx, "zpool export tank"); err != nil {
		return err
	}
	if err := r.stdout(ctx, "zpool-import-exported.txt", "zpool import"); err != nil {
		return err
	}
	for _, f := range []struct{ name, cmd string }{
		{"zfs-get-exported-pool", "zfs get -j -p -r -t filesystem,volume all tank"},
		{"zpool-list-exported-pool", "zpool list -H -o name tank"},
	} {
		if err := r.failure(ctx, f.name, f.cmd); err != nil {
			return err
		}
	}
	// Imported again without -l: the key is not loaded.
	if _, err := r.vm.Run(ctx, "zpool import -d /dev/disk/by-id tank"); err != nil {
		return err
	}
	for _, f := range []struct{ name, cmd string }{
		{"zfs-get-key-unavailable.json", "zfs get -j -p --json-int -r all tank"},
		{"zfs-get-key-unavailable.tsv", "zfs get -H -p -o name,property,value,source -r all tank"},
	} {
		if err := r.stdout(ctx, f.name, f.cmd); err != nil {
			return err
		}
	}
	// Exported with a disk gone: still listed, DEGRADED.
	if _, err := r.vm.Run(ctx, "zpool export tank"); err != nil {
		return err
	}
	if err := r.vm.UnplugDisk(ctx, 2); err != nil {
		return err
	}
	if err := r.stdout(ctx, "zpool-import-degraded.txt", "zpool import"); err != nil {
		return err
	}
	if err := r.vm.ReplugDisk(ctx, 2); err != nil {
		return err
	}
	// Destroyed pools are not listed; with none left the listing is empty.
	if _, err := r.vm.Run(ctx, "zpool import -d /dev/disk/by-id tank && zpool destroy tank"); err != nil {
		return err
	}
	stdout, stderr, err := r.vm.Output(ctx, "zpool import")
	code, ok := exitCode(err)
	if !ok {
		return err
	}
	if stdout != "" {
		return fmt.Errorf("zpool import listed pools after the last one was destroyed:\n%s", stdout)
	}
	return r.save("zpool-import-none.stderr", fmt.Sprintf("exit=%d\n%s", code, stderr))
}

// recordErrors records stderr and exit codes of failing commands.
func (r *recorder) recordErrors(ctx context.Context) error {
	if err := r.createMainPool(ctx); err != nil {
		return err
	}
	for _, f := range []struct{ name, cmd string }{
		{"zpool-status-nosuchpool", "zpool status -j nosuchpool"},
		{"zfs-get-nosuch-dataset", "zfs get -j all tank/nosuch"},
		{"zpool-create-disk-in-use", "zpool create tank2 " + disk(1)},
	} {
		if err := r.failure(ctx, f.name, f.cmd); err != nil {
			return err
		}
	}
	// A process whose working directory is in tank/a keeps it busy.
	pid, err := r.vm.Run(ctx, "cd /tank/a && { setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!; }")
	if err != nil {
		return err
	}
	ferr := r.failure(ctx, "zpool-destroy-busy", "zpool destroy tank")
	_, kerr := r.vm.Run(ctx, "kill "+strings.TrimSpace(pid))
	return errors.Join(ferr, kerr)
}

// recordDegradedAndResilver unplugs disk2, records the degraded pool, the
// hot spare taking over, and a resilver onto disk6 while it runs and after.
func (r *recorder) recordDegradedAndResilver(ctx context.Context) error {
	if err := r.createMainPool(ctx); err != nil {
		return err
	}
	if err := r.vm.UnplugDisk(ctx, 2); err != nil {
		return err
	}
	if err := r.waitHealth(ctx, "DEGRADED"); err != nil {
		return err
	}
	if err := r.statusPair(ctx, "zpool-status-degraded"); err != nil {
		return err
	}

	// The spare stands in for the missing disk, as ZED would arrange.
	if _, err := r.vm.Run(ctx, "zpool replace tank virtio-disk2 "+disk(5)+" && zpool wait -t resilver tank"); err != nil {
		return err
	}
	if err := r.statusPair(ctx, "zpool-status-spare-inuse"); err != nil {
		return err
	}
	if _, err := r.vm.Run(ctx, "zpool detach tank virtio-disk5"); err != nil {
		return err
	}

	// Replace the missing disk for good, onto a disk that qemu throttles
	// to 4 MiB/s so that the resilver can be captured partway.
	if err := r.throttle(ctx, 6, 4<<20); err != nil {
		return err
	}
	if _, err := r.vm.Run(ctx, "zpool replace tank virtio-disk2 "+disk(6)); err != nil {
		return err
	}
	captured := false
	for try := 0; try < 120 && !captured; try++ {
		js, _, err := r.vm.Output(ctx, statusJSON)
		if err != nil {
			return err
		}
		st, err := scanStats(js)
		if err != nil {
			return err
		}
		if st.State == "FINISHED" {
			break
		}
		if st.State == "SCANNING" && st.Issued*4 >= st.ToExamine && st.Issued*4 < st.ToExamine*3 {
			if err := r.save("zpool-status-resilvering.json", js); err != nil {
				return err
			}
			if err := r.stdout(ctx, "zpool-status-resilvering.txt", statusText); err != nil {
				return err
			}
			captured = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := r.throttle(ctx, 6, 0); err != nil {
		return err
	}
	if !captured {
		r.notes = append(r.notes, "could not capture a resilver in progress")
	}
	if _, err := r.vm.Run(ctx, "zpool wait -t resilver tank"); err != nil {
		return err
	}
	return r.statusPair(ctx, "zpool-status-resilvered")
}

// recordRaidzExpansion attaches disk4 to a raidz1 of disks 1..3, holding
// the reflow at 64 MiB (raidz_expand_max_reflow_bytes) to capture it.
func (r *recorder) recordRaidzExpansion(ctx context.Context) error {
	const limit = "/sys/module/zfs/parameters/raidz_expand_max_reflow_bytes"
	_, err := r.vm.Run(ctx, raidzPool+` &&
dd if=/dev/urandom of=/tank/data bs=1M count=200 status=none && zpool sync tank &&
echo $((64 << 20)) >`+limit+` && zpool attach tank raidz1-0 `+disk(4))
	if err != nil {
		return err
	}
	captured := false
	for try := 0; try < 60 && !captured; try++ {
		js, _, err := r.vm.Output(ctx, statusJSON)
		if err != nil {
			return err
		}
		st, err := expandStats(js)
		if err != nil {
			return err
		}
		if st.State == "SCANNING" && st.Reflowed >= 64<<20 && st.Reflowed < st.ToReflow {
			if err := r.save("zpool-status-raidz-expanding.json", js); err != nil {
				return err
			}
			if err := r.stdout(ctx, "zpool-status-raidz-expanding.txt", statusText); err != nil {
				return err
			}
			captured = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !captured {
		r.notes = append(r.notes, "could not capture a raidz expansion in progress")
	}
	if _, err := r.vm.Run(ctx, "echo 0 >"+limit+" && zpool wait -t raidz_expand tank"); err != nil {
		return err
	}
	// A finished expansion starts a scrub on its own.
	if err := r.statusPair(ctx, "zpool-status-raidz-expanded"); err != nil {
		return err
	}
	if _, err := r.vm.Run(ctx, "zpool wait -t scrub tank"); err != nil {
		return err
	}
	return r.statusPair(ctx, "zpool-status-raidz-expanded-scrubbed")
}

// throttle limits the write bandwidth of data disk i in qemu (0 lifts the
// limit), like a slow drive.
func (r *recorder) throttle(ctx context.Context, i int, bytesPerSec int64) error {
	_, err := r.vm.QMPExecute(ctx, "block_set_io_throttle", map[string]any{
		"id": fmt.Sprintf("/machine/peripheral/vd%d/virtio-backend", i), "bps": 0, "bps_rd": 0, "bps_wr": bytesPerSec,
		"iops": 0, "iops_rd": 0, "iops_wr": 0,
	})
	if err != nil {
		return fmt.Errorf("throttling disk %d: %w", i, err)
	}
	return nil
}

// statusPair records the JSON and text status of tank as NAME.json and
// NAME.txt.
func (r *recorder) statusPair(ctx context.Context, name string) error {
	if err := r.stdout(ctx, name+".json", statusJSON); err != nil {
		return err
	}
	return r.stdout(ctx, name+".txt", statusText)
}

// waitHealth polls tank's health, writing to it so that ZFS notices
// missing disks through failed I/O as well.
func (r *recorder) waitHealth(ctx context.Context, want string) error {
	for try := 0; try < 60; try++ {
		out, err := r.vm.Run(ctx, "zpool list -H -o health tank")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == want {
			return nil
		}
		if _, err := r.vm.Run(ctx, "dd if=/dev/urandom of=/tank/poke bs=64k count=16 status=none conv=fsync; zpool sync tank"); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("pool tank did not become %s", want)
}

// expandStatsJSON is the part of `zpool status -j -p --json-int` that
// describes a raidz expansion.
type expandStatsJSON struct {
	State    string `json:"state"`
	ToReflow int64  `json:"to_reflow"`
	Reflowed int64  `json:"reflowed"`
}

// expandStats extracts tank's raidz_expand_stats from status JSON.
func expandStats(statusJSON string) (expandStatsJSON, error) {
	var st struct {
		Pools map[string]struct {
			Expand expandStatsJSON `json:"raidz_expand_stats"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		return expandStatsJSON{}, fmt.Errorf("parsing zpool status JSON: %w", err)
	}
	return st.Pools["tank"].Expand, nil
}

// scanStatsJSON is the part of `zpool status -j -p --json-int` that
// describes a scrub or resilver.
type scanStatsJSON struct {
	State     string `json:"state"`
	ToExamine int64  `json:"to_examine"`
	Issued    int64  `json:"issued"`
}

// scanStats extracts tank's scan_stats from status JSON.
func scanStats(statusJSON string) (scanStatsJSON, error) {
	var st struct {
		Pools map[string]struct {
			ScanStats scanStatsJSON `json:"scan_stats"`
		} `json:"pools"`
	}
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		return scanStatsJSON{}, fmt.Errorf("parsing zpool status JSON: %w", err)
	}
	return st.Pools["tank"].ScanStats, nil
}

// stdout records the stdout of a command that must succeed. When it fails
// (e.g. a flag this ZFS version lacks) its stderr and exit code are
// recorded instead as NAME.stderr, and a note is kept.
func (r *recorder) stdout(ctx context.Context, name, cmd string) error {
	stdout, stderr, err := r.vm.Output(ctx, cmd)
	if code, ok := exitCode(err); ok && code != 0 {
		r.notes = append(r.notes, fmt.Sprintf("%q failed with exit %d: %s", cmd, code, strings.TrimSpace(stderr)))
		return r.save(name+".stderr", fmt.Sprintf("exit=%d\n%s", code, stderr))
	}
	if err != nil {
		return err
	}
	return r.save(name, stdout)
}

// failure records a command that must fail: NAME.stderr holds "exit=N"
// and then its stderr, NAME.stdout its stdout if it printed any.
func (r *recorder) failure(ctx context.Context, name, cmd string) error {
	stdout, stderr, err := r.vm.Output(ctx, cmd)
	code, ok := exitCode(err)
	if !ok {
		return err
	}
	if code == 0 {
		return fmt.Errorf("%q succeeded but should fail", cmd)
	}
	if err := r.save(name+".stderr", fmt.Sprintf("exit=%d\n%s", code, stderr)); err != nil {
		return err
	}
	if stdout != "" {
		return r.save(name+".stdout", stdout)
	}
	return nil
}

// exitCode returns the remote exit status carried by err (0 for nil); ok is
// false when err is not about the command's exit.
func exitCode(err error) (code int, ok bool) {
	if err == nil {
		return 0, true
	}
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitStatus(), true
	}
	return 0, false
}

// save writes one fixture file.
func (r *recorder) save(name, content string) error {
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
		return fmt.Errorf("writing fixture: %w", err)
	}
	r.files++
	logf("recorded %s", name)
	return nil
}
