package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// Secrets of the unit tests; none may show up in argv, errors or logs.
const (
	secretPassword = "pw-with 'quotes' \"and\" $(touch /tmp/pwned) \\ and = signs "
	secretEnv      = "aws-secret/with+chars=="
	secretHTTP     = "http-pass-4711"
)

func secretRepo() Repo {
	return Repo{
		Repository: "rest:https://backup:" + secretHTTP + "@nas.example:8000/host1/",
		Password:   secretPassword,
		Env:        map[string]string{"AWS_SECRET_ACCESS_KEY": secretEnv, "B2_ACCOUNT_ID": "id"},
		Options:    map[string]string{"rest.connections": "2", "b.second": "x y"},
		ResticPath: "/opt/restic/bin/restic",
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{secretPassword, secretEnv, secretHTTP, strings.TrimSpace(secretPassword)} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret: %s", what, s)
		}
	}
}

func TestCommandKeepsSecretsOutOfArgv(t *testing.T) {
	var logged []string
	c := &Client{Runner: replay(t, "0.18.1", "snapshots-none"), Repo: secretRepo(),
		Logger: func(msg string, fields map[string]any) {
			for k, v := range fields {
				logged = append(logged, fmt.Sprintf("%s %s=%v", msg, k, v))
			}
		}}
	cmd, err := c.command([]string{"snapshots", "--json", "--host", "h"})
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"sh", "-c", wrapperScript, "homelab", "4", "/opt/restic/bin/restic",
		"-o", "b.second=x y", "-o", "rest.connections=2", "snapshots", "--json", "--host", "h"}
	if strings.Join(cmd.Args, "\x00") != strings.Join(wantArgs, "\x00") {
		t.Errorf("argv %q\nwant %q", cmd.Args, wantArgs)
	}
	assertNoSecret(t, "argv", strings.Join(cmd.Args, " "))
	stdin, _ := io.ReadAll(cmd.Stdin)
	wantStdin := "AWS_SECRET_ACCESS_KEY=" + secretEnv + "\nB2_ACCOUNT_ID=id\nRESTIC_PASSWORD=" + secretPassword +
		"\nRESTIC_REPOSITORY=" + secretRepo().Repository + "\n"
	if string(stdin) != wantStdin {
		t.Errorf("stdin %q\nwant %q", stdin, wantStdin)
	}

	if _, err := c.Snapshots(context.Background(), Filter{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if len(logged) == 0 {
		t.Fatal("nothing logged")
	}
	joined := strings.Join(logged, "\n")
	assertNoSecret(t, "log", joined)
	if !strings.Contains(joined, "repository=rest:https://backup:***@nas.example:8000/host1/") {
		t.Errorf("log lacks the redacted repository:\n%s", joined)
	}
}

func TestPasswordFileIsAnArgument(t *testing.T) {
	c := &Client{Runner: remote.NewLocal(false), Repo: Repo{Repository: "/srv/r", PasswordFile: "/etc/restic/pw"}}
	cmd, err := c.command([]string{"snapshots"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmd.Args[4:], " "); got != "1 restic --password-file /etc/restic/pw snapshots" {
		t.Errorf("args %q", got)
	}
}

func TestValidation(t *testing.T) {
	ctx := context.Background()
	cases := map[string]Repo{
		"no repository":          {Password: "x"},
		"password and file":      {Repository: "/r", Password: "x", PasswordFile: "/pw"},
		"newline in password":    {Repository: "/r", Password: secretEnv + "\nEVIL=1"},
		"newline in env":         {Repository: "/r", Env: map[string]string{"AWS_SECRET_ACCESS_KEY": secretEnv + "\n"}},
		"newline in repository":  {Repository: "/r\nRESTIC_PASSWORD=x"},
		"lower-case env name":    {Repository: "/r", Env: map[string]string{"n": "1"}},
		"env name with =":        {Repository: "/r", Env: map[string]string{"A=B": "1"}},
		"password in env":        {Repository: "/r", Env: map[string]string{"RESTIC_PASSWORD": secretEnv}},
		"repository in env":      {Repository: "/r", Env: map[string]string{"RESTIC_REPOSITORY": "/x"}},
		"option key with =":      {Repository: "/r", Options: map[string]string{"a=b": "c"}},
		"option key with spaces": {Repository: "/r", Options: map[string]string{"a b": "c"}},
	}
	for name, repo := range cases {
		r := replay(t, "0.18.1")
		c := &Client{Runner: r, Repo: repo}
		_, err := c.Snapshots(ctx, Filter{})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		assertNoSecret(t, name+" error", err.Error())
		if len(r.cmds) != 0 {
			t.Errorf("%s: a command ran", name)
		}
	}
	c := &Client{Runner: replay(t, "0.18.1"), Repo: Repo{Repository: "/r", Password: "x"}}
	if _, err := c.Snapshots(ctx, Filter{Tags: []string{"a,b"}}); err == nil {
		t.Error("tag with a comma accepted")
	}
	if _, err := c.Backup(ctx, []string{"/src"}, nil, []string{"a,b"}, ""); err == nil {
		t.Error("backup tag with a comma accepted")
	}
	if _, err := c.Backup(ctx, nil, nil, nil, ""); err == nil {
		t.Error("backup of nothing accepted")
	}
	if _, err := (&Client{Repo: Repo{Repository: "/r"}}).Version(ctx); err == nil {
		t.Error("client without runner accepted")
	}
	// Only the version needs no repository.
	if v, err := (&Client{Runner: replay(t, "0.14.0", "version")}).Version(ctx); err != nil || v != "0.14.0" {
		t.Errorf("Version without a repository: %q, %v", v, err)
	}
}

// The wrapper delivers every secret byte for byte through a real sh, and
// leaves what follows on stdin to the program.
func TestWrapperDeliversSecretsVerbatim(t *testing.T) {
	dir := t.TempDir()
	printer := filepath.Join(dir, "print")
	// A stand-in for restic that prints its argv and the variables.
	script := "#!/bin/sh\nprintf 'argv:%s\\n' \"$*\"\nprintf 'pw:%s|\\n' \"$RESTIC_PASSWORD\"\nprintf 'repo:%s|\\n' \"$RESTIC_REPOSITORY\"\nprintf 'env:%s|\\n' \"$AWS_SECRET_ACCESS_KEY\"\nprintf 'empty:%s|%s\\n' \"${EMPTY_ONE-unset}\" \"$(cat)\"\n"
	if err := os.WriteFile(printer, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	repo := secretRepo()
	repo.ResticPath = printer
	repo.Options = nil
	repo.Env["EMPTY_ONE"] = ""
	c := &Client{Runner: remote.NewLocal(false), Repo: repo}
	res, err := c.run(context.Background(), "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	want := "argv:version --json\npw:" + secretPassword + "|\nrepo:" + repo.Repository + "|\nenv:" + secretEnv + "|\nempty:|\n"
	if string(res.Stdout) != want {
		t.Errorf("got\n%s\nwant\n%s", res.Stdout, want)
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Error("a secret was evaluated by the shell")
	}
}

func TestMissingResticIsNotInstalled(t *testing.T) {
	c := &Client{Runner: remote.NewLocal(false), Repo: Repo{Repository: "/r", Password: "x", ResticPath: "restic-not-installed-here"}}
	_, err := c.Version(context.Background())
	if !IsNotInstalled(err) || errors.Is(err, ErrNotFound) {
		t.Errorf("missing restic: %v", err)
	}
}

func TestRedactRepository(t *testing.T) {
	cases := map[string]string{
		"/srv/restic":                                "/srv/restic",
		"sftp:backup@nas:/srv/restic":                "sftp:backup@nas:/srv/restic",
		"rest:http://nas:8000/":                      "rest:http://nas:8000/",
		"rest:http://u:p%40ss@nas:8000/r/":           "rest:http://u:***@nas:8000/r/",
		"rest:https://user@nas/r/":                   "rest:https://user@nas/r/",
		"s3:https://s3.example/bucket":               "s3:https://s3.example/bucket",
		"rest:http://u:" + secretHTTP + "@h:1/%zz/":  "rest:<unparsable URL>",
		"rest:http://u:" + secretHTTP + "@[::1]:1/r": "rest:http://u:***@[::1]:1/r",
	}
	for in, want := range cases {
		if got := RedactRepository(in); got != want {
			t.Errorf("RedactRepository(%q) = %q, want %q", in, got, want)
		}
	}
}

// IsRepository and RemoveRepository on fake layouts (no restic needed).
func TestRepositoryLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake")
	for _, d := range []string{"keys", "data", "snapshots", "index", "locks"} {
		if err := os.MkdirAll(filepath.Join(fake, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(fake, "config"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	notRepo := filepath.Join(dir, "not-a-repo")
	if err := os.MkdirAll(filepath.Join(notRepo, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := remote.NewLocal(false)
	c := &Client{Runner: local, Repo: Repo{Repository: "local:" + fake}}

	for p, want := range map[string]bool{"": true, fake: true, fake + "/": true, notRepo: false, filepath.Join(dir, "missing"): false} {
		if got, err := c.IsRepository(ctx, p); err != nil || got != want {
			t.Errorf("IsRepository(%q) = %v, %v; want %v", p, got, err, want)
		}
	}
	for _, p := range []string{"relative/path", "/"} {
		if _, err := c.IsRepository(ctx, p); err == nil {
			t.Errorf("IsRepository(%q) accepted", p)
		}
	}
	sftp := &Client{Runner: local, Repo: Repo{Repository: "sftp:root@nas:/srv/r"}}
	if _, err := sftp.IsRepository(ctx, ""); err == nil {
		t.Error("IsRepository of an sftp repository without a path accepted")
	}
	rel := &Client{Runner: local, Repo: Repo{Repository: "sftp:root@nas:srv/r"}}
	if err := rel.RemoveRepository(ctx); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("RemoveRepository of a relative sftp path: %v", err)
	}
	rest := &Client{Runner: local, Repo: Repo{Repository: "rest:http://u:" + secretHTTP + "@h/"}}
	if err := rest.RemoveRepository(ctx); err == nil {
		t.Error("RemoveRepository of rest accepted")
	} else {
		assertNoSecret(t, "rest removal error", err.Error())
	}

	if err := withRepo(c, notRepo).RemoveRepository(ctx); err == nil || !strings.Contains(err.Error(), "not a restic repository") {
		t.Errorf("RemoveRepository of a non-repository: %v", err)
	}
	if _, err := os.Stat(notRepo); err != nil {
		t.Errorf("non-repository was touched: %v", err)
	}
	for _, p := range []string{"/", "relative"} {
		if err := withRepo(c, p).RemoveRepository(ctx); err == nil {
			t.Errorf("RemoveRepository(%q) accepted", p)
		}
	}
	if err := c.RemoveRepository(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fake); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("repository still there: %v", err)
	}
	if err := c.RemoveRepository(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing it again: %v, want ErrNotFound", err)
	}
}

// Credentials given in the environment reach a rest-server URL for every
// restic version (0.14 cannot read RESTIC_REST_USERNAME/PASSWORD itself),
// only in restic's environment.
func TestWithRestCredentials(t *testing.T) {
	env := map[string]string{"RESTIC_REST_USERNAME": "backup", "RESTIC_REST_PASSWORD": "p@ss:w/rd"}
	for in, want := range map[string]string{
		"rest:http://10.0.0.5:8000/lab/":      "rest:http://backup:p%40ss%3Aw%2Frd@10.0.0.5:8000/lab/",
		"rest:https://u:x@10.0.0.5:8000/lab/": "rest:https://u:x@10.0.0.5:8000/lab/",
		"/srv/restic":                         "/srv/restic",
		"sftp:nas:/srv/restic":                "sftp:nas:/srv/restic",
	} {
		if got := withRestCredentials(in, env); got != want {
			t.Errorf("withRestCredentials(%q) = %q, want %q", in, got, want)
		}
	}
	if got := withRestCredentials("rest:http://h:8000/", map[string]string{"RESTIC_REST_USERNAME": "u"}); got != "rest:http://h:8000/" {
		t.Errorf("a username alone changed the URL: %q", got)
	}
}
