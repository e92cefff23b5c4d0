package pxe

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeMACAcceptsCommonNotations(t *testing.T) {
	for in, want := range map[string]string{
		"aa:bb:cc:dd:ee:f0":   "aa:bb:cc:dd:ee:f0",
		"AA:BB:CC:DD:EE:F0":   "aa:bb:cc:dd:ee:f0",
		"AA-BB-CC-DD-EE-F0":   "aa:bb:cc:dd:ee:f0",
		"aabb.ccdd.eef0":      "aa:bb:cc:dd:ee:f0",
		"AABBCCDDEEF0":        "aa:bb:cc:dd:ee:f0",
		"  52:54:00:12:34:56": "52:54:00:12:34:56",
		"0:1b:21:a:b:c":       "00:1b:21:0a:0b:0c",
		"02-00-00-00-00-01":   "02:00:00:00:00:01",
	} {
		got, err := NormalizeMAC(in)
		if err != nil || got != want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestNormalizeMACRejectsWithAClearError(t *testing.T) {
	for in, reason := range map[string]string{
		"":                      "empty",
		"aa:bb:cc:dd:ee":        "5",
		"aa:bb:cc:dd:ee:ff:00":  "7",
		"aa:bb:cc-dd:ee:ff":     "mixes",
		"aa:bb:cc:dd:ee:fg":     `'g'`,
		"aa:bb:cc:dd:ee:fff":    "fff",
		"aa:bb::dd:ee:ff":       `""`,
		"aabb.ccdd.eef":         "eef",
		"aabbccddee":            "10 characters",
		"01-aa-bb-cc-dd-ee-f0":  "7",
		"00:00:00:00:00:00":     "all-zero",
		"ff:ff:ff:ff:ff:ff":     "multicast",
		"01:00:5e:00:00:01":     "multicast",
		"aa:bb:cc:dd:ee:ff\n00": "not",
	} {
		_, err := NormalizeMAC(in)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Attribute != "mac" || ve.Value != in {
			t.Errorf("NormalizeMAC(%q): want a ValidationError for mac, got %v", in, err)
			continue
		}
		if !strings.Contains(err.Error(), reason) || (in != "" && !strings.Contains(err.Error(), in[:5])) {
			t.Errorf("NormalizeMAC(%q) error %q should name the value and say %q", in, err, reason)
		}
	}
}

func TestNormalizePiSerial(t *testing.T) {
	for in, want := range map[string]string{
		"1a2b3c4d":         "1a2b3c4d",
		"1A2B3C4D":         "1a2b3c4d",
		"100000001a2b3c4d": "1a2b3c4d",
		"10000000AABBCCDD": "aabbccdd",
		"0x1a2b3c4d":       "1a2b3c4d",
		" 1a2b3c4d\n":      "1a2b3c4d",
	} {
		got, err := NormalizePiSerial(in)
		if err != nil || got != want {
			t.Errorf("NormalizePiSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1a2b3c4", "1a2b3c4d5", "1a2b3c4g", "100000001a2b3c4", "1a2b/../", "1a2b 3c4"} {
		_, err := NormalizePiSerial(in)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Attribute != "raspberrypi.serial" || !strings.Contains(err.Error(), "raspberrypi.serial") {
			t.Errorf("NormalizePiSerial(%q): want a ValidationError, got %v", in, err)
		}
	}
}
