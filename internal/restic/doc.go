// Package restic drives the restic backup program on a host through a
// remote.Runner: it builds restic command lines, runs them, parses what they
// print and classifies their failures. It imports nothing from Terraform.
//
// Secrets never reach a command line, which other users of the host can read
// in the process list: the repository string (a rest: URL may carry HTTP
// credentials), the repository password and the backend credentials of
// Repo.Env travel on the command's standard input to a small constant POSIX
// sh wrapper that reads them with `IFS= read -r`, exports them as
// RESTIC_REPOSITORY, RESTIC_PASSWORD and the Env names, and execs restic.
// Only restic's own arguments (subcommand, flags, -o options, paths) are in
// argv, and only those are logged.
//
// Two restic generations are supported and tested on recorded output of
// both: the current release (0.18) and Debian 12's 0.14. They differ in how
// they fail and report:
//
//   - restic 0.17 and later exit 10 for a missing repository, 11 for a
//     locked one and 12 for a wrong password; 0.14 exits 1 for all of them,
//     so they are told apart by restic's messages. A missing repository and
//     an unreachable backend both print "Is there a repository at the
//     following location?" on 0.14: the cause decides.
//   - With --json, 0.18 prints its fatal error as a JSON "exit_error"
//     message on stderr; 0.14 prints plain text.
//   - The backup summary of 0.14 names the snapshot by its short ID; the
//     full ID is looked up.
//   - 0.18 retries an unreachable rest/S3/... backend with backoff for
//     minutes before failing (0.14 fails at once): bound calls with a
//     context deadline. A command cut off by the context while restic was
//     retrying a connection error is still reported as IsUnreachable.
//
// A missing repository is reported with an error matching ErrNotFound under
// errors.Is, and only a definite one: restic reached the backend and said
// that nothing is there. Every other failure (unreachable host or backend,
// wrong password, locked repository, refused credentials) keeps its own
// predicate (IsUnreachable, IsWrongPassword, IsLocked) and never matches it.
package restic
