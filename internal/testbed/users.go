package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Local accounts that every testbed sshd authorizes besides root.
const (
	// SudoUser may run any command through `sudo` without a password.
	SudoUser = "homelab-sudo"
	// NoSudoUser has no sudo rights at all; it logs in with NoSudoPassword
	// as well as with the testbed client key.
	NoSudoUser = "homelab-nosudo"
	// NoSudoPassword is NoSudoUser's login password.
	NoSudoPassword = "nosudo-password"
	// FishUser logs in with the testbed client key and has fish, a shell
	// whose quoting differs from POSIX sh, as its login shell (see
	// EnsureFishUser). It has no sudo rights.
	FishUser = "homelab-fish"
	// FishPath is Debian's fish.
	FishPath = "/usr/bin/fish"
)

const (
	sudoersPath     = "/etc/sudoers.d/" + SudoUser
	shadowPath      = "/etc/shadow"
	usersLockName   = "users.lock"
	usersLockWait   = 2 * time.Minute
	sudoGroupName   = "sudo"
	noLoginPassword = "*" // no password login, but not locked like "!"
)

// usersReady remembers, per process, that EnsureUsers succeeded.
var usersReady struct {
	sync.Mutex
	done bool
}

// EnsureUsers idempotently creates SudoUser and NoSudoUser as local accounts
// (home directory, /bin/sh), grants SudoUser passwordless sudo through
// /etc/sudoers.d, sets NoSudoUser's password and makes sure neither account
// is locked. It needs root. Concurrent calls from several processes are
// serialized by a lock file under CacheDir; after a success it is a no-op for
// the rest of the process.
func EnsureUsers() error {
	usersReady.Lock()
	defer usersReady.Unlock()
	if usersReady.done {
		return nil
	}
	if err := requireRoot("creating the testbed's local accounts"); err != nil {
		return err
	}
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), usersLockWait)
	defer cancel()
	err = withFileLock(ctx, filepath.Join(cache, usersLockName), func() error {
		if err := ensureSudoUser(); err != nil {
			return err
		}
		return ensureNoSudoUser()
	})
	if err != nil {
		return fmt.Errorf("ensuring testbed users: %w", err)
	}
	usersReady.done = true
	return nil
}

// requireRoot fails with a clear message when not running as root.
func requireRoot(purpose string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root, but running as uid %d", purpose, os.Geteuid())
	}
	return nil
}

func ensureSudoUser() error {
	if err := ensureAccount(SudoUser); err != nil {
		return err
	}
	if err := setShadowPassword(SudoUser, noLoginPassword); err != nil {
		return err
	}
	return ensureSudoersFile()
}

func ensureNoSudoUser() error {
	if err := ensureAccount(NoSudoUser); err != nil {
		return err
	}
	if inGroup(NoSudoUser, sudoGroupName) {
		if err := runSystem(nil, "gpasswd", "-d", NoSudoUser, sudoGroupName); err != nil {
			return fmt.Errorf("revoking sudo of %s: %w", NoSudoUser, err)
		}
	}
	in := strings.NewReader(NoSudoUser + ":" + NoSudoPassword + "\n")
	if err := runSystem(in, "chpasswd"); err != nil {
		return fmt.Errorf("setting password of %s: %w", NoSudoUser, err)
	}
	return nil
}

// EnsureFishUser idempotently creates FishUser with fish as its login
// shell, for tests proving that commands do not depend on the user's login
// shell. It needs root and Debian's fish (scripts/install-deps).
func EnsureFishUser() error {
	if err := requireRoot("creating the testbed's fish account"); err != nil {
		return err
	}
	if _, err := os.Stat(FishPath); err != nil {
		return fmt.Errorf("fish is needed for the login-shell tests (Debian's fish; run scripts/install-deps): %w", err)
	}
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), usersLockWait)
	defer cancel()
	return withFileLock(ctx, filepath.Join(cache, usersLockName), func() error {
		if err := ensureAccount(FishUser); err != nil {
			return err
		}
		if err := runSystem(nil, "usermod", "-s", FishPath, FishUser); err != nil {
			return fmt.Errorf("setting the login shell of %s: %w", FishUser, err)
		}
		return setShadowPassword(FishUser, noLoginPassword)
	})
}

// ensureAccount creates a local account with a home directory unless it
// exists.
func ensureAccount(name string) error {
	_, err := user.Lookup(name)
	if err == nil {
		return nil
	}
	var unknown user.UnknownUserError
	if !errors.As(err, &unknown) {
		return fmt.Errorf("looking up user %s: %w", name, err)
	}
	if err := runSystem(nil, "useradd", "-m", "-s", "/bin/sh", name); err != nil {
		return fmt.Errorf("creating user %s: %w", name, err)
	}
	return nil
}

// setShadowPassword sets the encrypted password field of name unless it
// already has that value. useradd leaves it as "!" (locked), and with
// UsePAM=no sshd refuses every login, even by key, to locked accounts.
func setShadowPassword(name, field string) error {
	current, err := shadowField(name)
	if err != nil {
		return err
	}
	if current == field {
		return nil
	}
	if err := runSystem(nil, "usermod", "-p", field, name); err != nil {
		return fmt.Errorf("unlocking user %s: %w", name, err)
	}
	return nil
}

// shadowField returns the encrypted password field of name in /etc/shadow.
func shadowField(name string) (string, error) {
	data, err := os.ReadFile(shadowPath)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", shadowPath, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) > 1 && fields[0] == name {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("user %s not found in %s", name, shadowPath)
}

// inGroup reports whether the account name is a member of group.
func inGroup(name, group string) bool {
	u, err := user.Lookup(name)
	if err != nil {
		return false
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, gid := range gids {
		if gid == g.Gid {
			return true
		}
	}
	return false
}

// ensureSudoersFile installs the drop-in granting SudoUser passwordless sudo,
// validated by visudo before it is moved into place.
func ensureSudoersFile() error {
	want := []byte(SudoUser + " ALL=(ALL) NOPASSWD:ALL\n")
	if got, err := os.ReadFile(sudoersPath); err == nil && bytes.Equal(got, want) {
		if fi, err := os.Stat(sudoersPath); err == nil && fi.Mode().Perm() == 0o440 {
			return nil
		}
	}
	// sudo ignores files in sudoers.d whose name contains a dot, so the
	// temporary file is never active.
	tmp := filepath.Join(filepath.Dir(sudoersPath), "."+SudoUser+".tmp")
	if err := os.WriteFile(tmp, want, 0o440); err != nil {
		return fmt.Errorf("writing sudoers drop-in: %w", err)
	}
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o440); err != nil {
		return fmt.Errorf("writing sudoers drop-in: %w", err)
	}
	if err := runSystem(nil, "visudo", "-cf", tmp); err != nil {
		return fmt.Errorf("validating sudoers drop-in: %w", err)
	}
	if err := os.Rename(tmp, sudoersPath); err != nil {
		return fmt.Errorf("installing %s: %w", sudoersPath, err)
	}
	return nil
}

// runSystem runs a system command with optional stdin and returns an error
// quoting its output when it fails.
func runSystem(stdin *strings.Reader, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(out, maxOutputInError))
	}
	return nil
}
