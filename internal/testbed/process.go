package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processPollInterval is how often TerminateProcess checks for exits.
const processPollInterval = 50 * time.Millisecond

// ProcessAlive reports whether pid is a running (not zombie) process. When
// exe is not empty the process must also run that executable, which guards
// against a recorded pid having been reused by an unrelated process.
func ProcessAlive(pid int, exe string) bool {
	if pid <= 0 {
		return false
	}
	state, _, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	if exe == "" {
		return true
	}
	got, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return false
	}
	return strings.TrimSuffix(got, " (deleted)") == exe
}

// TerminateProcess stops pid and all its descendants: SIGTERM, up to grace
// for them to exit, then SIGKILL. Descendants are collected first because
// daemons such as sshd leave their per-connection children running when the
// parent exits. A process that is not running (or not running exe, see
// ProcessAlive) is left alone and is not an error.
func TerminateProcess(pid int, exe string, grace time.Duration) error {
	if !ProcessAlive(pid, exe) {
		return nil
	}
	pids := append([]int{pid}, descendants(pid)...)
	signalAll(pids, syscall.SIGTERM)
	if waitAllExited(pids, grace) {
		return nil
	}
	signalAll(pids, syscall.SIGKILL)
	if waitAllExited(pids, grace) {
		return nil
	}
	return fmt.Errorf("process %d (or a child of it) survived SIGKILL", pid)
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, p := range pids {
		// ESRCH just means it is already gone.
		_ = syscall.Kill(p, sig)
	}
}

// waitAllExited polls until none of pids is alive or timeout passes.
func waitAllExited(pids []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		alive := false
		for _, p := range pids {
			if ProcessAlive(p, "") {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(processPollInterval)
	}
}

// descendants returns the pids of all processes below pid, found by walking
// parent links in /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, err := procStat(p); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// procStat returns the state letter and parent pid of pid from
// /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid int, err error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is parenthesized and may contain spaces
	// or parentheses, so parse from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	ppid, err = strconv.Atoi(fields[1])
	if err != nil {
		return 0, 0, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return fields[0][0], ppid, nil
}
