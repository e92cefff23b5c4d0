package restic

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-homelab/terraform-provider-homelab/internal/remote"
)

// DefaultResticPath is the restic program run when Repo.ResticPath is empty.
const DefaultResticPath = "restic"

// Repo says where a repository is and how to open it.
type Repo struct {
	// Repository is the location in restic's syntax: a path, local:PATH,
	// sftp:user@host:/path, rest:http(s)://[user:password@]host:port/name/,
	// s3:..., b2:..., and so on. It is passed as RESTIC_REPOSITORY on
	// standard input (a rest: URL may hold HTTP credentials).
	Repository string
	// Password is the repository password. It reaches restic as
	// RESTIC_PASSWORD through standard input, never through argv, and is
	// never logged. It may not contain line breaks.
	Password string
	// PasswordFile is a file holding the password on the host running
	// restic (--password-file); an alternative to Password.
	PasswordFile string
	// Env holds backend credentials and settings (AWS_ACCESS_KEY_ID,
	// B2_ACCOUNT_KEY, RESTIC_CACHE_DIR, ...). The values are treated as
	// secrets and passed like the password. Names must be upper case
	// ([A-Z_][A-Z0-9_]*); RESTIC_REPOSITORY and RESTIC_PASSWORD are set from
	// the fields above.
	Env map[string]string
	// Options are restic's extended options (-o key=value), e.g.
	// "sftp.command". They are not secret: they appear in argv and logs.
	Options map[string]string
	// ResticPath is the restic program, DefaultResticPath when empty.
	ResticPath string
}

// Client runs restic on the host Runner reaches, against Repo.
type Client struct {
	Runner remote.Runner
	Repo   Repo
	// Logger, when set, receives one message per restic command: the host,
	// restic's argv, the repository with any URL password masked, the exit
	// status and the duration. It never receives a secret.
	Logger func(msg string, fields map[string]any)
}

// Config is a repository's configuration.
type Config struct {
	// ID is the repository ID (64 hex digits).
	ID string `json:"id"`
	// Version is the repository format version (1 or 2).
	Version int `json:"version"`
}

// Filter selects snapshots. Every field that is set must match.
type Filter struct {
	// Host is the hostname the snapshot was taken on.
	Host string
	// Tags must all be on the snapshot.
	Tags []string
	// Paths must all be among the snapshot's paths (absolute paths).
	Paths []string
}

// Snapshot is one snapshot of a repository.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
}

// CheckResult is the outcome of `restic check`.
type CheckResult struct {
	// OK is true when restic found no errors.
	OK bool
	// Summary is restic's conclusion ("no errors were found") or, when OK
	// is false, the errors it reported.
	Summary string
}

// wrapperScript runs restic with secrets taken from standard input: $1 is
// the number of NAME=VALUE lines to read and export, the rest is restic's
// argv. `export "$kv"` assigns the value verbatim (no expansion or
// evaluation); names were validated by the caller. What follows the lines
// on standard input is left for restic.
const wrapperScript = `n=$1
shift
while [ "$n" -gt 0 ]; do
	IFS= read -r kv || { echo "restic wrapper: missing secrets on standard input" >&2; exit 125; }
	export "$kv"
	n=$((n - 1))
done
exec "$@"`

// isRepoScript exits 0 when $1 has the layout of a restic repository and 3
// when it does not (or does not exist).
const isRepoScript = `if [ -f "$1/config" ] && [ -d "$1/keys" ] && [ -d "$1/data" ] && [ -d "$1/snapshots" ]; then
	exit 0
fi
exit 3`

// removeRepoScript removes the repository at $1 after checking its layout
// (exit 3 when it is not a repository, 4 when nothing is there).
const removeRepoScript = `[ -e "$1" ] || [ -L "$1" ] || exit 4
if ! { [ -f "$1/config" ] && [ -d "$1/keys" ] && [ -d "$1/data" ] && [ -d "$1/snapshots" ]; }; then
	echo "$1 is not a restic repository" >&2
	exit 3
fi
rm -rf -- "$1"`

// Exit statuses of the scripts above.
const (
	exitNotRepository = 3
	exitNoSuchPath    = 4
)

var (
	envNameRE   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	optionKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	versionRE   = regexp.MustCompile(`(?m)^restic (\d+\.\d+\.\d+\S*)`)
)

// backendPrefixes are restic's non-local location schemes.
var backendPrefixes = []string{"sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"}

// argv returns restic's arguments for a subcommand, with the global
// options of the repository first.
func (c *Client) argv(args []string) []string {
	prog := c.Repo.ResticPath
	if prog == "" {
		prog = DefaultResticPath
	}
	out := []string{prog}
	keys := make([]string, 0, len(c.Repo.Options))
	for k := range c.Repo.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, "-o", k+"="+c.Repo.Options[k])
	}
	if c.Repo.PasswordFile != "" {
		out = append(out, "--password-file", c.Repo.PasswordFile)
	}
	return append(out, args...)
}

// secrets returns the NAME=VALUE lines the wrapper exports, after
// validating them. Errors name the variable, never its value. Only
// `restic version` runs without a repository.
func (c *Client) secrets(needRepo bool) ([]string, error) {
	if c.Repo.Repository == "" && needRepo {
		return nil, errors.New("restic: no repository given")
	}
	if c.Repo.Password != "" && c.Repo.PasswordFile != "" {
		return nil, errors.New("restic: set either a password or a password file, not both")
	}
	vars := map[string]string{}
	if c.Repo.Repository != "" {
		vars["RESTIC_REPOSITORY"] = withRestCredentials(c.Repo.Repository, c.Repo.Env)
	}
	if c.Repo.Password != "" {
		vars["RESTIC_PASSWORD"] = c.Repo.Password
	}
	for k, v := range c.Repo.Env {
		if !envNameRE.MatchString(k) {
			return nil, fmt.Errorf("restic: environment variable name %q must match %s", k, envNameRE)
		}
		if k == "RESTIC_REPOSITORY" || k == "RESTIC_PASSWORD" {
			return nil, fmt.Errorf("restic: set %s through the repository and password, not the environment", k)
		}
		vars[k] = v
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	lines := make([]string, 0, len(names))
	for _, k := range names {
		if strings.ContainsAny(vars[k], "\n\r\x00") {
			return nil, fmt.Errorf("restic: the value of %s contains a line break or NUL, which cannot be passed", k)
		}
		lines = append(lines, k+"="+vars[k])
	}
	for k := range c.Repo.Options {
		if !optionKeyRE.MatchString(k) {
			return nil, fmt.Errorf("restic: option name %q must match %s", k, optionKeyRE)
		}
	}
	return lines, nil
}

// command builds the runner command for restic with args.
func (c *Client) command(args []string) (remote.Cmd, error) {
	lines, err := c.secrets(args[0] != "version")
	if err != nil {
		return remote.Cmd{}, err
	}
	argv := c.argv(args)
	cmd := remote.Script(wrapperScript, append([]string{strconv.Itoa(len(lines))}, argv...)...)
	stdin := ""
	if len(lines) > 0 {
		stdin = strings.Join(lines, "\n") + "\n"
	}
	return cmd.WithStdin(strings.NewReader(stdin)), nil
}

// run runs restic with args and turns a failure into an *Error.
func (c *Client) run(ctx context.Context, args ...string) (remote.Result, error) {
	op := args[0]
	if op == "cat" && len(args) > 1 {
		op += " " + args[1]
	}
	if c.Runner == nil {
		return remote.Result{}, errors.New("restic: no runner")
	}
	cmd, err := c.command(args)
	if err != nil {
		return remote.Result{}, err
	}
	start := time.Now()
	res, err := c.Runner.Run(ctx, cmd)
	if err == nil {
		c.log(args, res.ExitCode, time.Since(start), nil)
		return res, nil
	}
	e := newError(op, c.Runner.String(), res, err, ctx.Err() != nil)
	e.Message = c.redact(e.Message)
	if e.Err != nil {
		e.Err = redactedError{err: e.Err, msg: c.redact(e.Err.Error())}
	}
	c.log(args, e.Code, time.Since(start), e)
	return res, e
}

// redact replaces the secrets restic was given (the repository password,
// rest-server credentials, in the URL too) in what restic printed: an error
// message may quote its repository URL, which may hold the credentials the
// provider put there (withRestCredentials).
func (c *Client) redact(s string) string {
	secrets := []string{c.Repo.Password, c.Repo.Env["RESTIC_REST_PASSWORD"]}
	if p := c.Repo.Env["RESTIC_REST_PASSWORD"]; p != "" {
		secrets = append(secrets, url.UserPassword("x", p).String()[2:])
	}
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// redactedError is an error whose message had its secrets replaced; errors.Is
// and As still see the original.
type redactedError struct {
	err error
	msg string
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// newError describes a failed restic command: res and err are what the
// runner returned, cancelled tells whether the context had ended.
func newError(op, target string, res remote.Result, err error, cancelled bool) *Error {
	e := &Error{Op: op, Target: target, Code: -1, Err: err}
	if code, ok := remote.ExitCode(err); ok {
		e.Code = code
		e.kind = classify(code, res.Stderr)
		e.Message = truncate(errorMessage(res.Stderr), maxMessage)
		if e.Message == "" {
			e.Message = truncate(strings.TrimSpace(string(res.Stdout)), maxMessage)
		}
	} else if cancelled {
		// Cut off by the context: restic may have been retrying its backend.
		if k, msg := classifyPartial(res.Stderr); k != kindOther {
			e.kind, e.Message = k, msg
		}
	}
	return e
}

func (c *Client) log(args []string, code int, d time.Duration, err *Error) {
	if c.Logger == nil {
		return
	}
	fields := map[string]any{
		"host":       c.Runner.String(),
		"command":    remote.Join(c.argv(args)),
		"repository": RedactRepository(c.Repo.Repository),
		"exit_code":  code,
		"duration":   d.Round(time.Millisecond).String(),
	}
	msg := "restic command succeeded"
	if err != nil {
		msg = "restic command failed"
		fields["error"] = err.kind.String()
	}
	c.Logger(msg, fields)
}

// RedactRepository returns repo with the password of a URL location
// (rest:http://user:password@host/) replaced by "***", for messages.
func RedactRepository(repo string) string {
	scheme, rest, ok := strings.Cut(repo, ":")
	if !ok || !strings.Contains(rest, "://") {
		return repo
	}
	u, err := url.Parse(rest)
	if err != nil {
		// Do not echo what may be a mangled credential.
		if strings.Contains(rest, "@") {
			return scheme + ":<unparsable URL>"
		}
		return repo
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
		return scheme + ":" + strings.Replace(u.String(), "%2A%2A%2A@", "***@", 1)
	}
	return repo
}

// Version returns the restic version on the host, e.g. "0.18.1".
func (c *Client) Version(ctx context.Context) (string, error) {
	res, err := c.run(ctx, "version")
	if err != nil {
		return "", err
	}
	return parseVersion(res.Stdout)
}

// Config returns the repository's configuration (`restic cat config`).
func (c *Client) Config(ctx context.Context) (Config, error) {
	res, err := c.run(ctx, "cat", "config", "--json")
	if err != nil {
		return Config{}, err
	}
	return parseConfig(res.Stdout)
}

// Init creates the repository (`restic init`) and returns its
// configuration. A repository that exists already is an error matching
// IsAlreadyExists.
func (c *Client) Init(ctx context.Context) (Config, error) {
	if _, err := c.run(ctx, "init"); err != nil {
		return Config{}, err
	}
	return c.Config(ctx)
}

// Snapshots lists the snapshots matching f, oldest first.
func (c *Client) Snapshots(ctx context.Context, f Filter) ([]Snapshot, error) {
	args, err := snapshotArgs(f)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, args...)
	if err != nil {
		return nil, err
	}
	return parseSnapshots(res.Stdout)
}

func snapshotArgs(f Filter) ([]string, error) {
	args := []string{"snapshots", "--json"}
	if f.Host != "" {
		args = append(args, "--host", f.Host)
	}
	if len(f.Tags) > 0 {
		if err := checkTags(f.Tags); err != nil {
			return nil, err
		}
		// One --tag with a comma-separated list: snapshots with all of them.
		args = append(args, "--tag", strings.Join(f.Tags, ","))
	}
	for _, p := range f.Paths {
		if p == "" {
			return nil, errors.New("restic: empty path in snapshot filter")
		}
		args = append(args, "--path", p)
	}
	return args, nil
}

func checkTags(tags []string) error {
	for _, t := range tags {
		if t == "" || strings.Contains(t, ",") {
			return fmt.Errorf("restic: tag %q is empty or contains a comma", t)
		}
	}
	return nil
}

// Backup backs up paths (on the host restic runs on) into a new snapshot,
// leaving out the exclude patterns, and returns the snapshot's full ID.
// host names the snapshot's host (restic uses the machine's hostname when it
// is empty). When some files could not be read, restic still creates the
// snapshot: its ID is returned along with an error matching IsIncomplete.
func (c *Client) Backup(ctx context.Context, paths, exclude, tags []string, host string) (string, error) {
	if len(paths) == 0 {
		return "", errors.New("restic: nothing to back up")
	}
	args := []string{"backup", "--json"}
	if host != "" {
		args = append(args, "--host", host)
	}
	if err := checkTags(tags); err != nil {
		return "", err
	}
	for _, t := range tags {
		args = append(args, "--tag", t)
	}
	for _, e := range exclude {
		args = append(args, "--exclude", e)
	}
	for _, p := range paths {
		if p == "" {
			return "", errors.New("restic: empty backup path")
		}
	}
	args = append(append(args, "--"), paths...)
	res, runErr := c.run(ctx, args...)
	if runErr != nil && !IsIncomplete(runErr) {
		return "", runErr
	}
	id, err := parseBackupSummary(res.Stdout)
	if err != nil {
		if runErr != nil {
			return "", runErr
		}
		return "", err
	}
	if len(id) < 64 {
		// restic 0.14 reports the short ID.
		full, err := c.resolveSnapshot(ctx, id)
		if err != nil {
			return "", fmt.Errorf("looking up the full ID of snapshot %s: %w", id, err)
		}
		id = full
	}
	return id, runErr
}

// resolveSnapshot returns the full ID of the snapshot with a short ID.
func (c *Client) resolveSnapshot(ctx context.Context, short string) (string, error) {
	res, err := c.run(ctx, "snapshots", "--json", short)
	if err != nil {
		return "", err
	}
	snaps, err := parseSnapshots(res.Stdout)
	if err != nil {
		return "", err
	}
	full := ""
	for _, s := range snaps {
		if strings.HasPrefix(s.ID, short) {
			if full != "" && full != s.ID {
				return "", fmt.Errorf("snapshot ID %s is ambiguous", short)
			}
			full = s.ID
		}
	}
	if full == "" {
		return "", fmt.Errorf("restic listed no snapshot %s", short)
	}
	return full, nil
}

// Check verifies the repository (`restic check`); readDataSubset, when not
// empty, also reads that part of the data ("1/5", "10%", "100%"). Errors
// that check finds in the repository give OK false, not an error: an error
// means check could not run (locked, wrong password, unreachable, ...).
func (c *Client) Check(ctx context.Context, readDataSubset string) (CheckResult, error) {
	args := []string{"check"}
	if readDataSubset != "" {
		args = append(args, "--read-data-subset="+readDataSubset)
	}
	res, err := c.run(ctx, args...)
	return parseCheck(res, err)
}

// Unlock removes stale locks: those of restic processes that are gone
// (same host, dead pid) or have not refreshed their lock for 30 minutes.
// Locks of running processes stay.
func (c *Client) Unlock(ctx context.Context) error {
	_, err := c.run(ctx, "unlock")
	return err
}

// localPath returns the filesystem path of a local repository location.
func localPath(repo string) (string, bool) {
	if p, ok := strings.CutPrefix(repo, "local:"); ok {
		return p, true
	}
	for _, pre := range backendPrefixes {
		if strings.HasPrefix(repo, pre) {
			return "", false
		}
	}
	return repo, true
}

// checkRepoPath validates a repository path for the layout check and for
// removal: absolute, clean and not the root directory.
func checkRepoPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("restic: repository path %q is not absolute", p)
	}
	p = path.Clean(p)
	if p == "/" {
		return "", errors.New("restic: the root directory is not a repository path")
	}
	return p, nil
}

// repoPath is the path argument of IsRepository, or the local path of the
// client's repository when it is empty.
func (c *Client) repoPath(p string) (string, error) {
	if p == "" {
		local, ok := localPath(c.Repo.Repository)
		if !ok {
			return "", fmt.Errorf("restic: %s is not a local path on %s; to inspect an sftp repository, use a client whose runner is the sftp host and pass the repository's path there",
				RedactRepository(c.Repo.Repository), c.Runner)
		}
		p = local
	}
	return checkRepoPath(p)
}

// IsRepository reports whether the directory path on the runner's host has
// the layout of a restic repository: a config file and keys/, data/ and
// snapshots/ directories. An empty path means the client's repository,
// which must then be a local path. The repository of an sftp: location is
// checked with a client whose runner is the sftp host, passing its path. A
// missing directory is not a repository; it is not an error.
func (c *Client) IsRepository(ctx context.Context, p string) (bool, error) {
	if c.Runner == nil {
		return false, errors.New("restic: no runner")
	}
	p, err := c.repoPath(p)
	if err != nil {
		return false, err
	}
	_, err = c.Runner.Run(ctx, remote.Script(isRepoScript, p))
	if code, ok := remote.ExitCode(err); ok && code == exitNotRepository {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking for a restic repository at %s on %s: %w", p, c.Runner, err)
	}
	return true, nil
}

// RemoveRepository deletes the client's repository with everything in it.
// The repository must be a local path on the runner's host or an sftp:
// location (removed through the sftp subsystem, from the runner's host, with
// the ssh command restic uses), and it must have a repository's layout (see
// IsRepository): anything else is refused. When nothing is at a local path,
// the error matches ErrNotFound.
func (c *Client) RemoveRepository(ctx context.Context) error {
	if c.Runner == nil {
		return errors.New("restic: no runner")
	}
	if loc, ok := parseSFTP(c.Repo.Repository); ok {
		return c.removeSFTPRepository(ctx, loc)
	}
	local, ok := localPath(c.Repo.Repository)
	if !ok {
		return fmt.Errorf("restic: refusing to remove %s: only a repository on a local path of the runner's host (%s) or an sftp repository can be removed",
			RedactRepository(c.Repo.Repository), c.Runner)
	}
	p, err := checkRepoPath(local)
	if err != nil {
		return err
	}
	_, err = c.Runner.Run(ctx, remote.Script(removeRepoScript, p))
	if code, ok := remote.ExitCode(err); ok && code == exitNoSuchPath {
		return fmt.Errorf("restic: cannot remove %s on %s: %w", p, c.Runner, ErrNotFound)
	}
	if code, ok := remote.ExitCode(err); ok && code == exitNotRepository {
		return fmt.Errorf("restic: refusing to remove %s on %s: it is not a restic repository (no config, keys/, data/ and snapshots/)", p, c.Runner)
	}
	if err != nil {
		return fmt.Errorf("removing repository %s on %s: %w", p, c.Runner, err)
	}
	return nil
}

// withRestCredentials returns a rest-server repository with the credentials
// of RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD in its URL, when env has
// both and the URL has none. restic reads those variables itself only from
// 0.17 on; Debian's 0.14 needs them in the URL. The URL with credentials
// only ever reaches restic's environment (never argv, state or logs), so the
// repository users write, and the provider stores, carries no password on
// any restic version.
func withRestCredentials(repo string, env map[string]string) string {
	user, pass := env["RESTIC_REST_USERNAME"], env["RESTIC_REST_PASSWORD"]
	rest, ok := strings.CutPrefix(repo, "rest:")
	if !ok || user == "" || pass == "" {
		return repo
	}
	u, err := url.Parse(rest)
	if err != nil || u.User != nil || u.Host == "" {
		return repo
	}
	u.User = url.UserPassword(user, pass)
	return "rest:" + u.String()
}
