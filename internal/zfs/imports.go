package zfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// ErrNotImported reports that a pool is not imported on the host although
// its disks are there: `zpool import` lists it. The pool and its datasets
// exist; they cannot be read or changed until the pool is imported. It is
// never ErrNotFound.
var ErrNotImported = errors.New("is not imported")

// ImportablePool is one pool that `zpool import` (without arguments, which
// imports nothing) lists as found on the host's disks.
type ImportablePool struct {
	Name string
	ID   string // the pool GUID
	// State is ONLINE, DEGRADED, UNAVAIL, FAULTED, ...
	State  string
	Status string // why it is not ONLINE or needs care ("" when fine)
	Action string // what zpool import says can be done
}

// NotImportedError is the ErrNotImported answer for one pool.
type NotImportedError struct {
	// Asked is the pool name that was asked for; Pool is what zpool import
	// lists (the same, unless it was found by GUID under another name).
	Asked string
	Pool  ImportablePool
}

func (e *NotImportedError) Error() string {
	s := fmt.Sprintf("pool %s %s: `zpool import` lists it as importable (name %s, id %s, state %s)",
		e.Asked, ErrNotImported, e.Pool.Name, e.Pool.ID, e.Pool.State)
	if e.Pool.Status != "" {
		s += "; status: " + e.Pool.Status
	}
	if e.Pool.Action != "" {
		s += "; action: " + e.Pool.Action
	}
	return s
}

func (e *NotImportedError) Unwrap() error { return ErrNotImported }

// ImportCommand is the command that imports the pool under the name asked
// for, naming its disks by id, and loads its encryption keys.
func (e *NotImportedError) ImportCommand() string {
	if e.Pool.Name == e.Asked {
		return "zpool import -d /dev/disk/by-id -l " + e.Asked
	}
	return "zpool import -d /dev/disk/by-id -l " + e.Pool.ID + " " + e.Asked
}

// ParseImport parses the listing `zpool import` prints without arguments:
// blocks starting with "pool: NAME", then "id:", "state:", "status:",
// "action:" (continued on indented lines), "see:" and "config:".
func ParseImport(out []byte) ([]ImportablePool, error) {
	var pools []ImportablePool
	var cur *ImportablePool
	field := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		key, val, hasKey := strings.Cut(t, ":")
		if hasKey && !strings.Contains(key, " ") {
			switch key {
			case "pool":
				pools = append(pools, ImportablePool{Name: strings.TrimSpace(val)})
				cur = &pools[len(pools)-1]
				field = ""
				continue
			case "id", "state", "status", "action", "see", "config", "comment":
				if cur == nil {
					return nil, fmt.Errorf("unexpected zpool import output: %q before any pool", line)
				}
				field = key
				val = strings.TrimSpace(val)
				switch key {
				case "id":
					cur.ID = val
				case "state":
					cur.State = val
				case "status":
					cur.Status = val
				case "action":
					cur.Action = val
				}
				continue
			}
		}
		// Continuation lines of status and action are indented text.
		if cur != nil && t != "" && (field == "status" || field == "action") {
			if field == "status" {
				cur.Status += " " + t
			} else {
				cur.Action += " " + t
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, p := range pools {
		if p.Name == "" || p.ID == "" {
			return nil, fmt.Errorf("unexpected zpool import output: a pool without name or id in %q", out)
		}
	}
	return pools, nil
}

// ImportablePools lists the pools that could be imported on the host: the
// ones whose disks are present but which are not imported. Destroyed pools
// are not listed (zpool import -D would list them).
func (c *Client) ImportablePools(ctx context.Context) ([]ImportablePool, error) {
	out, err := c.run(ctx, remote.Command("zpool", "import"))
	if err != nil {
		var ee *remote.ExitError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "no pools available to import") && len(bytes.TrimSpace(out)) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("listing importable pools (zpool import): %w", err)
	}
	return ParseImport(out)
}

// exported looks for a pool that is not imported, by name or, when guid is
// not empty, by GUID. It returns a *NotImportedError when zpool import
// lists one, nil when it lists none.
func (c *Client) exported(ctx context.Context, name, guid string) error {
	pools, err := c.ImportablePools(ctx)
	if err != nil {
		return err
	}
	for _, p := range pools {
		if p.Name == name || guid != "" && p.ID == guid {
			return &NotImportedError{Asked: name, Pool: p}
		}
	}
	return nil
}

// missingPool explains a pool that is not imported: a *NotImportedError
// when zpool import lists it, notFound (which wraps ErrNotFound) only when
// it is verified not to be there, and any other error when that cannot be
// told.
func (c *Client) missingPool(ctx context.Context, name, guid string, notFound error) error {
	if err := c.exported(ctx, name, guid); err != nil {
		if errors.Is(err, ErrNotImported) {
			return err
		}
		return fmt.Errorf("pool %s is not imported, and whether it can be imported is unknown: %w", name, err)
	}
	return notFound
}

// missingDataset explains a dataset that ZFS says does not exist: the
// answer stands when its pool is imported; otherwise it is the pool's
// absence that counts (see missingPool).
func (c *Client) missingDataset(ctx context.Context, name string, notFoundErr error) error {
	pool := PoolOf(name)
	_, err := c.run(ctx, remote.Command("zpool", "list", "-H", "-o", "name", pool))
	if err == nil {
		return notFoundErr
	}
	if err = notFound(err, "pool "+pool); !errors.Is(err, ErrNotFound) {
		return err
	}
	return c.missingPool(ctx, pool, "", fmt.Errorf("%w (its pool %s is neither imported nor importable)", notFoundErr, pool))
}
