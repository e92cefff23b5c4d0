package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	bmcredfish "github.com/bmc-toolbox/bmclib/v2/providers/redfish"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"
)

// HTTP transport limits; the operation's context bounds every request too.
const (
	redfishDialTimeout     = 30 * time.Second
	redfishTLSTimeout      = 15 * time.Second
	redfishResponseTimeout = 60 * time.Second
)

// bmclibDumpEnv is bmclib's DEBUG_BMCLIB (constants.EnvEnableDebug): set to
// "true", its Redfish client dumps every request and response to os.Stdout,
// the login's password and the session token included. A provider's stdout
// ends up in Terraform's log, so the variable is removed from the process's
// environment before every bmclib login, which is when bmclib reads it.
const bmclibDumpEnv = "DEBUG_BMCLIB"

// disableBMCLibDump removes DEBUG_BMCLIB from the environment (see
// bmclibDumpEnv) and says so through logger.
func disableBMCLibDump(logger func(string, map[string]any)) {
	if _, set := os.LookupEnv(bmclibDumpEnv); !set {
		return
	}
	_ = os.Unsetenv(bmclibDumpEnv)
	if logger != nil {
		logger("ignoring "+bmclibDumpEnv+": bmclib would print BMC passwords and session tokens to the provider's output", nil)
	}
}

// redfishDriver speaks Redfish over HTTPS.
type redfishDriver struct {
	cfg     Config
	portNum int
}

func newRedfishDriver(cfg Config) *redfishDriver {
	p := cfg.Port
	if p == 0 {
		p = DefaultRedfishPort
	}
	return &redfishDriver{cfg: cfg, portNum: p}
}

func (d *redfishDriver) protocol() string { return ProtocolRedfish }
func (d *redfishDriver) port() int        { return d.portNum }

func (d *redfishDriver) endpoint() string {
	return "https://" + net.JoinHostPort(d.cfg.Host, strconv.Itoa(d.portNum))
}

// httpClient returns a fresh HTTP client (bmclib sets its Timeout from the
// operation's deadline, so clients are not shared).
func (d *redfishDriver) httpClient() *http.Client {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.cfg.InsecureTLS {
		// Accept the self-signed certificates BMCs ship with, and the old
		// TLS versions of old BMCs: nothing is verified anyway.
		tlsCfg = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10} //nolint:gosec // asked for by the user
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: redfishDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   redfishTLSTimeout,
		ResponseHeaderTimeout: redfishResponseTimeout,
		DisableKeepAlives:     true,
	}}
}

// open starts an operation attempt; the logins happen on first use.
func (d *redfishDriver) open(ctx context.Context) (session, error) {
	return &redfishSession{d: d}, nil
}

// redfishSession holds the logins of one operation attempt: bmclib's (a
// Redfish session through its gofish driver) and, for what bmclib does not
// report, one of gofish directly.
type redfishSession struct {
	d  *redfishDriver
	bm *bmclib.Client
	gf *gofish.APIClient
}

func (s *redfishSession) protocol() string { return ProtocolRedfish }

func (s *redfishSession) bmclib(ctx context.Context) (*bmclib.Client, error) {
	if s.bm != nil {
		return s.bm, nil
	}
	d := s.d
	cl := bmclib.NewClient(d.cfg.Host, d.cfg.Username, d.cfg.Password,
		bmclib.WithRedfishPort(strconv.Itoa(d.portNum)),
		bmclib.WithHTTPClient(d.httpClient()))
	cl.Registry.Drivers = cl.Registry.For(bmcredfish.ProviderName)
	disableBMCLibDump(d.cfg.Logger)
	if err := cl.Open(ctx); err != nil {
		return nil, beforeCommand(err)
	}
	s.bm = cl
	return cl, nil
}

func (s *redfishSession) gofish(ctx context.Context) (*gofish.APIClient, error) {
	if s.gf != nil {
		return s.gf, nil
	}
	d := s.d
	api, err := gofish.ConnectContext(ctx, gofish.ClientConfig{
		Endpoint:   d.endpoint(),
		Username:   d.cfg.Username,
		Password:   d.cfg.Password,
		HTTPClient: d.httpClient(),
	})
	if err != nil {
		return nil, beforeCommand(err)
	}
	s.gf = api
	return api, nil
}

// close logs out of both sessions.
func (s *redfishSession) close(ctx context.Context) {
	if s.bm != nil {
		_ = s.bm.Close(ctx)
	}
	if s.gf != nil {
		s.gf.Logout()
	}
}

func (s *redfishSession) powerState(ctx context.Context) (string, bool, error) {
	cl, err := s.bmclib(ctx)
	if err != nil {
		return "", false, err
	}
	raw, err := cl.GetPowerState(ctx)
	if err != nil {
		return "", false, err
	}
	return normalizePowerState(raw)
}

// redfishPowerActions maps SetPower's actions to bmclib's, whose Redfish
// driver names them differently from its IPMI driver: bmclib "reset" sends
// ResetType PowerCycle (falling back to off and on) and "cycle" sends
// ForceRestart. "cycle" and "reset" here mean the same on both protocols.
var redfishPowerActions = map[string]string{
	"on":    "on",    // ResetType On, skipped when already on
	"off":   "off",   // ResetType ForceOff
	"cycle": "reset", // ResetType PowerCycle
	"reset": "cycle", // ResetType ForceRestart
}

func (s *redfishSession) setPower(ctx context.Context, action string) error {
	cl, err := s.bmclib(ctx)
	if err != nil {
		return err
	}
	ok, err := cl.SetPowerState(ctx, redfishPowerActions[action])
	if err == nil && !ok {
		err = fmt.Errorf("the BMC did not confirm power %s", action)
	}
	return err
}

func (s *redfishSession) setBootDevice(ctx context.Context, device string, persistent, efi bool) error {
	cl, err := s.bmclib(ctx)
	if err != nil {
		return err
	}
	ok, err := cl.SetBootDevice(ctx, device, persistent, efi)
	if err == nil && !ok {
		err = fmt.Errorf("the BMC did not confirm boot device %s", device)
	}
	return err
}

// system returns the BMC's only computer system.
func (s *redfishSession) system(ctx context.Context) (*redfish.ComputerSystem, error) {
	api, err := s.gofish(ctx)
	if err != nil {
		return nil, err
	}
	systems, err := api.Service.Systems()
	if err != nil {
		return nil, err
	}
	switch len(systems) {
	case 1:
		return systems[0], nil
	case 0:
		return nil, errors.New("the BMC reports no computer system")
	}
	return nil, fmt.Errorf("the BMC manages %d computer systems; only BMCs of one system are supported", len(systems))
}

// redfishBootDevices maps BootSourceOverrideTarget to BootOverride.Device.
var redfishBootDevices = map[redfish.BootSourceOverrideTarget]string{
	"":                                           "none",
	redfish.NoneBootSourceOverrideTarget:         "none",
	redfish.PxeBootSourceOverrideTarget:          "pxe",
	redfish.HddBootSourceOverrideTarget:          "disk",
	redfish.CdBootSourceOverrideTarget:           "cdrom",
	redfish.BiosSetupBootSourceOverrideTarget:    "bios",
	redfish.FloppyBootSourceOverrideTarget:       "floppy",
	redfish.UsbBootSourceOverrideTarget:          "usb",
	redfish.DiagsBootSourceOverrideTarget:        "diag",
	redfish.UtilitiesBootSourceOverrideTarget:    "utilities",
	redfish.UefiTargetBootSourceOverrideTarget:   "uefi_target",
	redfish.UefiShellBootSourceOverrideTarget:    "uefi_shell",
	redfish.UefiHTTPBootSourceOverrideTarget:     "uefi_http",
	redfish.UefiBootNextBootSourceOverrideTarget: "uefi_boot_next",
	redfish.SDCardBootSourceOverrideTarget:       "sd_card",
	redfish.RemoteDriveBootSourceOverrideTarget:  "remote_disk",
}

// redfishBootOverride converts the ComputerSystem's Boot properties.
func redfishBootOverride(b redfish.Boot) BootOverride {
	dev, ok := redfishBootDevices[b.BootSourceOverrideTarget]
	if !ok {
		dev = strings.ToLower(string(b.BootSourceOverrideTarget))
	}
	enabled := b.BootSourceOverrideEnabled
	return BootOverride{
		Device:     dev,
		Persistent: enabled == redfish.ContinuousBootSourceOverrideEnabled,
		EFI:        b.BootSourceOverrideMode == redfish.UEFIBootSourceOverrideMode,
		Active: dev != "none" && (enabled == redfish.OnceBootSourceOverrideEnabled ||
			enabled == redfish.ContinuousBootSourceOverrideEnabled),
	}
}

func (s *redfishSession) bootOverride(ctx context.Context) (BootOverride, error) {
	sys, err := s.system(ctx)
	if err != nil {
		return BootOverride{}, err
	}
	return redfishBootOverride(sys.Boot), nil
}

// inventory takes what bmclib's Inventory reports and fills the gaps from
// the ComputerSystem and Manager resources: bmclib only reports vendor,
// model and serial when all three are present, and only for the resource
// ids of the vendors it knows.
func (s *redfishSession) inventory(ctx context.Context) (Inventory, error) {
	cl, err := s.bmclib(ctx)
	if err != nil {
		return Inventory{}, err
	}
	var inv Inventory
	if dev, err := cl.Inventory(ctx); err == nil && dev != nil {
		inv.Vendor, inv.Model, inv.Serial = dev.Vendor, dev.Model, dev.Serial
		if dev.BMC != nil && dev.BMC.Firmware != nil {
			inv.BMCFirmware = dev.BMC.Firmware.Installed
		}
	}
	if inv.Vendor != "" && inv.Model != "" && inv.Serial != "" && inv.BMCFirmware != "" {
		return inv, nil
	}
	sys, err := s.system(ctx)
	if err != nil {
		return Inventory{}, err
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = strings.TrimSpace(v)
		}
	}
	fill(&inv.Vendor, sys.Manufacturer)
	fill(&inv.Model, sys.Model)
	fill(&inv.Serial, sys.SerialNumber)
	if inv.BMCFirmware == "" {
		managers, err := s.gf.Service.Managers()
		if err != nil {
			return Inventory{}, err
		}
		for _, m := range managers {
			if m.ManagerType == redfish.BMCManagerType && m.FirmwareVersion != "" {
				inv.BMCFirmware = m.FirmwareVersion
				break
			}
		}
		if inv.BMCFirmware == "" && len(managers) > 0 {
			inv.BMCFirmware = managers[0].FirmwareVersion
		}
	}
	return inv, nil
}

// classify tells what a Redfish failure means.
func (d *redfishDriver) classify(ctx context.Context, err error) (kind, string, bool) {
	var rfErr *common.Error
	if errors.As(err, &rfErr) {
		detail := redfishMessage(rfErr)
		switch code := rfErr.HTTPReturnedStatusCode; {
		case code == http.StatusUnauthorized:
			return kindAuth, "", false
		case code == http.StatusForbidden:
			return kindPrivilege, detail, false
		case code == http.StatusNotFound && isBeforeCommand(err):
			return kindNotRedfish, fmt.Sprintf("HTTP %d for the Redfish service root or its session service", code), false
		case code == http.StatusPreconditionFailed || code == http.StatusTooManyRequests ||
			code == http.StatusServiceUnavailable || code == http.StatusBadGateway ||
			code == http.StatusGatewayTimeout || code == http.StatusInternalServerError:
			return kindTransient, fmt.Sprintf("HTTP %d: %s", code, detail), false
		default:
			return kindOther, fmt.Sprintf("HTTP %d: %s", code, detail), false
		}
	}
	var (
		unknownAuthority *x509.UnknownAuthorityError
		hostnameErr      x509.HostnameError
		invalidCert      x509.CertificateInvalidError
		verifyErr        *tls.CertificateVerificationError
		recordErr        tls.RecordHeaderError
		jsonSyntax       *json.SyntaxError
		jsonType         *json.UnmarshalTypeError
		dnsErr           *net.DNSError
		netErr           net.Error
	)
	switch {
	case errors.As(err, &unknownAuthority):
		return kindTLS, unknownAuthority.Error(), false
	case errors.As(err, &hostnameErr):
		return kindTLS, hostnameErr.Error(), false
	case errors.As(err, &invalidCert):
		return kindTLS, invalidCert.Error(), false
	case errors.As(err, &verifyErr):
		return kindTLS, verifyErr.Error(), false
	case errors.As(err, &recordErr):
		return kindNotRedfish, "the port does not speak TLS", false
	case (errors.As(err, &jsonSyntax) || errors.As(err, &jsonType)) && isBeforeCommand(err):
		return kindNotRedfish, "the service root is not Redfish JSON", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return kindRefused, "", false
	case errors.As(err, &dnsErr):
		if dnsErr.IsTemporary || dnsErr.IsTimeout {
			return kindTransient, dnsErr.Error(), false
		}
		return kindOther, dnsErr.Error(), false
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(),
		strings.Contains(err.Error(), "Client.Timeout exceeded"):
		return kindNoAnswer, "", false
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return kindTransient, err.Error(), false
	}
	return kindOther, err.Error(), false
}

// redfishMessage is the most telling text of a Redfish error response.
func redfishMessage(e *common.Error) string {
	for _, info := range e.ExtendedInfos {
		if info.Message != "" {
			return info.Message
		}
	}
	if e.Message != "" {
		return e.Message
	}
	return e.Error()
}
