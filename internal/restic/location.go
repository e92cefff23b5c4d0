package restic

import (
	"path"
	"strings"
)

// CanonicalLocation returns a form of a repository location in which two
// spellings that restic opens as the same repository are equal. It follows
// how restic itself reads them:
//
//   - a path and local:PATH are the same local repository, and restic
//     cleans the path lexically (it joins it with file names), so trailing
//     and doubled slashes and "." or ".." elements do not matter;
//   - sftp:[user@]host:PATH and sftp://[user@]host[:port]/PATH are the same
//     server and directory; restic cleans the path (path.Clean);
//   - a rest: URL gets a trailing slash when it has none.
//
// Everything else is compared as written: user, host and port spellings
// ("" versus 22, upper-case host names) may mean different things to ssh or
// a proxy, and other backends are not parsed. The result is for comparing
// locations only; it is not meant to be passed to restic.
func CanonicalLocation(repo string) string {
	if loc, ok := parseSFTP(repo); ok {
		return "sftp " + loc.User + "@" + loc.Host + " port " + loc.Port + " " + path.Clean(loc.Path)
	}
	if u, ok := strings.CutPrefix(repo, "rest:"); ok {
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		return "rest:" + u
	}
	if p, ok := localPath(repo); ok && p != "" {
		return "local:" + path.Clean(p)
	}
	return repo
}

// SameLocation reports whether two repository strings name the same
// repository as restic reads them (see CanonicalLocation).
func SameLocation(a, b string) bool {
	return a == b || CanonicalLocation(a) == CanonicalLocation(b)
}
