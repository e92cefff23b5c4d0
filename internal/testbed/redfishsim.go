package testbed

// This file is a Redfish BMC SIMULATOR. No real Redfish service can run on
// the test machines (no vendor BMC, no container images, no PyPI emulators),
// so the simulator implements, from the DMTF Redfish schemas, exactly the
// subset that the provider's BMC client (bmclib v2.3.5 with its gofish
// v0.20.0 driver) uses:
//
//   - GET /redfish and the service root /redfish/v1/ (no authentication, as
//     the specification requires), with Links.Sessions;
//   - the SessionService: POST .../Sessions logs in (201, X-Auth-Token and
//     Location headers), GET lists or reads sessions, DELETE logs out;
//     sessions expire after SessionTimeout seconds of inactivity;
//   - HTTP basic authentication as the alternative to a session token;
//   - the Systems collection with one ComputerSystem (/redfish/v1/Systems/1)
//     with PowerState, Boot (BootSourceOverrideTarget/Enabled/Mode with their
//     @Redfish.AllowableValues), PATCH of Boot (with If-Match against the
//     ETag), and the #ComputerSystem.Reset action;
//   - the Managers collection with one BMC manager (FirmwareVersion) and the
//     Chassis collection with one chassis, at the ids that bmclib's
//     Inventory recognizes (Supermicro-style "1").
//
// The machine behind it is simulated too: a reset that boots the machine
// (On from Off, ForceRestart, GracefulRestart, PowerCycle) consumes a
// BootSourceOverrideEnabled=Once override right away, as a real BIOS does
// when it honours it; Continuous stays. SimulateBoot does the same for a
// boot that the BMC did not initiate.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity the simulated machine reports. Tests compare inventories with them.
const (
	RedfishSimManufacturer = "Homelab Simulated Systems"
	RedfishSimModel        = "RFSIM-1U"
	RedfishSimSerial       = "RFSIM0000001"
	RedfishSimBIOSVersion  = "2.4.1"
	RedfishSimBMCFirmware  = "1.12.3"
	// RedfishSimVersion is the RedfishVersion of the service root.
	RedfishSimVersion = "1.17.0"
)

// Defaults of RedfishSimOptions.
const (
	defaultRedfishSimUser     = "admin"
	defaultRedfishSimPassword = "redfishpw4Vn8Qz"
	defaultRedfishSimAddr     = "127.0.0.1:0"
)

const (
	// redfishSessionTimeout is the SessionService's SessionTimeout (seconds).
	redfishSessionTimeout = 1800
	// redfishMaxSessions is how many sessions may be open at once; a login
	// beyond it is refused as real BMCs do, which also catches clients that
	// leak sessions.
	redfishMaxSessions = 8
	redfishStopTimeout = 5 * time.Second
)

// Resource paths of the simulated service.
const (
	rfRoot            = "/redfish/v1"
	rfSessionService  = rfRoot + "/SessionService"
	rfSessions        = rfSessionService + "/Sessions"
	rfSystems         = rfRoot + "/Systems"
	rfSystem          = rfSystems + "/1"
	rfResetAction     = rfSystem + "/Actions/ComputerSystem.Reset"
	rfManagers        = rfRoot + "/Managers"
	rfManager         = rfManagers + "/1"
	rfChassisColl     = rfRoot + "/Chassis"
	rfChassis         = rfChassisColl + "/1"
	rfMessageRegistry = "Base.1.15"
)

// Allowable values the simulator advertises and enforces.
var (
	rfBootTargets  = []string{"None", "Pxe", "Hdd", "Cd", "BiosSetup"}
	rfBootEnabled  = []string{"Disabled", "Once", "Continuous"}
	rfBootModes    = []string{"UEFI", "Legacy"}
	rfResetTypes   = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart", "PowerCycle", "Nmi"}
	rfReadOnlyProp = map[string]bool{
		"@odata.id": true, "@odata.type": true, "@odata.context": true, "@odata.etag": true,
		"Id": true, "Name": true, "SystemType": true, "Manufacturer": true, "Model": true,
		"SerialNumber": true, "UUID": true, "BiosVersion": true, "PowerState": true,
		"Status": true, "Actions": true, "Links": true,
	}
)

// RedfishSimOptions configures StartRedfishSim and ServeRedfishSim.
type RedfishSimOptions struct {
	// User and Password are the only valid credentials ("admin"/"redfishpw4Vn8Qz"
	// when empty).
	User, Password string
	// Addr is the TCP listen address ("127.0.0.1:0" when empty: a free port).
	Addr string
	// Logf, when set, receives one line per request (method, path, status;
	// never bodies or credentials) and server errors.
	Logf func(string, ...any)
}

// RedfishSim is a running Redfish BMC simulator serving HTTPS with a
// self-signed certificate.
type RedfishSim struct {
	// URL is the service's base URL, "https://127.0.0.1:PORT".
	URL string
	// Host and Port are the address the simulator listens on.
	Host string
	Port int
	// User and Password are the valid credentials.
	User, Password string
	// CACertPEM is the self-signed server certificate (it is its own CA):
	// trust it to verify the connection instead of skipping verification.
	CACertPEM []byte

	mu        sync.Mutex
	machine   redfishMachine
	uuid      string
	sessions  map[string]*redfishSession // by token
	tokens    []string                   // every token issued, for leak checks
	nextSess  int
	statePath string
	keyPEM    []byte // persisted with the state so that a restart keeps the certificate
	logf      func(string, ...any)

	requests atomic.Int64
	srv      *http.Server
	served   chan struct{}
	stopped  stopOnce
}

// redfishMachine is the simulated machine's mutable state.
type redfishMachine struct {
	PowerState  string `json:"power_state"`  // "On" or "Off"
	BootTarget  string `json:"boot_target"`  // BootSourceOverrideTarget
	BootEnabled string `json:"boot_enabled"` // BootSourceOverrideEnabled
	BootMode    string `json:"boot_mode"`    // BootSourceOverrideMode
	Boots       int    `json:"boots"`        // boots simulated so far
	Generation  int    `json:"generation"`   // bumped on every change; the ETag
}

// redfishSession is one logged-in session.
type redfishSession struct {
	id       string
	user     string
	lastUsed time.Time
}

// redfishSimState is what ServeRedfishSim keeps in its state file, so that a
// restarted simulator is the same machine with the same certificate.
type redfishSimState struct {
	URL     string         `json:"url"`
	UUID    string         `json:"uuid"`
	Machine redfishMachine `json:"machine"`
	CertPEM string         `json:"cert_pem"`
	KeyPEM  string         `json:"key_pem"`
}

// StartRedfishSim starts the simulator in this process and returns once it
// accepts connections. The machine starts powered off with no boot override.
// The caller must Stop it, e.g. in t.Cleanup.
func StartRedfishSim(opts RedfishSimOptions) (*RedfishSim, error) {
	return startRedfishSim(opts, "")
}

// ServeRedfishSim runs the simulator until ctx is done, for a detached
// process such as the demo lab's. Its state (power, boot override,
// certificate) is loaded from and saved to statePath as JSON after every
// change, so a restarted simulator continues where it left off; the file's
// "url" and "cert_pem" fields tell clients where it listens and which
// certificate it presents.
func ServeRedfishSim(ctx context.Context, opts RedfishSimOptions, statePath string) error {
	if statePath == "" {
		return errors.New("redfish simulator: empty state path")
	}
	s, err := startRedfishSim(opts, statePath)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.served:
	}
	return s.Stop()
}

func startRedfishSim(opts RedfishSimOptions, statePath string) (*RedfishSim, error) {
	if opts.User == "" {
		opts.User = defaultRedfishSimUser
	}
	if opts.Password == "" {
		opts.Password = defaultRedfishSimPassword
	}
	if opts.Addr == "" {
		opts.Addr = defaultRedfishSimAddr
	}
	s := &RedfishSim{
		User:      opts.User,
		Password:  opts.Password,
		sessions:  map[string]*redfishSession{},
		statePath: statePath,
		logf:      opts.Logf,
		served:    make(chan struct{}),
		machine: redfishMachine{
			PowerState:  "Off",
			BootTarget:  "None",
			BootEnabled: "Disabled",
			BootMode:    "UEFI",
		},
	}
	var saved *redfishSimState
	if statePath != "" {
		var err error
		if saved, err = loadRedfishSimState(statePath); err != nil {
			return nil, err
		}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("redfish simulator: listening on %s: %w", opts.Addr, err)
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	host := tcpAddr.IP.String()
	if tcpAddr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.Host, s.Port = host, tcpAddr.Port
	s.URL = "https://" + net.JoinHostPort(host, strconv.Itoa(s.Port))

	var certPEM, keyPEM []byte
	if saved != nil {
		s.machine, s.uuid = saved.Machine, saved.UUID
		certPEM, keyPEM = []byte(saved.CertPEM), []byte(saved.KeyPEM)
	}
	if s.uuid == "" {
		s.uuid = newUUID()
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || !certCoversHost(cert, host) {
		if certPEM, keyPEM, err = selfSignedCert(host); err != nil {
			ln.Close()
			return nil, err
		}
		if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
			ln.Close()
			return nil, fmt.Errorf("redfish simulator: loading generated certificate: %w", err)
		}
	}
	s.CACertPEM, s.keyPEM = certPEM, keyPEM
	if statePath != "" {
		if err := s.saveLocked(); err != nil {
			ln.Close()
			return nil, err
		}
	}

	errorLog := log.New(io.Discard, "", 0)
	if s.logf != nil {
		errorLog = log.New(logfWriter{s.logf}, "redfish simulator: ", 0)
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errorLog,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		},
	}
	go func() {
		defer close(s.served)
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log("serve: %v", err)
		}
	}()
	s.log("listening on %s", s.URL)
	noteSecret("BMC password (Redfish simulator)", s.Password)
	return s, nil
}

// Stop closes the listener and every connection. It is idempotent.
func (s *RedfishSim) Stop() error {
	return s.stopped.do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), redfishStopTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		// Shutdown leaves idle keep-alive connections to be closed; Close
		// makes sure nothing is served any more.
		err := s.srv.Close()
		<-s.served
		if err != nil {
			return fmt.Errorf("stopping redfish simulator %s: %w", s.URL, err)
		}
		return nil
	})
}

// PowerOn reports whether the simulated machine is powered on.
func (s *RedfishSim) PowerOn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.machine.PowerState == "On"
}

// SetPower changes the power state out of band, as a power button or a
// power failure would. It does not boot the machine: use SimulateBoot for
// the effects of a boot.
func (s *RedfishSim) SetPower(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "Off"
	if on {
		state = "On"
	}
	if s.machine.PowerState != state {
		s.machine.PowerState = state
		s.changedLocked()
	}
}

// BootOverride returns the Boot properties BootSourceOverrideTarget,
// BootSourceOverrideEnabled and BootSourceOverrideMode.
func (s *RedfishSim) BootOverride() (target, enabled, mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.machine.BootTarget, s.machine.BootEnabled, s.machine.BootMode
}

// SimulateBoot simulates the machine booting on its own: a "Once" override
// is consumed (Enabled becomes "Disabled"), a "Continuous" one stays. The
// power state is left alone.
func (s *RedfishSim) SimulateBoot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootLocked()
	s.changedLocked()
}

// Boots returns how many boots the simulated machine went through.
func (s *RedfishSim) Boots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.machine.Boots
}

// Requests returns the number of HTTP requests served so far.
func (s *RedfishSim) Requests() int {
	return int(s.requests.Load())
}

// Sessions returns the number of open (not expired) sessions.
func (s *RedfishSim) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireSessionsLocked()
	return len(s.sessions)
}

// Tokens returns every session token issued so far, logged out or not, so
// that tests can look for them where they must never appear (logs, output).
func (s *RedfishSim) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

func (s *RedfishSim) log(format string, args ...any) {
	if s.logf != nil {
		s.logf("redfish simulator: "+format, args...)
	}
}

// bootLocked is the BIOS honouring (and consuming) the boot override.
func (s *RedfishSim) bootLocked() {
	s.machine.Boots++
	if s.machine.BootEnabled == "Once" {
		s.machine.BootEnabled = "Disabled"
	}
}

// changedLocked records a state change: a new ETag and, for a persistent
// simulator, a new state file.
func (s *RedfishSim) changedLocked() {
	s.machine.Generation++
	if s.statePath == "" {
		return
	}
	if err := s.saveLocked(); err != nil {
		s.log("saving state: %v", err)
	}
}

// saveLocked writes the state file atomically.
func (s *RedfishSim) saveLocked() error {
	st := redfishSimState{
		URL:     s.URL,
		UUID:    s.uuid,
		Machine: s.machine,
		CertPEM: string(s.CACertPEM),
		KeyPEM:  string(s.keyPEM),
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.statePath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("redfish simulator: creating state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(s.statePath)+".tmp-*")
	if err != nil {
		return fmt.Errorf("redfish simulator: writing state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("redfish simulator: writing state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("redfish simulator: writing state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.statePath); err != nil {
		return fmt.Errorf("redfish simulator: writing state: %w", err)
	}
	return nil
}

// loadRedfishSimState reads a state file; a missing file is no state.
func loadRedfishSimState(path string) (*redfishSimState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redfish simulator: reading state: %w", err)
	}
	var st redfishSimState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("redfish simulator: parsing state %s: %w", path, err)
	}
	m := st.Machine
	if !contains([]string{"On", "Off"}, m.PowerState) || !contains(rfBootTargets, m.BootTarget) ||
		!contains(rfBootEnabled, m.BootEnabled) || !contains(rfBootModes, m.BootMode) {
		return nil, fmt.Errorf("redfish simulator: state %s holds invalid machine state %+v", path, m)
	}
	return &st, nil
}

// ---- HTTP ----

// rfResponse is what a handler produces.
type rfResponse struct {
	status  int
	body    any
	headers map[string]string
}

func (s *RedfishSim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	resp := s.route(r)
	h := w.Header()
	h.Set("OData-Version", "4.0")
	h.Set("Cache-Control", "no-store")
	for k, v := range resp.headers {
		h.Set(k, v)
	}
	if resp.body != nil {
		data, err := json.MarshalIndent(resp.body, "", "  ")
		if err != nil {
			resp = rfError(http.StatusInternalServerError, "InternalError", "The request failed due to an internal service error.")
			data, _ = json.Marshal(resp.body)
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(resp.status)
		_, _ = w.Write(data)
	} else {
		w.WriteHeader(resp.status)
	}
	s.log("%s %s -> %d", r.Method, r.URL.Path, resp.status)
}

// route authenticates the request and dispatches it.
func (s *RedfishSim) route(r *http.Request) rfResponse {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if p == "" {
		p = "/"
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}

	// Resources the specification requires without authentication.
	switch {
	case p == "/redfish":
		if method != http.MethodGet {
			return rfMethodNotAllowed("GET, HEAD")
		}
		return rfOK(map[string]any{"v1": rfRoot + "/"})
	case p == rfRoot:
		if method != http.MethodGet {
			return rfMethodNotAllowed("GET, HEAD")
		}
		return rfOK(s.serviceRoot())
	case p == rfRoot+"/odata":
		if method != http.MethodGet {
			return rfMethodNotAllowed("GET, HEAD")
		}
		return rfOK(s.odataDocument())
	case p == rfSessions && method == http.MethodPost:
		return s.login(r)
	}

	if !s.authenticated(r) {
		resp := rfError(http.StatusUnauthorized, "NoValidSession",
			"There is no valid session established with the implementation.")
		resp.headers = map[string]string{"WWW-Authenticate": `Basic realm="Redfish simulator"`}
		return resp
	}

	switch {
	case p == rfSessionService:
		return s.onlyGet(method, s.sessionService)
	case p == rfSessions:
		return s.onlyGet(method, s.sessionCollection)
	case strings.HasPrefix(p, rfSessions+"/"):
		return s.session(method, strings.TrimPrefix(p, rfSessions+"/"))
	case p == rfSystems:
		return s.onlyGet(method, func() rfResponse {
			return rfOK(rfCollection(rfSystems, "ComputerSystemCollection", "Computer System Collection", rfSystem))
		})
	case p == rfSystem:
		switch method {
		case http.MethodGet:
			return s.withETag(s.systemResource())
		case http.MethodPatch:
			return s.patchSystem(r)
		default:
			return rfMethodNotAllowed("GET, HEAD, PATCH")
		}
	case p == rfResetAction:
		if method != http.MethodPost {
			return rfMethodNotAllowed("POST")
		}
		return s.reset(r)
	case p == rfManagers:
		return s.onlyGet(method, func() rfResponse {
			return rfOK(rfCollection(rfManagers, "ManagerCollection", "Manager Collection", rfManager))
		})
	case p == rfManager:
		return s.onlyGet(method, func() rfResponse { return s.withETag(s.managerResource()) })
	case p == rfChassisColl:
		return s.onlyGet(method, func() rfResponse {
			return rfOK(rfCollection(rfChassisColl, "ChassisCollection", "Chassis Collection", rfChassis))
		})
	case p == rfChassis:
		return s.onlyGet(method, func() rfResponse { return s.withETag(s.chassisResource()) })
	}
	return rfError(http.StatusNotFound, "ResourceMissingAtURI",
		fmt.Sprintf("The resource at the URI '%s' was not found.", r.URL.Path))
}

func (s *RedfishSim) onlyGet(method string, get func() rfResponse) rfResponse {
	if method != http.MethodGet {
		return rfMethodNotAllowed("GET, HEAD")
	}
	return get()
}

// authenticated accepts a valid X-Auth-Token or valid basic credentials.
func (s *RedfishSim) authenticated(r *http.Request) bool {
	if token := r.Header.Get("X-Auth-Token"); token != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expireSessionsLocked()
		sess, ok := s.sessions[token]
		if ok {
			sess.lastUsed = time.Now()
		}
		return ok
	}
	if user, pass, ok := r.BasicAuth(); ok {
		return s.credentialsValid(user, pass)
	}
	return false
}

func (s *RedfishSim) credentialsValid(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.User))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.Password))
	return u&p == 1
}

func (s *RedfishSim) expireSessionsLocked() {
	cutoff := time.Now().Add(-redfishSessionTimeout * time.Second)
	for token, sess := range s.sessions {
		if sess.lastUsed.Before(cutoff) {
			delete(s.sessions, token)
		}
	}
}

// login implements POST /redfish/v1/SessionService/Sessions.
func (s *RedfishSim) login(r *http.Request) rfResponse {
	var req struct {
		UserName *string
		Password *string
	}
	if resp, ok := decodeJSONBody(r, &req); !ok {
		return resp
	}
	if req.UserName == nil || req.Password == nil {
		return rfError(http.StatusBadRequest, "PropertyMissing",
			"The property UserName and Password are required properties and must be included in the request.")
	}
	if !s.credentialsValid(*req.UserName, *req.Password) {
		s.log("login refused for user %q", *req.UserName)
		return rfError(http.StatusUnauthorized, "NoValidSession",
			"There is no valid session established with the implementation.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireSessionsLocked()
	if len(s.sessions) >= redfishMaxSessions {
		return rfError(http.StatusServiceUnavailable, "SessionLimitExceeded",
			"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.")
	}
	s.nextSess++
	id := strconv.Itoa(s.nextSess)
	token := randomHex(16)
	s.tokens = append(s.tokens, token)
	noteSecret("Redfish session token", token)
	s.sessions[token] = &redfishSession{id: id, user: *req.UserName, lastUsed: time.Now()}
	loc := rfSessions + "/" + id
	resp := rfOK(sessionResource(id, *req.UserName))
	resp.status = http.StatusCreated
	resp.headers = map[string]string{"X-Auth-Token": token, "Location": loc}
	return resp
}

func (s *RedfishSim) session(method, id string) rfResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	var token string
	var sess *redfishSession
	for t, candidate := range s.sessions {
		if candidate.id == id {
			token, sess = t, candidate
		}
	}
	if sess == nil {
		return rfError(http.StatusNotFound, "ResourceMissingAtURI",
			fmt.Sprintf("The resource at the URI '%s/%s' was not found.", rfSessions, id))
	}
	switch method {
	case http.MethodGet:
		return rfOK(sessionResource(id, sess.user))
	case http.MethodDelete:
		delete(s.sessions, token)
		return rfResponse{status: http.StatusNoContent}
	default:
		return rfMethodNotAllowed("GET, HEAD, DELETE")
	}
}

// patchSystem implements PATCH of the ComputerSystem's Boot properties.
func (s *RedfishSim) patchSystem(r *http.Request) rfResponse {
	var req map[string]json.RawMessage
	if resp, ok := decodeJSONBody(r, &req); !ok {
		return resp
	}
	var boot map[string]json.RawMessage
	for prop, raw := range req {
		switch {
		case prop == "Boot":
			if err := json.Unmarshal(raw, &boot); err != nil {
				return rfError(http.StatusBadRequest, "PropertyValueTypeError",
					"The value for the property Boot is of a different type than the property can accept.")
			}
		case rfReadOnlyProp[prop]:
			return rfError(http.StatusBadRequest, "PropertyNotWritable",
				fmt.Sprintf("The property %s is a read only property and cannot be assigned a value.", prop))
		default:
			return rfError(http.StatusBadRequest, "PropertyUnknown",
				fmt.Sprintf("The property %s is not in the list of valid properties for the resource.", prop))
		}
	}
	updates := map[string]string{}
	allowed := map[string][]string{
		"BootSourceOverrideTarget":  rfBootTargets,
		"BootSourceOverrideEnabled": rfBootEnabled,
		"BootSourceOverrideMode":    rfBootModes,
	}
	for prop, raw := range boot {
		values, known := allowed[prop]
		if !known {
			return rfError(http.StatusBadRequest, "PropertyUnknown",
				fmt.Sprintf("The property Boot/%s is not in the list of valid properties for the resource.", prop))
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return rfError(http.StatusBadRequest, "PropertyValueTypeError",
				fmt.Sprintf("The value %s for the property Boot/%s is of a different type than the property can accept.", raw, prop))
		}
		if !contains(values, v) {
			return rfError(http.StatusBadRequest, "PropertyValueNotInList",
				fmt.Sprintf("The value %s for the property Boot/%s is not in the list of acceptable values.", v, prop))
		}
		updates[prop] = v
	}

	s.mu.Lock()
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != s.etagLocked() {
		s.mu.Unlock()
		return rfError(http.StatusPreconditionFailed, "PreconditionFailed",
			"The ETag supplied did not match the ETag required to change this resource.")
	}
	before := s.machine
	if v, ok := updates["BootSourceOverrideTarget"]; ok {
		s.machine.BootTarget = v
	}
	if v, ok := updates["BootSourceOverrideEnabled"]; ok {
		s.machine.BootEnabled = v
	}
	if v, ok := updates["BootSourceOverrideMode"]; ok {
		s.machine.BootMode = v
	}
	if s.machine != before {
		s.changedLocked()
	}
	s.mu.Unlock()
	return s.withETag(s.systemResource())
}

// reset implements the #ComputerSystem.Reset action.
func (s *RedfishSim) reset(r *http.Request) rfResponse {
	var req struct{ ResetType *string }
	if resp, ok := decodeJSONBody(r, &req); !ok {
		return resp
	}
	if req.ResetType == nil {
		return rfError(http.StatusBadRequest, "ActionParameterMissing",
			"The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.")
	}
	t := *req.ResetType
	if !contains(rfResetTypes, t) {
		return rfError(http.StatusBadRequest, "ActionParameterValueNotInList",
			fmt.Sprintf("The value '%s' for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.", t))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.machine
	switch t {
	case "On":
		if s.machine.PowerState == "Off" {
			s.machine.PowerState = "On"
			s.bootLocked()
		}
	case "ForceOff", "GracefulShutdown":
		s.machine.PowerState = "Off"
	case "ForceRestart", "GracefulRestart", "PowerCycle":
		s.machine.PowerState = "On"
		s.bootLocked()
	case "Nmi":
		// A diagnostic interrupt changes nothing the BMC reports.
	}
	if s.machine != before {
		s.changedLocked()
	}
	return rfResponse{status: http.StatusNoContent}
}

// withETag adds the ETag header of the current state.
func (s *RedfishSim) withETag(body any) rfResponse {
	s.mu.Lock()
	tag := s.etagLocked()
	s.mu.Unlock()
	resp := rfOK(body)
	resp.headers = map[string]string{"ETag": tag}
	return resp
}

func (s *RedfishSim) etagLocked() string {
	return fmt.Sprintf(`W/"%d"`, s.machine.Generation)
}

// ---- resources ----

func odataID(id string) map[string]any { return map[string]any{"@odata.id": id} }

func (s *RedfishSim) serviceRoot() map[string]any {
	return map[string]any{
		"@odata.type":    "#ServiceRoot.v1_16_0.ServiceRoot",
		"@odata.id":      rfRoot,
		"Id":             "RootService",
		"Name":           "Root Service",
		"RedfishVersion": RedfishSimVersion,
		"UUID":           s.uuid,
		"Product":        "Homelab Redfish BMC simulator",
		"Vendor":         RedfishSimManufacturer,
		"Systems":        odataID(rfSystems),
		"Chassis":        odataID(rfChassisColl),
		"Managers":       odataID(rfManagers),
		"SessionService": odataID(rfSessionService),
		"Links": map[string]any{
			"Sessions": odataID(rfSessions),
		},
	}
}

func (s *RedfishSim) odataDocument() map[string]any {
	var values []map[string]any
	for _, v := range []struct{ name, url string }{
		{"Systems", rfSystems}, {"Chassis", rfChassisColl}, {"Managers", rfManagers},
		{"SessionService", rfSessionService}, {"Sessions", rfSessions},
	} {
		values = append(values, map[string]any{"name": v.name, "kind": "Singleton", "url": v.url})
	}
	return map[string]any{"@odata.context": rfRoot + "/$metadata", "value": values}
}

func (s *RedfishSim) sessionService() rfResponse {
	return rfOK(map[string]any{
		"@odata.type":    "#SessionService.v1_1_9.SessionService",
		"@odata.id":      rfSessionService,
		"Id":             "SessionService",
		"Name":           "Session Service",
		"ServiceEnabled": true,
		"SessionTimeout": redfishSessionTimeout,
		"Sessions":       odataID(rfSessions),
		"Status":         map[string]any{"State": "Enabled", "Health": "OK"},
	})
}

func (s *RedfishSim) sessionCollection() rfResponse {
	s.mu.Lock()
	s.expireSessionsLocked()
	var ids []int
	for _, sess := range s.sessions {
		n, _ := strconv.Atoi(sess.id)
		ids = append(ids, n)
	}
	s.mu.Unlock()
	sort.Ints(ids)
	var members []string
	for _, id := range ids {
		members = append(members, rfSessions+"/"+strconv.Itoa(id))
	}
	return rfOK(rfCollection(rfSessions, "SessionCollection", "Session Collection", members...))
}

func sessionResource(id, user string) map[string]any {
	return map[string]any{
		"@odata.type": "#Session.v1_7_0.Session",
		"@odata.id":   rfSessions + "/" + id,
		"Id":          id,
		"Name":        "User Session",
		"UserName":    user,
		"SessionType": "Redfish",
	}
}

func rfCollection(id, typ, name string, members ...string) map[string]any {
	list := []map[string]any{}
	for _, m := range members {
		list = append(list, odataID(m))
	}
	return map[string]any{
		"@odata.type":         "#" + typ + "." + typ,
		"@odata.id":           id,
		"Name":                name,
		"Members@odata.count": len(list),
		"Members":             list,
	}
}

func (s *RedfishSim) systemResource() map[string]any {
	s.mu.Lock()
	m := s.machine
	uuid := s.uuid
	s.mu.Unlock()
	state := "Enabled"
	if m.PowerState == "Off" {
		state = "StandbyOffline"
	}
	return map[string]any{
		"@odata.type":  "#ComputerSystem.v1_20_0.ComputerSystem",
		"@odata.id":    rfSystem,
		"Id":           "1",
		"Name":         "Homelab node (simulated)",
		"SystemType":   "Physical",
		"Manufacturer": RedfishSimManufacturer,
		"Model":        RedfishSimModel,
		"SerialNumber": RedfishSimSerial,
		"UUID":         uuid,
		"BiosVersion":  RedfishSimBIOSVersion,
		"PowerState":   m.PowerState,
		"Status":       map[string]any{"State": state, "Health": "OK"},
		"Boot": map[string]any{
			"BootSourceOverrideTarget":                          m.BootTarget,
			"BootSourceOverrideTarget@Redfish.AllowableValues":  rfBootTargets,
			"BootSourceOverrideEnabled":                         m.BootEnabled,
			"BootSourceOverrideEnabled@Redfish.AllowableValues": rfBootEnabled,
			"BootSourceOverrideMode":                            m.BootMode,
			"BootSourceOverrideMode@Redfish.AllowableValues":    rfBootModes,
		},
		"Actions": map[string]any{
			"#ComputerSystem.Reset": map[string]any{
				"target":                            rfResetAction,
				"ResetType@Redfish.AllowableValues": rfResetTypes,
			},
		},
		"Links": map[string]any{
			"Chassis":   []map[string]any{odataID(rfChassis)},
			"ManagedBy": []map[string]any{odataID(rfManager)},
		},
	}
}

func (s *RedfishSim) managerResource() map[string]any {
	return map[string]any{
		"@odata.type":     "#Manager.v1_19_0.Manager",
		"@odata.id":       rfManager,
		"Id":              "1",
		"Name":            "Manager",
		"Description":     "Baseboard management controller (simulated)",
		"ManagerType":     "BMC",
		"Manufacturer":    RedfishSimManufacturer,
		"Model":           "RFSIM BMC",
		"FirmwareVersion": RedfishSimBMCFirmware,
		"PowerState":      "On",
		"Status":          map[string]any{"State": "Enabled", "Health": "OK"},
		"Links": map[string]any{
			"ManagerForServers": []map[string]any{odataID(rfSystem)},
			"ManagerForChassis": []map[string]any{odataID(rfChassis)},
		},
	}
}

func (s *RedfishSim) chassisResource() map[string]any {
	s.mu.Lock()
	power := s.machine.PowerState
	s.mu.Unlock()
	return map[string]any{
		"@odata.type":  "#Chassis.v1_25_0.Chassis",
		"@odata.id":    rfChassis,
		"Id":           "1",
		"Name":         "Computer System Chassis",
		"ChassisType":  "RackMount",
		"Manufacturer": RedfishSimManufacturer,
		"Model":        RedfishSimModel,
		"SerialNumber": RedfishSimSerial,
		"PowerState":   power,
		"Status":       map[string]any{"State": "Enabled", "Health": "OK"},
		"Links": map[string]any{
			"ComputerSystems": []map[string]any{odataID(rfSystem)},
			"ManagedBy":       []map[string]any{odataID(rfManager)},
		},
	}
}

// ---- helpers ----

func rfOK(body any) rfResponse { return rfResponse{status: http.StatusOK, body: body} }

// rfError builds a Redfish error response with one Base registry message.
func rfError(status int, messageID, message string) rfResponse {
	id := rfMessageRegistry + "." + messageID
	return rfResponse{status: status, body: map[string]any{
		"error": map[string]any{
			"code":    id,
			"message": message,
			"@Message.ExtendedInfo": []map[string]any{{
				"@odata.type":     "#Message.v1_1_2.Message",
				"MessageId":       id,
				"Message":         message,
				"MessageSeverity": "Critical",
				"Severity":        "Critical",
				"Resolution":      "Correct the request and resubmit it.",
			}},
		},
	}}
}

func rfMethodNotAllowed(allow string) rfResponse {
	resp := rfError(http.StatusMethodNotAllowed, "OperationNotAllowed",
		"The HTTP method is not allowed on this resource.")
	resp.headers = map[string]string{"Allow": allow}
	return resp
}

// decodeJSONBody decodes a small JSON request body into v.
func decodeJSONBody(r *http.Request, v any) (rfResponse, bool) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return rfError(http.StatusBadRequest, "MalformedJSON", "The request body submitted could not be read."), false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return rfError(http.StatusBadRequest, "MalformedJSON", "The request body submitted was empty."), false
	}
	if err := json.Unmarshal(data, v); err != nil {
		return rfError(http.StatusBadRequest, "MalformedJSON",
			"The request body submitted was malformed JSON and could not be parsed by the receiving service."), false
	}
	return rfResponse{}, true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// selfSignedCert makes an ECDSA certificate for host, 127.0.0.1, ::1 and
// localhost that is its own CA.
func selfSignedCert(host string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("redfish simulator: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, fmt.Errorf("redfish simulator: generating serial: %w", err)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(host); ip != nil && !ip.Equal(ips[0]) && !ip.Equal(ips[1]) {
		ips = append(ips, ip)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"Homelab Redfish BMC simulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("redfish simulator: creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("redfish simulator: encoding key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// certCoversHost reports whether a (loaded) certificate is valid for host now.
func certCoversHost(cert tls.Certificate, host string) bool {
	if len(cert.Certificate) == 0 {
		return false
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || time.Now().After(leaf.NotAfter) {
		return false
	}
	return leaf.VerifyHostname(host) == nil
}

// logfWriter adapts Logf to the http.Server's error log.
type logfWriter struct{ logf func(string, ...any) }

func (w logfWriter) Write(p []byte) (int, error) {
	w.logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
