package bmc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stmcginnis/gofish/redfish"
)

// fixture reads a recorded ipmitool output from testdata (see
// testdata/README.md for how they were recorded).
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestNormalizePowerState(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		state   string
		settled bool
	}{
		{fixture(t, "ipmitool_power_status_on.txt"), "on", true},
		{fixture(t, "ipmitool_power_status_off.txt"), "off", true},
		{"Chassis Power is on\n", "on", true},
		{"On", "on", true},
		{"Off", "off", true},
		{"PoweringOn", "on", false},
		{"PoweringOff", "off", false},
		{"Paused", "on", true},
		{" on \n", "on", true},
	} {
		state, settled, err := normalizePowerState(tc.raw)
		if err != nil || state != tc.state || settled != tc.settled {
			t.Errorf("normalizePowerState(%q) = %q, %v, %v; want %q, %v", tc.raw, state, settled, err, tc.state, tc.settled)
		}
	}
	for _, raw := range []string{"", "Unknown", "Chassis Power Control: Up/On", fixture(t, "err_wrong_password.txt")} {
		if state, _, err := normalizePowerState(raw); err == nil {
			t.Errorf("normalizePowerState(%q) = %q, want an error", raw, state)
		}
	}
}

func TestParseBootParam5Recorded(t *testing.T) {
	for file, want := range map[string]BootOverride{
		// Stock ipmi_sim keeps only the device selector: it reports every
		// override as not valid, one-time and legacy, so none is active.
		"bootparam5_none.txt":  {Device: "none"},
		"bootparam5_pxe.txt":   {Device: "pxe"},
		"bootparam5_disk.txt":  {Device: "disk"},
		"bootparam5_cdrom.txt": {Device: "cdrom"},
		"bootparam5_bios.txt":  {Device: "bios"},
		// ipmi_sim with the testbed's bootopts module keeps all five bytes,
		// as a BMC does.
		"bootopts_none.txt":                    {Device: "none"},
		"bootopts_pxe_once_legacy.txt":         {Device: "pxe", Active: true},
		"bootopts_pxe_persistent_efi.txt":      {Device: "pxe", Persistent: true, EFI: true, Active: true},
		"bootopts_disk_once_efi.txt":           {Device: "disk", EFI: true, Active: true},
		"bootopts_cdrom_persistent_legacy.txt": {Device: "cdrom", Persistent: true, Active: true},
		"bootopts_bios_once_legacy.txt":        {Device: "bios", Active: true},
		// The firmware cleared the valid bit when it booted from PXE.
		"bootopts_pxe_consumed_efi.txt": {Device: "pxe", EFI: true},
	} {
		o, err := parseBootParam5(fixture(t, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
		} else if o != want {
			t.Errorf("%s: %+v, want %+v", file, o, want)
		}
	}
}

func TestParseBootParam5Bits(t *testing.T) {
	out := func(data string) string {
		return "Boot parameter version: 1\nBoot parameter 5 is valid/unlocked\nBoot parameter data: " + data + "\n Boot Flags :\n"
	}
	for data, want := range map[string]BootOverride{
		"8004000000": {Device: "pxe", Active: true},                   // valid, once, legacy
		"c004000000": {Device: "pxe", Persistent: true, Active: true}, // valid, persistent
		"a008000000": {Device: "disk", EFI: true, Active: true},       // valid, once, EFI
		"e014000000": {Device: "cdrom", Persistent: true, EFI: true, Active: true},
		"8018000000": {Device: "bios", Active: true},
		"0004000000": {Device: "pxe"},                  // valid bit cleared: consumed
		"2004000000": {Device: "pxe", EFI: true},       // consumed EFI override
		"8000000000": {Device: "none"},                 // valid, but no device
		"803c000000": {Device: "floppy", Active: true}, // a selector outside the four we set
		"8028000000": {Device: "selector-0xa", Active: true},
	} {
		o, err := parseBootParam5(out(data))
		if err != nil || o != want {
			t.Errorf("data %s: %+v, %v; want %+v", data, o, err, want)
		}
	}
	for _, bad := range []string{"", "Boot parameter data: zz", "Boot parameter data: 80", fixture(t, "err_no_answer_v.txt")} {
		if o, err := parseBootParam5(bad); err == nil {
			t.Errorf("parseBootParam5(%q) = %+v, want an error", bad, o)
		}
	}
}

func TestParseFRURecorded(t *testing.T) {
	vendor, model, serial := parseFRU(fixture(t, "fru_print_0.txt"))
	if vendor != "Supermicro" || model != "SYS-5019S-M" || serial != "S123456X9A12345" {
		t.Fatalf("parseFRU = %q %q %q", vendor, model, serial)
	}
	// No FRU data on the BMC: nothing to report.
	if v, m, s := parseFRU(fixture(t, "fru_print_0_absent.txt")); v+m+s != "" {
		t.Fatalf("parseFRU(absent) = %q %q %q", v, m, s)
	}
}

func TestParseFRUFallbacksAndPlaceholders(t *testing.T) {
	out := ` Chassis Type          : Other
 Chassis Serial        : CHS-42
 Board Mfg             : ASRockRack
 Board Product         : X570D4U
 Board Serial          : To be filled by O.E.M.
 Product Manufacturer  : To Be Filled By O.E.M.
 Product Name          : Default string
 Product Serial        : 0123456789
`
	vendor, model, serial := parseFRU(out)
	if vendor != "ASRockRack" || model != "X570D4U" || serial != "CHS-42" {
		t.Fatalf("parseFRU = %q %q %q", vendor, model, serial)
	}
	// A second FRU block (another device) does not override the first.
	out2 := fixture(t, "fru_print_0.txt") + "\nFRU Device Description : PSU1 (ID 1)\n Product Manufacturer  : Delta\n"
	if vendor, _, _ := parseFRU(out2); vendor != "Supermicro" {
		t.Fatalf("vendor = %q", vendor)
	}
}

func TestParseMCInfoRecorded(t *testing.T) {
	if fw := parseMCInfo(fixture(t, "mc_info.txt")); fw != "9.08" {
		t.Fatalf("parseMCInfo = %q, want 9.08", fw)
	}
	if fw := parseMCInfo("nothing"); fw != "" {
		t.Fatalf("parseMCInfo(nothing) = %q", fw)
	}
}

func TestIPMITextKindRecorded(t *testing.T) {
	for file, want := range map[string]kind{
		"err_wrong_password_v.txt": kindAuth,
		"err_wrong_user_v.txt":     kindAuth,
		"err_no_answer_v.txt":      kindNoAnswer,
		// Without -v both failures print the same line: undecidable.
		"err_wrong_password.txt": kindOther,
		"err_no_answer.txt":      kindOther,
		"err_cipher17_v.txt":     kindOther,
	} {
		text := fixture(t, file)
		if got := ipmiTextKind(text); got != want {
			t.Errorf("%s: kind %d, want %d", file, got, want)
		}
		if !strings.Contains(text, ipmiNoSessionMarker) {
			t.Errorf("%s lacks %q", file, ipmiNoSessionMarker)
		}
	}
	if !ipmiCipherUnsupported(fixture(t, "err_cipher17_v.txt")) {
		t.Error("cipher suite 17 refusal not recognized")
	}
	if ipmiCipherUnsupported(fixture(t, "err_wrong_password_v.txt")) {
		t.Error("wrong password taken for an unsupported cipher suite")
	}
	for text, want := range map[string]kind{
		"Set Session Privilege Level to ADMINISTRATOR failed":                                kindPrivilege,
		"RAKP 2 message indicates an error : unauthorized role or privilege level requested": kindPrivilege,
		"Error in open session response message : insufficient resources for session":        kindTransient,
		"No response from remote controller":                                                 kindNoAnswer,
		"Get Device ID command failed: Invalid command":                                      kindOther,
	} {
		if got := ipmiTextKind(text); got != want {
			t.Errorf("%q: kind %d, want %d", text, got, want)
		}
	}
}

func TestRecordedBmclibConfirmations(t *testing.T) {
	// bmclib's ipmitool driver checks the command's output for these
	// prefixes before it reports success; the recordings show that
	// ipmitool 1.8.19 prints them.
	for file, prefix := range map[string]string{
		"ipmitool_power_on.txt":  "Chassis Power Control: Up/On",
		"ipmitool_power_off.txt": "Chassis Power Control: Down/Off",
		"bootdev_pxe.txt":        "Set Boot Device to pxe",
		"bootdev_disk.txt":       "Set Boot Device to disk",
		"bootdev_cdrom.txt":      "Set Boot Device to cdrom",
		"bootdev_bios.txt":       "Set Boot Device to bios",
	} {
		if got := fixture(t, file); !strings.HasPrefix(got, prefix) {
			t.Errorf("%s = %q, want prefix %q", file, got, prefix)
		}
	}
}

func TestRedfishBootOverride(t *testing.T) {
	for _, tc := range []struct {
		boot redfish.Boot
		want BootOverride
	}{
		{redfish.Boot{BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "UEFI"},
			BootOverride{Device: "pxe", EFI: true, Active: true}},
		{redfish.Boot{BootSourceOverrideTarget: "Hdd", BootSourceOverrideEnabled: "Continuous", BootSourceOverrideMode: "Legacy"},
			BootOverride{Device: "disk", Persistent: true, Active: true}},
		// Consumed: Disabled keeps the last target.
		{redfish.Boot{BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Disabled", BootSourceOverrideMode: "UEFI"},
			BootOverride{Device: "pxe", EFI: true}},
		{redfish.Boot{BootSourceOverrideTarget: "None", BootSourceOverrideEnabled: "Continuous"},
			BootOverride{Device: "none", Persistent: true}},
		{redfish.Boot{BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Once"},
			BootOverride{Device: "cdrom", Active: true}},
		{redfish.Boot{BootSourceOverrideTarget: "BiosSetup", BootSourceOverrideEnabled: "Once"},
			BootOverride{Device: "bios", Active: true}},
		{redfish.Boot{}, BootOverride{Device: "none"}},
		{redfish.Boot{BootSourceOverrideTarget: "Usb", BootSourceOverrideEnabled: "Once"},
			BootOverride{Device: "usb", Active: true}},
		{redfish.Boot{BootSourceOverrideTarget: "SomethingNew", BootSourceOverrideEnabled: "Once"},
			BootOverride{Device: "somethingnew", Active: true}},
	} {
		if got := redfishBootOverride(tc.boot); got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc.boot, got, tc.want)
		}
	}
}
