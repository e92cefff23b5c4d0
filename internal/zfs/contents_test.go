package zfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// The destroy guard's look into the root dataset runs through the real sh
// and find, with a stand-in zfs that answers as OpenZFS does for a pool
// without children mounted at a path with a space.
func TestContentsSeesFilesUnderAMountpointWithASpace(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(dir, "my pool")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeZFS := `#!/bin/sh
case "$1" in
list) echo tank ;;
version) echo zfs-2.2.7-1 ;;
get)
  case "$*" in
  "get -H -o value mounted,mountpoint tank") printf 'yes\n%s\n' "$MOUNTPOINT" ;;
  *) printf 'tank\ttype\tfilesystem\t-\ntank\tlogicalreferenced\t43008\t-\n' ;;
  esac ;;
*) echo "unexpected zfs $*" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "zfs"), []byte(fakeZFS), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("MOUNTPOINT", mp)
	c := NewClient(remote.NewLocal(false))

	got, err := c.Contents(context.Background(), "tank")
	if err != nil || len(got) != 0 {
		t.Fatalf("empty root dataset: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(mp, "notes.txt"), make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = c.Contents(context.Background(), "tank")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], filepath.Join(mp, "notes.txt")) {
		t.Fatalf("a 1 KiB file under %q: Contents = %q, want it named", mp, got)
	}
}
