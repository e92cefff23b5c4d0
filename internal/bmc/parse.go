package bmc

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// normalizePowerState maps what bmclib returns (ipmitool's raw output such
// as "Chassis Power is on\n", or a Redfish PowerState such as "On") to "on"
// or "off". Redfish's transitional states map to the state being reached,
// with settled false.
func normalizePowerState(raw string) (state string, settled bool, err error) {
	s := strings.ToLower(raw)
	switch {
	case strings.Contains(s, "chassis power is on"):
		return "on", true, nil
	case strings.Contains(s, "chassis power is off"):
		return "off", true, nil
	}
	switch strings.TrimSpace(s) {
	case "on", "paused":
		return "on", true, nil
	case "off":
		return "off", true, nil
	case "poweringon":
		return "on", false, nil
	case "poweringoff":
		return "off", false, nil
	}
	return "", false, fmt.Errorf("unrecognized power state %q", oneLine(raw, 200))
}

// ipmiBootDevices names the boot device selector of IPMI boot parameter 5
// (data byte 2, bits 5:2), as ipmitool's "chassis bootdev" names them.
var ipmiBootDevices = map[byte]string{
	0x0: "none",
	0x1: "pxe",
	0x2: "disk",
	0x3: "safe", // hard drive, safe mode
	0x4: "diag",
	0x5: "cdrom",
	0x6: "bios",
	0x7: "remote_floppy",
	0x8: "remote_cdrom",
	0x9: "remote_primary",
	0xb: "remote_disk",
	0xf: "floppy",
}

// parseBootParam5 parses "ipmitool chassis bootparam get 5". It reads the
// raw "Boot parameter data" bytes (IPMI v2.0 table 28-14) rather than the
// descriptive lines, which vary between ipmitool versions:
//
//	data 1 bit 7: boot flags valid, bit 6: persistent, bit 5: EFI
//	data 2 bits 5:2: boot device selector
//
// An override is active while the valid bit is set and a device is selected;
// firmware clears the valid bit when it honours a one-time override.
func parseBootParam5(out string) (BootOverride, error) {
	var data []byte
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(key) != "Boot parameter data" {
			continue
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(val), ""))
		if err != nil {
			return BootOverride{}, fmt.Errorf("parsing boot parameter data %q: %w", strings.TrimSpace(val), err)
		}
		data = b
		break
	}
	if data == nil {
		return BootOverride{}, fmt.Errorf("no boot parameter data in ipmitool output %q", oneLine(out, 300))
	}
	if len(data) < 2 {
		return BootOverride{}, fmt.Errorf("boot parameter 5 has %d data bytes, want 5", len(data))
	}
	sel := (data[1] >> 2) & 0x0f
	dev, ok := ipmiBootDevices[sel]
	if !ok {
		dev = fmt.Sprintf("selector-0x%x", sel)
	}
	valid := data[0]&0x80 != 0
	return BootOverride{
		Device:     dev,
		Persistent: data[0]&0x40 != 0,
		EFI:        data[0]&0x20 != 0,
		Active:     valid && dev != "none",
	}, nil
}

// fruPlaceholders are values vendors leave in FRU fields they did not fill.
var fruPlaceholders = []string{
	"to be filled by o.e.m.", "to be filled by oem", "default string", "system serial number",
	"system product name", "system manufacturer", "not specified", "not available", "unknown",
	"none", "n/a", "na", "0123456789", "1234567890", "0", "00000000", "ffffffff", ".",
}

// fruValue returns v, or "" when it is a placeholder.
func fruValue(v string) string {
	v = strings.TrimSpace(v)
	l := strings.ToLower(v)
	for _, p := range fruPlaceholders {
		if l == p {
			return ""
		}
	}
	return v
}

// parseFRU extracts vendor, model and serial from "ipmitool fru print 0".
// The product area describes the system; the board and chassis areas fill
// in what it lacks. A BMC without FRU data prints "Device not present";
// that yields empty fields, not an error.
func parseFRU(out string) (vendor, model, serial string) {
	f := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		if _, seen := f[key]; !seen {
			f[key] = fruValue(val)
		}
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := f[k]; v != "" {
				return v
			}
		}
		return ""
	}
	vendor = first("Product Manufacturer", "Board Mfg")
	model = first("Product Name", "Board Product", "Product Part Number")
	serial = first("Product Serial", "Chassis Serial", "Board Serial")
	return vendor, model, serial
}

// parseMCInfo extracts the BMC firmware revision from "ipmitool mc info".
func parseMCInfo(out string) string {
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "Firmware Revision" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// ipmitool messages (with -v) and what they mean. Without -v, ipmitool
// prints only "Unable to establish IPMI v2 / RMCP+ session" for a wrong
// password and for a BMC that does not answer alike.
var (
	ipmiAuthMarkers = []string{
		"RAKP 2 HMAC is invalid", // wrong password
		"unauthorized name",      // unknown user
	}
	ipmiPrivilegeMarkers = []string{
		"Set Session Privilege Level to",
		"unauthorized role or privilege level",
		"invalid role",
	}
	ipmiNoAnswerMarkers = []string{
		"Get Auth Capabilities error",
		"No response from remote controller",
		"Error issuing Get Channel Authentication Capabilities request",
	}
	ipmiCipherMarkers = []string{
		"invalid authentication algorithm",
		"invalid integrity algorithm",
		"invalid confidentiality algorithm",
		"no matching cipher suite",
		"Invalid cipher suite",
		"Unsupported cipher suite",
	}
	ipmiTransientMarkers = []string{
		"insufficient resources", // session table full
		"Node busy",
	}
	// ipmiNoSessionMarker is what ipmitool prints whenever it could not open
	// a session: the command did not reach the BMC.
	ipmiNoSessionMarker = "Unable to establish"
)

func containsAnyFold(text string, markers []string) bool {
	l := strings.ToLower(text)
	for _, m := range markers {
		if strings.Contains(l, strings.ToLower(m)) {
			return true
		}
	}
	return false
}

// ipmiTextKind classifies ipmitool's output of a failed run.
func ipmiTextKind(text string) kind {
	switch {
	case containsAnyFold(text, ipmiAuthMarkers):
		return kindAuth
	case containsAnyFold(text, ipmiPrivilegeMarkers):
		return kindPrivilege
	case containsAnyFold(text, ipmiNoAnswerMarkers):
		return kindNoAnswer
	case containsAnyFold(text, ipmiTransientMarkers):
		return kindTransient
	}
	return kindOther
}

// ipmiCipherUnsupported reports whether ipmitool failed because the BMC
// does not offer the requested cipher suite.
func ipmiCipherUnsupported(text string) bool {
	return containsAnyFold(text, ipmiCipherMarkers)
}
