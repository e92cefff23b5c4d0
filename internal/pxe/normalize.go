package pxe

import (
	"fmt"
	"strings"
)

// NormalizeMAC returns the Ethernet address s as lowercase aa:bb:cc:dd:ee:ff.
// It accepts colon or hyphen separated octets (a leading zero may be left
// out, as some tools print them: "0:1b:21:a:b:c"), Cisco's dotted form
// ("001b.21ab.cdef") and twelve bare hex digits, in either case. Multicast,
// broadcast and all-zero addresses are refused: no network card boots from
// one. Errors name the offending value.
func NormalizeMAC(s string) (string, error) {
	in := strings.TrimSpace(s)
	octets, reason := parseMAC(in)
	if reason == "" {
		switch {
		case octets == [6]byte{}:
			reason = "the all-zero address is not a network card's address"
		case octets[0]&1 == 1:
			reason = "it is a multicast (or broadcast) address, not a network card's address; check the first octet"
		}
	}
	if reason != "" {
		return "", &ValidationError{Attribute: "mac", Value: s, Reason: reason +
			` (want an Ethernet address such as "aa:bb:cc:dd:ee:ff", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff" or "aabbccddeeff")`}
	}
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x",
		octets[0], octets[1], octets[2], octets[3], octets[4], octets[5]), nil
}

// parseMAC reads the six octets of s, or says why it cannot.
func parseMAC(s string) (octets [6]byte, reason string) {
	if s == "" {
		return octets, "it is empty"
	}
	var groups []string
	var width int // digits per group; 0 allows one or two
	switch {
	case strings.ContainsAny(s, ":-"):
		sep := ":"
		if strings.Contains(s, "-") {
			if strings.Contains(s, ":") {
				return octets, "it mixes ':' and '-' separators"
			}
			sep = "-"
		}
		groups = strings.Split(s, sep)
		if len(groups) != 6 {
			return octets, fmt.Sprintf("it has %d %q-separated groups, not 6", len(groups), sep)
		}
	case strings.Contains(s, "."):
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			return octets, fmt.Sprintf("it has %d '.'-separated groups, not 3", len(parts))
		}
		for _, p := range parts {
			if len(p) != 4 {
				return octets, fmt.Sprintf("group %q in the dotted form must have 4 hex digits", p)
			}
			groups = append(groups, p[:2], p[2:])
		}
		width = 2
	default:
		if len(s) != 12 {
			return octets, fmt.Sprintf("it has %d characters; without separators an address has 12 hex digits", len(s))
		}
		for i := 0; i < 12; i += 2 {
			groups = append(groups, s[i:i+2])
		}
		width = 2
	}
	for i, g := range groups {
		if g == "" || len(g) > 2 || width != 0 && len(g) != width {
			return octets, fmt.Sprintf("octet %q is not one or two hex digits", g)
		}
		var v byte
		for j := 0; j < len(g); j++ {
			d, ok := hexDigit(g[j])
			if !ok {
				return octets, fmt.Sprintf("%q is not a hex digit", g[j])
			}
			v = v<<4 | d
		}
		octets[i] = v
	}
	return octets, ""
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// NormalizePiSerial returns a Raspberry Pi serial number as the 8 lowercase
// hex digits the Pi bootloader uses as its TFTP directory name ("1a2b3c4d").
// It also accepts the 16-digit form /proc/cpuinfo prints
// ("100000001a2b3c4d"), of which the last 8 digits count, and an optional
// "0x" prefix. Errors name the offending value.
func NormalizePiSerial(s string) (string, error) {
	in := strings.TrimSpace(s)
	if len(in) > 2 && (in[:2] == "0x" || in[:2] == "0X") {
		in = in[2:]
	}
	fail := func(reason string) (string, error) {
		return "", &ValidationError{Attribute: "raspberrypi.serial", Value: s, Reason: reason +
			` (want the 8 hex digits the Pi requests, e.g. "1a2b3c4d", or the 16-digit serial from /proc/cpuinfo)`}
	}
	if len(in) != 8 && len(in) != 16 {
		return fail(fmt.Sprintf("it has %d characters", len(in)))
	}
	for i := 0; i < len(in); i++ {
		if _, ok := hexDigit(in[i]); !ok {
			return fail(fmt.Sprintf("%q is not a hex digit", in[i]))
		}
	}
	return strings.ToLower(in[len(in)-8:]), nil
}
