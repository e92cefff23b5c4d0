package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"
)

// startTestRedfishSim starts a simulator logging to t and stops it at cleanup.
func startTestRedfishSim(t *testing.T, opts RedfishSimOptions) *RedfishSim {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := StartRedfishSim(opts)
	if err != nil {
		t.Fatalf("StartRedfishSim: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// rfClient is a tiny raw Redfish client for protocol-level tests. It trusts
// only the simulator's certificate.
type rfClient struct {
	t    *testing.T
	sim  *RedfishSim
	http *http.Client
}

func newRFClient(t *testing.T, s *RedfishSim) *rfClient {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM) {
		t.Fatal("CACertPEM holds no certificate")
	}
	return &rfClient{t: t, sim: s, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}}
}

type rfReply struct {
	status int
	header http.Header
	body   map[string]any
}

// do sends a request; auth is "" (none), "basic" (valid credentials),
// "basic:USER:PASS" or "token:TOKEN".
func (c *rfClient) do(method, path, auth string, body any, headers ...string) rfReply {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.sim.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case auth == "basic":
		req.SetBasicAuth(c.sim.User, c.sim.Password)
	case strings.HasPrefix(auth, "basic:"):
		parts := strings.SplitN(auth, ":", 3)
		req.SetBasicAuth(parts[1], parts[2])
	case strings.HasPrefix(auth, "token:"):
		req.Header.Set("X-Auth-Token", strings.TrimPrefix(auth, "token:"))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	r := rfReply{status: resp.StatusCode, header: resp.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &r.body); err != nil {
			c.t.Fatalf("%s %s: response is not JSON: %v: %s", method, path, err, data)
		}
	}
	return r
}

func (c *rfClient) expect(r rfReply, status int, what string) rfReply {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("%s: HTTP %d, want %d: %v", what, r.status, status, r.body)
	}
	return r
}

// errorID returns the MessageId of a Redfish error response.
func errorID(r rfReply) string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestRedfishSimAuthAndSessions(t *testing.T) {
	s := startTestRedfishSim(t, RedfishSimOptions{})
	c := newRFClient(t, s)
	if s.User != "admin" || s.Password != defaultRedfishSimPassword || s.Host != "127.0.0.1" || s.Port == 0 {
		t.Fatalf("unexpected defaults: %+v", s)
	}

	// The service root and the version document need no authentication.
	root := c.expect(c.do("GET", "/redfish/v1/", "", nil), 200, "service root")
	if root.body["RedfishVersion"] != RedfishSimVersion || root.header.Get("OData-Version") != "4.0" {
		t.Fatalf("service root: %v %v", root.body, root.header)
	}
	links := root.body["Links"].(map[string]any)["Sessions"].(map[string]any)
	if links["@odata.id"] != "/redfish/v1/SessionService/Sessions" {
		t.Fatalf("Links.Sessions = %v", links)
	}
	c.expect(c.do("GET", "/redfish/v1", "", nil), 200, "service root without slash")
	c.expect(c.do("GET", "/redfish", "", nil), 200, "version document")

	// Everything else needs credentials.
	r := c.expect(c.do("GET", "/redfish/v1/Systems", "", nil), 401, "no credentials")
	if !strings.Contains(errorID(r), "NoValidSession") || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without Redfish error or WWW-Authenticate: %v %v", r.body, r.header)
	}
	c.expect(c.do("GET", "/redfish/v1/Systems", "basic:admin:wrong", nil), 401, "wrong basic password")
	c.expect(c.do("GET", "/redfish/v1/Systems", "basic:root:secret", nil), 401, "wrong basic user")
	c.expect(c.do("GET", "/redfish/v1/Systems", "token:deadbeef", nil), 401, "unknown token")
	c.expect(c.do("GET", "/redfish/v1/Systems", "basic", nil), 200, "basic auth")

	// Session login as gofish does it.
	c.expect(c.do("POST", "/redfish/v1/SessionService/Sessions", "",
		map[string]string{"UserName": "admin", "Password": "nope"}), 401, "login with wrong password")
	c.expect(c.do("POST", "/redfish/v1/SessionService/Sessions", "",
		map[string]string{"UserName": "admin"}), 400, "login without password")
	login := c.expect(c.do("POST", "/redfish/v1/SessionService/Sessions", "",
		map[string]string{"UserName": "admin", "Password": defaultRedfishSimPassword}), 201, "login")
	token, loc := login.header.Get("X-Auth-Token"), login.header.Get("Location")
	if token == "" || !strings.HasPrefix(loc, "/redfish/v1/SessionService/Sessions/") {
		t.Fatalf("login headers: token %q location %q", token, loc)
	}
	if s.Sessions() != 1 {
		t.Fatalf("Sessions() = %d after login", s.Sessions())
	}
	c.expect(c.do("GET", "/redfish/v1/Systems/1", "token:"+token, nil), 200, "system with token")
	sess := c.expect(c.do("GET", loc, "token:"+token, nil), 200, "own session")
	if sess.body["UserName"] != "admin" {
		t.Fatalf("session resource: %v", sess.body)
	}
	coll := c.expect(c.do("GET", "/redfish/v1/SessionService/Sessions", "token:"+token, nil), 200, "sessions")
	if coll.body["Members@odata.count"] != float64(1) {
		t.Fatalf("session collection: %v", coll.body)
	}
	c.expect(c.do("GET", "/redfish/v1/SessionService", "token:"+token, nil), 200, "session service")
	c.expect(c.do("DELETE", loc, "token:"+token, nil), 204, "logout")
	c.expect(c.do("GET", "/redfish/v1/Systems/1", "token:"+token, nil), 401, "token after logout")
	if s.Sessions() != 0 {
		t.Fatalf("Sessions() = %d after logout", s.Sessions())
	}

	// The session limit refuses further logins, as real BMCs do.
	for i := 0; i < redfishMaxSessions; i++ {
		c.expect(c.do("POST", "/redfish/v1/SessionService/Sessions", "",
			map[string]string{"UserName": "admin", "Password": defaultRedfishSimPassword}), 201, "login")
	}
	r = c.expect(c.do("POST", "/redfish/v1/SessionService/Sessions", "",
		map[string]string{"UserName": "admin", "Password": defaultRedfishSimPassword}), 503, "login beyond the limit")
	if !strings.Contains(errorID(r), "SessionLimitExceeded") {
		t.Fatalf("session limit error: %v", r.body)
	}

	c.expect(c.do("GET", "/redfish/v1/Nothing", "basic", nil), 404, "unknown resource")
	r = c.expect(c.do("DELETE", "/redfish/v1/Systems/1", "basic", nil), 405, "DELETE of the system")
	if r.header.Get("Allow") == "" {
		t.Fatal("405 without Allow header")
	}
	if s.Requests() < 20 {
		t.Fatalf("Requests() = %d", s.Requests())
	}
}

func TestRedfishSimSystemPowerAndBoot(t *testing.T) {
	s := startTestRedfishSim(t, RedfishSimOptions{User: "ops", Password: "pw"})
	c := newRFClient(t, s)

	sys := c.expect(c.do("GET", "/redfish/v1/Systems/1", "basic", nil), 200, "system")
	for k, want := range map[string]any{
		"Id": "1", "Manufacturer": RedfishSimManufacturer, "Model": RedfishSimModel,
		"SerialNumber": RedfishSimSerial, "BiosVersion": RedfishSimBIOSVersion, "PowerState": "Off",
	} {
		if sys.body[k] != want {
			t.Errorf("system %s = %v, want %v", k, sys.body[k], want)
		}
	}
	boot := sys.body["Boot"].(map[string]any)
	if boot["BootSourceOverrideTarget"] != "None" || boot["BootSourceOverrideEnabled"] != "Disabled" ||
		len(boot["BootSourceOverrideTarget@Redfish.AllowableValues"].([]any)) != 5 {
		t.Fatalf("Boot = %v", boot)
	}
	etag := sys.header.Get("ETag")
	if etag == "" {
		t.Fatal("system without ETag")
	}

	patch := func(b map[string]any, headers ...string) rfReply {
		return c.do("PATCH", "/redfish/v1/Systems/1", "basic", map[string]any{"Boot": b}, headers...)
	}
	// Values outside @Redfish.AllowableValues, unknown and read-only
	// properties are refused.
	r := c.expect(patch(map[string]any{"BootSourceOverrideTarget": "Usb"}), 400, "unsupported target")
	if !strings.Contains(errorID(r), "PropertyValueNotInList") {
		t.Fatalf("error: %v", r.body)
	}
	c.expect(patch(map[string]any{"BootSourceOverrideEnabled": true}), 400, "wrong type")
	c.expect(patch(map[string]any{"BootOrder": []string{"a"}}), 400, "unknown Boot property")
	c.expect(c.do("PATCH", "/redfish/v1/Systems/1", "basic", map[string]any{"PowerState": "On"}), 400, "read-only property")
	c.expect(c.do("PATCH", "/redfish/v1/Systems/1", "basic", map[string]any{"Foo": 1}), 400, "unknown property")

	r = c.expect(patch(map[string]any{
		"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "Legacy",
	}, "If-Match", etag), 200, "PATCH Boot")
	if target, enabled, mode := s.BootOverride(); target != "Pxe" || enabled != "Once" || mode != "Legacy" {
		t.Fatalf("BootOverride() = %s %s %s", target, enabled, mode)
	}
	if r.header.Get("ETag") == etag {
		t.Fatal("ETag did not change with the resource")
	}
	// The old ETag no longer matches.
	c.expect(patch(map[string]any{"BootSourceOverrideTarget": "Hdd"}, "If-Match", etag), 412, "stale If-Match")

	reset := func(typ string) rfReply {
		return c.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "basic", map[string]any{"ResetType": typ})
	}
	c.expect(reset("PushPowerButton"), 400, "reset type not allowed")
	c.expect(c.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "basic", map[string]any{}), 400, "no reset type")

	// Powering on boots the machine, which consumes the Once override.
	c.expect(reset("On"), 204, "On")
	if !s.PowerOn() {
		t.Fatal("not on after Reset On")
	}
	if target, enabled, _ := s.BootOverride(); target != "Pxe" || enabled != "Disabled" {
		t.Fatalf("Once override not consumed by the boot: %s %s", target, enabled)
	}
	c.expect(reset("Nmi"), 204, "Nmi")
	c.expect(reset("ForceOff"), 204, "ForceOff")
	if s.PowerOn() {
		t.Fatal("on after ForceOff")
	}

	// A Continuous override survives boots.
	c.expect(patch(map[string]any{"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Continuous"}), 200, "Continuous")
	for _, typ := range []string{"On", "ForceRestart", "GracefulRestart", "PowerCycle"} {
		c.expect(reset(typ), 204, typ)
		if target, enabled, _ := s.BootOverride(); target != "Cd" || enabled != "Continuous" {
			t.Fatalf("Continuous override changed by %s: %s %s", typ, target, enabled)
		}
	}
	if s.Boots() != 5 {
		t.Fatalf("Boots() = %d, want 5", s.Boots())
	}
	c.expect(reset("GracefulShutdown"), 204, "GracefulShutdown")
	if s.PowerOn() {
		t.Fatal("on after GracefulShutdown")
	}

	// A restart consumes a Once override too; SimulateBoot does it out of band.
	c.expect(patch(map[string]any{"BootSourceOverrideTarget": "BiosSetup", "BootSourceOverrideEnabled": "Once"}), 200, "Once")
	s.SetPower(true)
	if _, enabled, _ := s.BootOverride(); enabled != "Once" {
		t.Fatal("SetPower consumed the override")
	}
	c.expect(reset("ForceRestart"), 204, "ForceRestart")
	if _, enabled, _ := s.BootOverride(); enabled != "Disabled" {
		t.Fatal("ForceRestart did not consume the Once override")
	}
	c.expect(patch(map[string]any{"BootSourceOverrideEnabled": "Once"}), 200, "Once again")
	s.SimulateBoot()
	if _, enabled, _ := s.BootOverride(); enabled != "Disabled" {
		t.Fatal("SimulateBoot did not consume the Once override")
	}
	s.SetPower(false)
	sys = c.expect(c.do("GET", "/redfish/v1/Systems/1", "basic", nil), 200, "system")
	if sys.body["PowerState"] != "Off" {
		t.Fatalf("PowerState after SetPower(false) = %v", sys.body["PowerState"])
	}

	mgr := c.expect(c.do("GET", "/redfish/v1/Managers/1", "basic", nil), 200, "manager")
	if mgr.body["FirmwareVersion"] != RedfishSimBMCFirmware || mgr.body["ManagerType"] != "BMC" {
		t.Fatalf("manager: %v", mgr.body)
	}
	c.expect(c.do("GET", "/redfish/v1/Managers", "basic", nil), 200, "managers")
	c.expect(c.do("GET", "/redfish/v1/Chassis", "basic", nil), 200, "chassis collection")
	c.expect(c.do("GET", "/redfish/v1/Chassis/1", "basic", nil), 200, "chassis")
}

// TestRedfishSimGofish drives the simulator with gofish itself, the library
// under bmclib's Redfish driver.
func TestRedfishSimGofish(t *testing.T) {
	s := startTestRedfishSim(t, RedfishSimOptions{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM)
	httpClient := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	_, err := gofish.Connect(gofish.ClientConfig{Endpoint: s.URL, Username: "admin", Password: "bad", HTTPClient: httpClient})
	var rfErr *common.Error
	if !errors.As(err, &rfErr) || rfErr.HTTPReturnedStatusCode != 401 {
		t.Fatalf("login with a wrong password: %v, want a 401", err)
	}

	api, err := gofish.Connect(gofish.ClientConfig{Endpoint: s.URL, Username: s.User, Password: s.Password, HTTPClient: httpClient})
	if err != nil {
		t.Fatalf("gofish.Connect: %v", err)
	}
	if sess, err := api.GetSession(); err != nil || sess.ID == "" || sess.Token == "" {
		t.Fatalf("GetSession: %+v %v", sess, err)
	}
	systems, err := api.Service.Systems()
	if err != nil || len(systems) != 1 {
		t.Fatalf("Systems: %v %v", systems, err)
	}
	sys := systems[0]
	if sys.SerialNumber != RedfishSimSerial || sys.BIOSVersion != RedfishSimBIOSVersion || sys.PowerState != redfish.OffPowerState {
		t.Fatalf("system: %+v", sys)
	}
	if len(sys.SupportedResetTypes) != len(rfResetTypes) {
		t.Fatalf("SupportedResetTypes = %v", sys.SupportedResetTypes)
	}
	if err := sys.SetBoot(redfish.Boot{
		BootSourceOverrideTarget:  redfish.PxeBootSourceOverrideTarget,
		BootSourceOverrideEnabled: redfish.OnceBootSourceOverrideEnabled,
		BootSourceOverrideMode:    redfish.UEFIBootSourceOverrideMode,
	}); err != nil {
		t.Fatalf("SetBoot: %v", err)
	}
	if err := sys.Reset(redfish.OnResetType); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if target, enabled, mode := s.BootOverride(); target != "Pxe" || enabled != "Disabled" || mode != "UEFI" || !s.PowerOn() {
		t.Fatalf("after SetBoot+Reset: %s %s %s power %v", target, enabled, mode, s.PowerOn())
	}
	if err := sys.Reset("Bogus"); err == nil {
		t.Fatal("Reset accepted a type outside the allowable values")
	}
	managers, err := api.Service.Managers()
	if err != nil || len(managers) != 1 || managers[0].FirmwareVersion != RedfishSimBMCFirmware {
		t.Fatalf("Managers: %v %v", managers, err)
	}
	chassis, err := api.Service.Chassis()
	if err != nil || len(chassis) != 1 || chassis[0].SerialNumber != RedfishSimSerial {
		t.Fatalf("Chassis: %v %v", chassis, err)
	}
	api.Logout()
	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d sessions left after Logout", n)
	}
}

// newTestBmclib returns a bmclib client restricted to its gofish (Redfish)
// driver that trusts the simulator's certificate.
func newTestBmclib(s *RedfishSim, user, pass string) *bmclib.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM)
	cl := bmclib.NewClient(s.Host, user, pass,
		bmclib.WithRedfishPort(strings.TrimPrefix(s.URL[strings.LastIndex(s.URL, ":"):], ":")),
		bmclib.WithSecureTLS(pool))
	cl.Registry.Drivers = cl.Registry.For("gofish")
	return cl
}

// TestRedfishSimBmclib checks everything bmclib v2.3.5's Redfish driver does
// against the simulator, from Compatible to Inventory.
func TestRedfishSimBmclib(t *testing.T) {
	s := startTestRedfishSim(t, RedfishSimOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl := newTestBmclib(s, s.User, s.Password)
	cl.FilterForCompatible(ctx)
	if len(cl.Registry.Drivers) != 1 {
		t.Fatalf("gofish driver not compatible with the simulator (drivers left: %d)", len(cl.Registry.Drivers))
	}
	if err := cl.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer cl.Close(ctx)

	state, err := cl.GetPowerState(ctx)
	if err != nil || state != "Off" {
		t.Fatalf("GetPowerState = %q, %v", state, err)
	}
	for _, step := range []struct{ action, want string }{
		{"on", "On"}, {"cycle", "On"}, {"reset", "On"}, {"off", "Off"}, {"on", "On"},
	} {
		// ("soft" is left out: bmclib v2.3.5 reports its GracefulShutdown as
		// a failure even when the BMC accepted it.)
		if ok, err := cl.SetPowerState(ctx, step.action); err != nil || !ok {
			t.Fatalf("SetPowerState(%s) = %v, %v", step.action, ok, err)
		}
		if state, err := cl.GetPowerState(ctx); err != nil || state != step.want {
			t.Fatalf("after %s: power %q, %v; want %s", step.action, state, err, step.want)
		}
	}

	for _, tc := range []struct {
		device              string
		persistent, efi     bool
		target, enabled, md string
	}{
		{"pxe", false, true, "Pxe", "Once", "UEFI"},
		{"disk", true, false, "Hdd", "Continuous", "Legacy"},
		{"cdrom", false, false, "Cd", "Once", "Legacy"},
		{"bios", true, true, "BiosSetup", "Continuous", "UEFI"},
	} {
		if ok, err := cl.SetBootDevice(ctx, tc.device, tc.persistent, tc.efi); err != nil || !ok {
			t.Fatalf("SetBootDevice(%s): %v %v", tc.device, ok, err)
		}
		if target, enabled, mode := s.BootOverride(); target != tc.target || enabled != tc.enabled || mode != tc.md {
			t.Fatalf("SetBootDevice(%s, %v, %v) gave %s %s %s", tc.device, tc.persistent, tc.efi, target, enabled, mode)
		}
		o, err := cl.GetBootDeviceOverride(ctx)
		if err != nil || string(o.Device) != tc.device || o.IsPersistent != tc.persistent || o.IsEFIBoot != tc.efi {
			t.Fatalf("GetBootDeviceOverride = %+v, %v", o, err)
		}
	}

	dev, err := cl.Inventory(ctx)
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	if dev.Vendor != RedfishSimManufacturer || dev.Model != RedfishSimModel || dev.Serial != RedfishSimSerial {
		t.Fatalf("Inventory identity: %q %q %q", dev.Vendor, dev.Model, dev.Serial)
	}
	if dev.BMC == nil || dev.BMC.Firmware == nil || dev.BMC.Firmware.Installed != RedfishSimBMCFirmware {
		t.Fatalf("Inventory BMC: %+v", dev.BMC)
	}
	if dev.BIOS == nil || dev.BIOS.Firmware == nil || dev.BIOS.Firmware.Installed != RedfishSimBIOSVersion {
		t.Fatalf("Inventory BIOS: %+v", dev.BIOS)
	}
	if len(dev.Enclosures) != 1 || dev.Enclosures[0].Serial != RedfishSimSerial {
		t.Fatalf("Inventory enclosures: %+v", dev.Enclosures)
	}
	if err := cl.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := s.Sessions(); n != 0 {
		t.Fatalf("bmclib left %d sessions open", n)
	}

	// Wrong credentials: the login is refused with 401.
	bad := newTestBmclib(s, s.User, "wrong")
	err = bad.Open(ctx)
	var rfErr *common.Error
	if !errors.As(err, &rfErr) || rfErr.HTTPReturnedStatusCode != 401 {
		t.Fatalf("Open with a wrong password: %v, want a 401", err)
	}
}

func TestRedfishSimStop(t *testing.T) {
	s, err := StartRedfishSim(RedfishSimOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	c := newRFClient(t, s)
	c.expect(c.do("GET", "/redfish/v1/", "", nil), 200, "service root")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	_, err = c.http.Get(s.URL + "/redfish/v1/")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("request after Stop: %v, want connection refused", err)
	}
}

// TestRedfishSimServePersistent runs the blocking variant and restarts it on
// the same state file: the machine and its certificate survive.
func TestRedfishSimServePersistent(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "bmc", "redfish.json")
	serve := func() (*RedfishSim, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ServeRedfishSim(ctx, RedfishSimOptions{Logf: t.Logf}, statePath) }()
		var st *redfishSimState
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			if st, err = loadRedfishSimState(statePath); err == nil && st != nil && st.URL != "" {
				if c, err := http.Get(strings.Replace(st.URL, "https", "http", 1)); err == nil {
					c.Body.Close() // a plain HTTP request to a TLS port gets 400: it is listening
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("simulator did not come up: state %+v, %v", st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		s := &RedfishSim{URL: st.URL, User: "admin", Password: defaultRedfishSimPassword, CACertPEM: []byte(st.CertPEM)}
		return s, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeRedfishSim: %v", err)
			}
		}
	}

	s, stop := serve()
	c := newRFClient(t, s)
	c.expect(c.do("PATCH", "/redfish/v1/Systems/1", "basic", map[string]any{"Boot": map[string]any{
		"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "Legacy",
	}}), 200, "PATCH Boot")
	c.expect(c.do("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "basic",
		map[string]any{"ResetType": "On"}), 204, "Reset On")
	firstCert := s.CACertPEM
	stop()
	info, err := os.Stat(statePath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v (the file holds the TLS key and must be private)", info, err)
	}

	s2, stop2 := serve()
	defer stop2()
	if !bytes.Equal(s2.CACertPEM, firstCert) {
		t.Fatal("certificate changed across a restart")
	}
	c2 := newRFClient(t, s2) // trusts only the certificate of the first run
	sys := c2.expect(c2.do("GET", "/redfish/v1/Systems/1", "basic", nil), 200, "system after restart")
	boot := sys.body["Boot"].(map[string]any)
	if sys.body["PowerState"] != "On" || boot["BootSourceOverrideTarget"] != "Hdd" ||
		boot["BootSourceOverrideEnabled"] != "Continuous" || boot["BootSourceOverrideMode"] != "Legacy" {
		t.Fatalf("state not kept across a restart: %v %v", sys.body["PowerState"], boot)
	}
}
