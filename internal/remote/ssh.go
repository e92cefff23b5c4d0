package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Defaults for Config fields left zero.
const (
	DefaultPort              = 22
	DefaultTimeout           = 30 * time.Second
	DefaultMaxSessions       = 10 // OpenSSH's MaxSessions default
	DefaultKeepAliveInterval = 15 * time.Second
	// DefaultCommandTimeout bounds a command whose context has no deadline
	// of its own (reads, plans): no refresh can hang on a blocked command.
	DefaultCommandTimeout = 5 * time.Minute
)

// Config says how to reach and log in to one host over SSH.
type Config struct {
	Host string
	Port int
	User string

	// PrivateKey is a PEM or OpenSSH private key (not a path).
	PrivateKey string
	Password   string
	// Agent uses the ssh-agent at $SSH_AUTH_SOCK.
	Agent bool

	// KnownHostsFile defaults to ~/.ssh/known_hosts.
	KnownHostsFile string
	// HostKey pins the host's public key ("ssh-ed25519 AAAA..."); it takes
	// precedence over KnownHostsFile.
	HostKey               string
	InsecureIgnoreHostKey bool

	// Timeout bounds connecting and the SSH handshake.
	Timeout time.Duration
	// CommandTimeout bounds each command whose context has no deadline
	// (DefaultCommandTimeout when zero). Operations with a deadline of their
	// own (a resource's timeouts {}) are bounded by that instead.
	CommandTimeout time.Duration
	// Bastion, when set, is the jump host the connection is made through.
	Bastion *Config
	// Sudo runs every command through "sudo -n" unless User is root.
	Sudo bool

	MaxSessions       int
	KeepAliveInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.KeepAliveInterval <= 0 {
		c.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	return c
}

// Addr is host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String names the target as user@host:port.
func (c Config) String() string { return c.User + "@" + c.Addr() }

// poolKey identifies a connection. Configurations that differ only in
// per-command settings (sudo) share it; a different credential or host key
// policy gets its own connection so no resource rides on another's login.
func (c Config) poolKey() string {
	h := sha256.New()
	for _, s := range []string{c.User, c.Addr(), c.PrivateKey, c.Password, strconv.FormatBool(c.Agent),
		c.KnownHostsFile, c.HostKey, strconv.FormatBool(c.InsecureIgnoreHostKey)} {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	if c.Bastion != nil {
		_, _ = io.WriteString(h, "via:"+c.Bastion.withDefaults().poolKey())
	}
	return c.String() + "#" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Logger receives the pool's progress messages; fields never hold secrets.
type Logger func(ctx context.Context, msg string, fields map[string]any)

// Pool shares SSH connections among everything in one provider process.
type Pool struct {
	mu    sync.Mutex
	conns map[string]*conn
	dials atomic.Int64
	log   Logger
}

// NewPool returns an empty pool. log may be nil.
func NewPool(log Logger) *Pool {
	if log == nil {
		log = func(context.Context, string, map[string]any) {}
	}
	return &Pool{conns: map[string]*conn{}, log: log}
}

// Runner returns a Runner for cfg that shares the pool's connection to the
// host. It does not connect: the first command does.
func (p *Pool) Runner(cfg Config) (Runner, error) {
	cfg = cfg.withDefaults()
	if cfg.Host == "" {
		return nil, errors.New("remote: SSH host is empty")
	}
	c, err := p.conn(cfg)
	if err != nil {
		return nil, err
	}
	return &shellRunner{ex: c, sudo: cfg.Sudo && cfg.User != "root", commandTimeout: cfg.CommandTimeout}, nil
}

// Dials reports how many SSH connections the pool has opened, bastion hops
// and reconnects included.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*conn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return nil
}

func (p *Pool) conn(cfg Config) (*conn, error) {
	key := cfg.poolKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[key]; ok {
		return c, nil
	}
	var via *conn
	if cfg.Bastion != nil {
		b := cfg.Bastion.withDefaults()
		if b.Host == "" {
			return nil, errors.New("remote: bastion host is empty")
		}
		key := b.poolKey()
		via = p.conns[key]
		if via == nil {
			via = newConn(p, b, nil)
			p.conns[key] = via
		}
	}
	c := newConn(p, cfg, via)
	p.conns[key] = c
	return c, nil
}

// conn is one pooled SSH connection, dialled lazily and redialled when it breaks.
type conn struct {
	pool  *Pool
	cfg   Config
	via   *conn
	slots chan struct{}

	mu     sync.Mutex
	client *ssh.Client
}

func newConn(p *Pool, cfg Config, via *conn) *conn {
	return &conn{pool: p, cfg: cfg, via: via, slots: make(chan struct{}, cfg.MaxSessions)}
}

func (c *conn) target() string { return c.cfg.String() }

// get returns the live client, dialling when there is none.
func (c *conn) get(ctx context.Context) (*ssh.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	client, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.client = client
	go c.watch(client)
	return client, nil
}

// drop forgets client if it is still the current one, so the next get redials.
func (c *conn) drop(client *ssh.Client) {
	c.mu.Lock()
	if c.client == client {
		c.client = nil
	}
	c.mu.Unlock()
	_ = client.Close()
}

func (c *conn) close() {
	c.mu.Lock()
	client := c.client
	c.client = nil
	c.mu.Unlock()
	if client != nil {
		_ = client.Close()
	}
}

// watch sends keepalives until the connection dies, then drops it.
func (c *conn) watch(client *ssh.Client) {
	done := make(chan struct{})
	go func() { _ = client.Wait(); close(done) }()
	t := time.NewTicker(c.cfg.KeepAliveInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			c.drop(client)
			return
		case <-t.C:
			reply := make(chan error, 1)
			go func() {
				_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}()
			select {
			case err := <-reply:
				if err != nil {
					c.drop(client)
					return
				}
			case <-done:
				c.drop(client)
				return
			case <-time.After(2 * c.cfg.KeepAliveInterval):
				c.pool.log(context.Background(), "SSH keepalive unanswered, dropping connection", map[string]any{"target": c.target()})
				c.drop(client)
				return
			}
		}
	}
}

func (c *conn) dial(ctx context.Context) (*ssh.Client, error) {
	fail := func(op string, err error) error { return &ConnError{Target: c.target(), Op: op, Err: err} }
	auth, err := authMethods(c.cfg)
	if err != nil {
		return nil, err
	}
	hostKey, err := hostKeyCallback(c.cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	var raw net.Conn
	if c.via != nil {
		bastion, err := c.via.get(ctx)
		if err != nil {
			return nil, fmt.Errorf("reaching %s through bastion: %w", c.target(), err)
		}
		raw, err = dialThrough(ctx, bastion, c.cfg.Addr())
		if err != nil {
			return nil, fail("connect through bastion "+c.via.target()+" to", err)
		}
	} else {
		raw, err = (&net.Dialer{KeepAlive: c.cfg.KeepAliveInterval}).DialContext(ctx, "tcp", c.cfg.Addr())
		if err != nil {
			return nil, fail("connect to", timeoutHint(ctx, err, c.cfg.Timeout))
		}
	}
	clientCfg := &ssh.ClientConfig{
		User: c.cfg.User, Auth: auth, HostKeyCallback: hostKey, Timeout: c.cfg.Timeout,
		ClientVersion: "SSH-2.0-terraform-provider-homelab",
	}
	type result struct {
		conn  ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sc, chans, reqs, err := ssh.NewClientConn(raw, c.cfg.Addr(), clientCfg)
		done <- result{sc, chans, reqs, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			_ = raw.Close()
			return nil, classifyHandshake(c.target(), r.err)
		}
		c.pool.dials.Add(1)
		c.pool.log(ctx, "SSH connection opened", map[string]any{"target": c.target(), "bastion": c.via != nil})
		return ssh.NewClient(r.conn, r.chans, r.reqs), nil
	case <-ctx.Done():
		_ = raw.Close()
		return nil, fail("SSH handshake with", timeoutHint(ctx, ctx.Err(), c.cfg.Timeout))
	}
}

func timeoutHint(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the %s timeout (%w); check the host is up and the address and port are right", timeout, err)
	}
	return err
}

// classifyHandshake keeps host key and authentication failures as they are
// (they are configuration errors, not outages) and wraps the rest as ConnError.
func classifyHandshake(target string, err error) error {
	var mismatch *HostKeyMismatchError
	var unknown *UnknownHostError
	if errors.As(err, &mismatch) || errors.As(err, &unknown) {
		return err
	}
	if msg := err.Error(); strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "no supported methods remain") {
		return fmt.Errorf("SSH authentication to %s failed: %w; check the user, private key, password or agent", target, err)
	}
	return &ConnError{Target: target, Op: "SSH handshake with", Err: err}
}

func dialThrough(ctx context.Context, bastion *ssh.Client, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := bastion.Dial("tcp", addr)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func authMethods(cfg Config) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if cfg.PrivateKey != "" {
		signer, err := ssh.ParsePrivateKey([]byte(cfg.PrivateKey))
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("the private key for %s is passphrase-protected; load it into ssh-agent and set agent = true", cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("parsing the private key for %s: %w", cfg, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if cfg.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, fmt.Errorf("agent = true for %s but SSH_AUTH_SOCK is not set", cfg)
		}
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			ac, err := net.Dial("unix", sock)
			if err != nil {
				return nil, fmt.Errorf("connecting to ssh-agent: %w", err)
			}
			defer ac.Close()
			return agent.NewClient(ac).Signers()
		}))
	}
	if cfg.Password != "" {
		pw := cfg.Password
		methods = append(methods, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("no SSH authentication configured for %s: set private_key, password or agent = true", cfg)
	}
	return methods, nil
}

// exec runs argv in a new session, redialling once when the pooled
// connection turns out to be dead before the command started. A command
// that was started is never retried: it may not be idempotent.
func (c *conn) exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return -1, &ConnError{Target: c.target(), Op: "wait for a free SSH session on", Err: ctx.Err()}
	}
	sess, err := c.session(ctx)
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	// Output goes through gates that are shut when this call returns, so a
	// session still draining after a cancel never writes into the caller's buffers.
	outGate, errGate := &gate{w: stdout}, &gate{w: stderr}
	defer outGate.shut()
	defer errGate.shut()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, outGate, errGate
	// Arguments never carry secrets (those travel on stdin), so the command
	// may be logged; the log shows it POSIX-quoted, as people read it.
	c.pool.log(ctx, "running command over SSH", map[string]any{"target": c.target(), "command": Join(argv)})
	if err := sess.Start(CommandLine(argv)); err != nil {
		return -1, &ConnError{Target: c.target(), Op: "start command on", Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return -1, &ConnError{Target: c.target(), Op: "run command on", Err: ctx.Err()}
	}
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus(), nil
	case errors.As(err, &missing):
		return -1, &ConnError{Target: c.target(), Op: "run command on", Err: errors.New("the connection closed before the command reported its exit status")}
	}
	return -1, &ConnError{Target: c.target(), Op: "run command on", Err: err}
}

func (c *conn) session(ctx context.Context) (*ssh.Session, error) {
	redialled := false
	backoff := 20 * time.Millisecond
	for refusals := 0; ; {
		client, err := c.get(ctx)
		if err != nil {
			return nil, err
		}
		sess, err := client.NewSession()
		if err == nil {
			return sess, nil
		}
		var open *ssh.OpenChannelError
		switch {
		case errors.As(err, &open) && refusals < 60:
			refusals++
			// The server refused one more session. It frees a session only
			// after the close handshake, so a slot we just released may still
			// count there: wait a little and try again.
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
				continue
			case <-ctx.Done():
				return nil, &ConnError{Target: c.target(), Op: "open SSH session on", Err: fmt.Errorf("%w (last refusal: %v)", ctx.Err(), err)}
			}
		case errors.As(err, &open), redialled:
			return nil, &ConnError{Target: c.target(), Op: "open SSH session on", Err: err}
		}
		// Anything else on a pooled connection means it is dead: redial once.
		c.pool.log(ctx, "SSH connection broken, reconnecting", map[string]any{"target": c.target(), "error": err.Error()})
		c.drop(client)
		redialled = true
	}
}

// gate forwards writes to w until shut, then discards them.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
