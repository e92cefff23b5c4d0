package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// CacheEnv names the environment variable that overrides the cache directory.
const CacheEnv = "HOMELAB_TESTBED_CACHE"

// cacheSubdir is the directory created under os.UserCacheDir by default.
const cacheSubdir = "terraform-provider-homelab"

// lockPollInterval is how often a contended file lock is retried.
const lockPollInterval = 200 * time.Millisecond

// CacheDir returns the directory holding artifacts that are expensive to
// build and shared between test runs: $HOMELAB_TESTBED_CACHE when set,
// otherwise terraform-provider-homelab under os.UserCacheDir. The directory
// is created if it does not exist.
func CacheDir() (string, error) {
	dir := os.Getenv(CacheEnv)
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("locating user cache dir (set %s to override): %w", CacheEnv, err)
		}
		dir = filepath.Join(base, cacheSubdir)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving cache dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache dir: %w", err)
	}
	return dir, nil
}

// withFileLock runs fn while holding an exclusive flock(2) on path, which is
// created if needed. Waiting for the lock is bounded by ctx. The lock is
// released when fn returns, and by the kernel if the process dies.
func withFileLock(ctx context.Context, path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening lock file: %w", err)
	}
	defer f.Close()

	if err := flockWait(ctx, f); err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file releases it too
	return fn()
}

// flockWait takes an exclusive lock on f, polling so that ctx can interrupt
// the wait (a blocking flock cannot be cancelled).
func flockWait(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock: %w", ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}
