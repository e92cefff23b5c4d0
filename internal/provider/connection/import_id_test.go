package connection

import "testing"

func TestParseImportID(t *testing.T) {
	for in, want := range map[string]ImportID{
		"nas:tank/media":        {Host: "nas", Name: "tank/media"},
		"127.0.0.1:2222:tank/a": {Host: "127.0.0.1", Port: 2222, Name: "tank/a"},
		"[fd00::5]:tank":        {Host: "fd00::5", Name: "tank"},
		"[fd00::5]:22:tank/x:y": {Host: "fd00::5", Port: 22, Name: "tank/x:y"},
		"nas:tank/odd:name":     {Host: "nas", Name: "tank/odd:name"},
		"nas.lan:70000:tank/x":  {Host: "nas.lan", Name: "70000:tank/x"},
		// Plain names: the provider's default host.
		"tank":         {Name: "tank"},
		"tank/media":   {Name: "tank/media"},
		"tank/odd:one": {Name: "tank/odd:one"},
	} {
		got, err := ParseImportID(in)
		if err != nil || got != want {
			t.Errorf("ParseImportID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":tank", "nas:", "[fd00::5"} {
		if _, err := ParseImportID(bad); err == nil {
			t.Errorf("ParseImportID(%q) accepted", bad)
		}
	}
}
