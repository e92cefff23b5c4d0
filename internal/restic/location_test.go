package restic

import "testing"

func TestSameLocation(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"/srv/r", "local:/srv/r", true},
		{"/srv/r", "/srv/r/", true},
		{"local:/srv/r/", "/srv//r", true},
		{"/srv/./r", "/srv/r", true},
		{"/srv/x/../r", "/srv/r", true},
		{"r", "local:r/", true},
		{"r", "./r", true},
		{"/srv/r", "/srv/r2", false},
		{"/srv/r", "r", false},
		{"/srv/r", "sftp:nas:/srv/r", false},
		{"sftp:backup@nas:/srv/r", "sftp:backup@nas:/srv/r/", true},
		{"sftp:backup@nas:/srv/r", "sftp://backup@nas//srv/r", true},
		{"sftp://backup@nas:2222//srv/r", "sftp://backup@nas:2222//srv/r/", true},
		{"sftp://backup@nas:2222//srv/r", "sftp://backup@nas//srv/r", false},
		{"sftp:backup@nas:/srv/r", "sftp:nas:/srv/r", false},
		{"sftp:backup@nas:srv/r", "sftp:backup@nas:/srv/r", false},
		{"sftp:backup@nas:/srv/r", "sftp:backup@NAS:/srv/r", false},
		{"rest:http://h:8000/repo", "rest:http://h:8000/repo/", true},
		{"rest:http://u:p@h:8000/repo/", "rest:http://h:8000/repo/", false},
		{"rest:http://h:8000/repo/", "rest:http://h:8000/other/", false},
		{"s3:s3.amazonaws.com/bucket", "s3:s3.amazonaws.com/bucket", true},
		{"s3:s3.amazonaws.com/bucket", "s3:s3.amazonaws.com/bucket/", false},
		{"b2:bucket:path", "b2:bucket:path2", false},
	} {
		if got := SameLocation(tc.a, tc.b); got != tc.same {
			t.Errorf("SameLocation(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if got := SameLocation(tc.b, tc.a); got != tc.same {
			t.Errorf("SameLocation(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.same)
		}
	}
}
