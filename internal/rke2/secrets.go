package rke2

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// SecretKeys are the config.yaml keys that always carry a secret (RKE2's
// and k3s's flags of these names). The token is set by the provider
// (token/token_wo); the others belong in sensitive_config.
var SecretKeys = []string{
	KeyToken, "agent-token", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-session-token",
}

// SecretSuffixes make a key secret-bearing unless its value is a file
// path (flags such as tls-private-key files name a file, not a secret).
var SecretSuffixes = []string{"-password", "-passwd", "-secret", "-secret-key", "-access-key", "-key", "-token"}

// credentials in a value: URL userinfo with a password
// (postgres://user:pass@host, https://user:pass@proxy), a MySQL DSN
// (user:pass@tcp(host:3306)/db), or a key=value DSN or flag list with password= (or client-secret= and the like).
var (
	mysqlDSNRe   = regexp.MustCompile(`^[^\s:@/]+:[^\s@]+@[a-z]*\(`)
	kvPasswordRe = regexp.MustCompile(`(?i)(^|[\s;&?,_-])(password|passwd|pwd|secret|token)=[^\s,;&]`)
)

// hasCredentials reports whether a value embeds a password.
func hasCredentials(v string) bool {
	v = strings.TrimSpace(v)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return mysqlDSNRe.MatchString(v) || kvPasswordRe.MatchString(v)
}

// isPath reports a value that names a file rather than holding a secret.
func isPath(v string) bool {
	v = strings.TrimSpace(v)
	return strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "~/")
}

// SecretReason says why a config.yaml key and value carry a secret, ""
// when they do not. known is false while the value is not known yet (at
// plan time, from another resource): then a key that may carry a secret
// is reported, since its value cannot be checked.
func SecretReason(key, value string, known bool) string {
	for _, k := range SecretKeys {
		if key == k {
			return "RKE2's `" + key + "` is a secret"
		}
	}
	for _, suf := range SecretSuffixes {
		if strings.HasSuffix(key, suf) {
			switch {
			case !known:
				return "a key ending in `" + suf + "` usually holds a secret, and its value is not known yet to check that it is a file path"
			case !isPath(value):
				return "a key ending in `" + suf + "` whose value is not a file path holds a secret"
			}
			return ""
		}
	}
	if key == "datastore-endpoint" && !known {
		return "`datastore-endpoint` usually embeds the database password, and its value is not known yet to check"
	}
	if known && hasCredentials(value) {
		return "the value embeds credentials (a password in a URL or connection string)"
	}
	return ""
}

// SecretKeysOf returns the keys of c that carry a secret by SecretReason,
// plus extra (the keys of the sensitive_config maps), sorted.
func SecretKeysOf(c Config, extra ...string) []string {
	set := map[string]bool{}
	for k, v := range c {
		s, isStr := v.(string)
		if isStr && SecretReason(k, s, true) != "" {
			set[k] = true
		}
		if !isStr {
			for _, e := range toList(v) {
				if SecretReason(k, e, true) != "" {
					set[k] = true
				}
			}
		}
	}
	for _, k := range extra {
		if _, ok := c[k]; ok {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
