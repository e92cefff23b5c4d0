package remote_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
	"github.com/terraform-homelab/terraform-provider-homelab/internal/testbed"
)

// sshd runs commands through the user's login shell. A user whose login shell
// is fish (its quoting differs from POSIX sh: `\'` inside single quotes is an
// escape) must get exactly the argv the provider built, and no value may run
// as a command, whatever the shell. The quoting fuzz corpus goes through a real
// sshd as root (bash) and as a fish user.
func TestCommandsDoNotDependOnTheLoginShell(t *testing.T) {
	if err := testbed.EnsureFishUser(); err != nil {
		t.Fatal(err)
	}
	s := startSSHD(t)
	p := remote.NewPool(nil)
	defer p.Close()
	ctx := context.Background()

	// A directory every test user can write to (t.TempDir's parent is private).
	shared, err := os.MkdirTemp("", "loginshell-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(shared, "pwned")
	// Under fish, the first value's trailing backslash escapes the quote that
	// POSIX quoting closes it with, and the second value runs as a command.
	attack := []string{`a\`, "; touch " + marker + "; echo ", `'\'`, "b"}
	words := append(append([]string{}, remote.NastyWords...), attack...)

	// The script reports each argument it received, base64-encoded so that
	// any byte survives the trip back.
	const report = `printf '%s\n' "$#"; for a; do printf %s "$a" | base64 -w0; echo; done`
	for _, user := range []string{"root", testbed.FishUser} {
		r := runner(t, p, config(s, user))
		for name, cmd := range map[string]remote.Cmd{
			"Command": remote.Command("sh", append([]string{"-c", report, "x"}, words...)...),
			"Script":  remote.Script(report, words...),
		} {
			res, err := r.Run(ctx, cmd)
			if err != nil {
				t.Fatalf("%s as %s: %v", name, user, err)
			}
			got := decodeReport(t, res.Stdout)
			if len(got) != len(words) {
				t.Fatalf("%s as %s: the command saw %d arguments, want %d: %q", name, user, len(got), len(words), got)
			}
			for i := range words {
				if got[i] != words[i] {
					t.Errorf("%s as %s: argument %d arrived as %q, want %q", name, user, i, got[i], words[i])
				}
			}
		}
		// Plain argv and file transfer work under the login shell too.
		res, err := r.Run(ctx, remote.Command("echo", "plain", "words"))
		if err != nil || string(res.Stdout) != "plain words\n" {
			t.Fatalf("echo as %s: %q %v", user, res.Stdout, err)
		}
		target := filepath.Join(shared, user+" file 'with' \\ quotes")
		if err := remote.WriteFile(ctx, r, target, []byte("data\n"), 0o644); err != nil {
			t.Fatalf("upload as %s: %v", user, err)
		}
		if got, err := r.ReadFile(ctx, target); err != nil || string(got) != "data\n" {
			t.Fatalf("read back as %s: %q %v", user, got, err)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a value ran as a command under a login shell")
	}
}

// decodeReport parses the output of the report script.
func decodeReport(t *testing.T, out []byte) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	n, err := strconv.Atoi(lines[0])
	if err != nil || n != len(lines)-1 {
		t.Fatalf("unexpected report %q", out)
	}
	got := make([]string, 0, n)
	for _, l := range lines[1:] {
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			t.Fatalf("decoding %q: %v", l, err)
		}
		got = append(got, string(b))
	}
	return got
}
