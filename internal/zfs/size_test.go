package zfs

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"512": 512, "64K": 65536, "64k": 65536, "10G": 10 << 30, "1.5T": 3 << 39, "16KiB": 16384, "2MB": 2 << 20, "none": 0,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ten", "-1G", "1Q", "G"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestSameValue(t *testing.T) {
	same := [][2]string{{"lz4", "lz4"}, {"10G", "10737418240"}, {"none", "0"}, {"OFF", "off"}, {"16K", "16384"}}
	for _, p := range same {
		if !SameValue(p[0], p[1]) {
			t.Errorf("%q and %q should be the same value", p[0], p[1])
		}
	}
	differ := [][2]string{{"lz4", "zstd"}, {"10G", "10737418241"}, {"LZ4", "lz4x"}, {"/mnt/a", "/mnt/b"}}
	for _, p := range differ {
		if SameValue(p[0], p[1]) {
			t.Errorf("%q and %q should differ", p[0], p[1])
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "64K", "1.5T", "none", "9E", "1e300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && s != "" && v > 0 && !SameValue(s, s) {
			t.Fatalf("%q not equal to itself", s)
		}
	})
}

func TestReadable(t *testing.T) {
	for _, c := range [][3]string{
		{"quota", "209715200", "200M"}, {"recordsize", "1048576", "1M"}, {"volblocksize", "16384", "16K"},
		{"volsize", "1610612736", "1536M"}, {"quota", "0", "none"}, {"quota", "1000", "1000"},
		{"compression", "1024", "1024"}, {"homelab:size", "1048576", "1048576"},
	} {
		if got := Readable(c[0], c[1]); got != c[2] {
			t.Errorf("Readable(%s, %s) = %s, want %s", c[0], c[1], got, c[2])
		}
		if !SameValue(Readable(c[0], c[1]), c[1]) {
			t.Errorf("Readable(%s, %s) does not mean the same value", c[0], c[1])
		}
	}
}
