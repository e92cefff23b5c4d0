package restic

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// sftpLocation is where an sftp: repository lives.
type sftpLocation struct {
	User, Host, Port string
	Path             string
}

// parseSFTP parses restic's two sftp syntaxes: sftp:[user@]host:/path and
// sftp://[user@]host[:port]//path (the URL form's path is relative to the
// login directory unless it starts with a second slash, as in restic).
func parseSFTP(repo string) (sftpLocation, bool) {
	rest, ok := strings.CutPrefix(repo, "sftp:")
	if !ok {
		return sftpLocation{}, false
	}
	if strings.HasPrefix(rest, "//") {
		u, err := url.Parse(repo)
		if err != nil || u.Host == "" {
			return sftpLocation{}, false
		}
		loc := sftpLocation{Host: u.Hostname(), Port: u.Port(), Path: strings.TrimPrefix(u.Path, "/")}
		if u.User != nil {
			loc.User = u.User.Username()
		}
		return loc, loc.Path != ""
	}
	var loc sftpLocation
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		loc.User, rest = rest[:at], rest[at+1:]
	}
	host, p, ok := strings.Cut(rest, ":")
	if strings.HasPrefix(host, "[") { // [ipv6]:/path
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return sftpLocation{}, false
		}
		host, p, ok = rest[1:end], rest[end+2:], true
	}
	if !ok || host == "" || p == "" {
		return sftpLocation{}, false
	}
	loc.Host, loc.Path = host, p
	return loc, true
}

// sftpServerCommand is the command that starts an sftp session on the
// repository's server, as restic starts it: the sftp.command option when
// set, otherwise ssh with the location's user and port and sftp.args.
func (c *Client) sftpServerCommand(loc sftpLocation) string {
	if cmd := c.Repo.Options["sftp.command"]; cmd != "" {
		return cmd
	}
	args := []string{"ssh"}
	if loc.Port != "" {
		args = append(args, "-p", loc.Port)
	}
	if loc.User != "" {
		args = append(args, "-l", loc.User)
	}
	if extra := strings.Fields(c.Repo.Options["sftp.args"]); len(extra) > 0 {
		args = append(args, extra...)
	}
	args = append(args, loc.Host, "-s", "sftp")
	return remote.Join(args)
}

// sftpDirs are the directories of a restic repository, removed after their
// files; data/ has 256 subdirectories named by the first byte of the pack ID.
func sftpRemoveBatch(p string) string {
	var b strings.Builder
	q := sftpQuote
	// Commands prefixed with "-" may fail (an empty directory has no files
	// to remove); the final rmdir of the repository itself may not.
	for _, d := range []string{"keys", "locks", "snapshots", "index"} {
		fmt.Fprintf(&b, "-rm %s\n-rmdir %s\n", q(path.Join(p, d)+"/")+"*", q(path.Join(p, d)))
	}
	for i := 0; i < 256; i++ {
		d := path.Join(p, "data", fmt.Sprintf("%02x", i))
		fmt.Fprintf(&b, "-rm %s\n-rmdir %s\n", q(d+"/")+"*", q(d))
	}
	fmt.Fprintf(&b, "-rmdir %s\nrm %s\nrmdir %s\n", q(path.Join(p, "data")), q(path.Join(p, "config")), q(p))
	return b.String()
}

// sftpCheckBatch fails unless p has a restic repository's layout.
func sftpCheckBatch(p string) string {
	var b strings.Builder
	for _, f := range []string{"config", "keys", "data", "snapshots"} {
		fmt.Fprintf(&b, "ls %s\n", sftpQuote(path.Join(p, f)))
	}
	return b.String()
}

// sftpQuote quotes an argument of an sftp batch command (double quotes,
// backslash escapes, as sftp's own parser reads them).
func sftpQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// removeSFTPRepository deletes an sftp repository with OpenSSH's sftp
// client on the runner's host, through the same ssh command restic uses,
// after checking that the path holds a restic repository. It needs no shell
// on the server: only the sftp subsystem restic itself needs.
func (c *Client) removeSFTPRepository(ctx context.Context, loc sftpLocation) error {
	if _, err := checkRepoPath(loc.Path); err != nil {
		return err
	}
	server := c.sftpServerCommand(loc)
	target := RedactRepository(c.Repo.Repository)
	run := func(batch string) (remote.Result, error) {
		return c.Runner.Run(ctx, remote.Command("sftp", "-q", "-b", "-", "-D", server).WithStdin(strings.NewReader(batch)))
	}
	if _, err := run(sftpCheckBatch(loc.Path)); err != nil {
		var exit *remote.ExitError
		if errors.As(err, &exit) && strings.Contains(exit.Stderr, "not found") {
			return fmt.Errorf("restic: refusing to remove %s: it is not a restic repository (no config, keys/, data/ and snapshots/): %w", target, err)
		}
		return fmt.Errorf("restic: checking sftp repository %s from %s: %w", target, c.Runner, err)
	}
	if _, err := run(sftpRemoveBatch(loc.Path)); err != nil {
		return fmt.Errorf("removing sftp repository %s from %s: %w", target, c.Runner, err)
	}
	return nil
}
