package remote

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func TestSudoWrapNeverPrompts(t *testing.T) {
	got := sudoWrap([]string{"zpool", "status", "tank"})
	want := []string{"sudo", "-n", "--", "zpool", "status", "tank"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sudoWrap = %q, want %q", got, want)
	}
}

func TestSudoErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		code   int
		stderr string
		want   string // "" means: not a sudo refusal
	}{
		{1, "sudo: a password is required\n", "passwordless sudo"},
		{1, "sudo: a terminal is required to read the password\n", "passwordless sudo"},
		{1, "bob is not in the sudoers file.  This incident will be reported.\n", ""},
		{1, "sudo: bob is not in the sudoers file\n", "grant this user sudo rights"},
		{127, "sh: 1: sudo: not found\n", "install sudo"},
		{1, "sudo: zpool: command not found\n", ""},
		{1, "cannot open 'tank': no such pool\n", ""},
		{2, "sudo: a password is required\n", ""},
	} {
		err := sudoError("bob@nas:22", tc.code, []byte(tc.stderr))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%d %q: want no sudo error, got %v", tc.code, tc.stderr, err)
			}
			continue
		}
		var se *SudoError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bob@nas:22") {
			t.Errorf("%d %q: got %v, want a SudoError mentioning %q", tc.code, tc.stderr, err, tc.want)
		}
	}
}

// recordingExecutor captures the argv a runner sends and replays a canned result.
type recordingExecutor struct {
	argv   []string
	stdin  string
	code   int
	stdout string
	stderr string
}

func (r *recordingExecutor) target() string { return "bob@nas:22" }

func (r *recordingExecutor) exec(_ context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	r.argv = argv
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		r.stdin = string(b)
	}
	_, _ = io.WriteString(stdout, r.stdout)
	_, _ = io.WriteString(stderr, r.stderr)
	return r.code, nil
}

func TestRunnerWrapsEveryOperationInSudo(t *testing.T) {
	ex := &recordingExecutor{}
	r := &shellRunner{ex: ex, sudo: true}
	ctx := context.Background()
	if _, err := r.Run(ctx, Command("zfs", "list")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ex.argv[:3], " "); got != "sudo -n --" {
		t.Fatalf("Run argv %q not wrapped in sudo -n", ex.argv)
	}
	if err := WriteFile(ctx, r, "/etc/x", []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ex.argv[0] != "sudo" || ex.argv[len(ex.argv)-2] != "/etc/x" || ex.argv[len(ex.argv)-1] != "0600" || ex.stdin != "secret" {
		t.Fatalf("Upload argv %q stdin %q", ex.argv, ex.stdin)
	}
	for _, a := range ex.argv {
		if strings.Contains(a, "secret") {
			t.Fatalf("file content leaked into argv: %q", ex.argv)
		}
	}
	ex.code, ex.stderr = 1, "sudo: a password is required\n"
	_, err := r.Run(ctx, Command("zfs", "list"))
	var se *SudoError
	if !errors.As(err, &se) {
		t.Fatalf("want SudoError, got %v", err)
	}
}

func TestReadFileMissingIsNotExist(t *testing.T) {
	r := &shellRunner{ex: &recordingExecutor{code: exitNotExist}}
	_, err := r.ReadFile(context.Background(), "/nope")
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound (fs.ErrNotExist), got %v", err)
	}
}

// Only a missing file is ErrNotFound: cat's own failures (a file it may not
// read) and sudo's refusal are other errors.
func TestReadFileOtherFailuresAreNotErrNotFound(t *testing.T) {
	for name, ex := range map[string]*recordingExecutor{
		"permission": {code: 1, stderr: "cat: /etc/rancher/rke2/config.yaml: Permission denied\n"},
		"sudo":       {code: 1, stderr: "sudo: a password is required\n"},
	} {
		r := &shellRunner{ex: ex, sudo: name == "sudo"}
		_, err := r.ReadFile(context.Background(), "/etc/rancher/rke2/config.yaml")
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v matches ErrNotFound", name, err)
		}
	}
}
