package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// This file is a minimal client for the QEMU Machine Protocol (QMP): JSON
// objects, one per line, over the unix socket given to qemu with
// `-qmp unix:PATH,server=on,wait=off`. A session is
//
//	server: {"QMP": {"version": ..., "capabilities": [...]}}   greeting
//	client: {"execute": "qmp_capabilities"}                    leave negotiation
//	server: {"return": {}}
//	client: {"execute": CMD, "arguments": {...}, "id": N}
//	server: {"return": ...} or {"error": {"class": ..., "desc": ...}}, echoing "id"
//
// with asynchronous events ({"event": NAME, "data": {...}, "timestamp": ...})
// interleaved at any point. qemu serves one client at a time on such a
// socket, so callers connect for an operation and close again.

// qmpDialTimeout bounds connecting to the socket and the handshake when ctx
// has no earlier deadline.
const qmpDialTimeout = 10 * time.Second

// qmpClient is one QMP connection past capability negotiation. It is not
// safe for concurrent use.
type qmpClient struct {
	conn   net.Conn
	reader *bufio.Reader
	nextID int
	// events holds events read while waiting for a command's response,
	// oldest first, for WaitEvent.
	events []qmpEvent
	// broken is the I/O error that left the stream in an unknown state;
	// every later call fails with it.
	broken error
}

// qmpEvent is an asynchronous QMP event.
type qmpEvent struct {
	Event string
	Data  json.RawMessage
}

// QMPError is an error response of a QMP command.
type QMPError struct {
	Command string
	// Class is QMP's error class, e.g. "GenericError" or "DeviceNotFound".
	Class string
	Desc  string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// qmpMessage is any message the server sends.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	ID    json.RawMessage `json:"id"`
}

// dialQMP connects to the QMP socket at path, reads the greeting and
// negotiates capabilities, bounded by ctx and qmpDialTimeout. The caller
// must Close the client.
func dialQMP(ctx context.Context, path string) (*qmpClient, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpDialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to QMP socket %s: %w", path, err)
	}
	c := &qmpClient{conn: conn, reader: bufio.NewReader(conn)}
	if err := c.handshake(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP handshake on %s: %w", path, err)
	}
	return c, nil
}

// handshake reads the greeting and leaves capability negotiation mode.
func (c *qmpClient) handshake(ctx context.Context) error {
	stop := c.watch(ctx)
	msg, err := c.read(ctx)
	stop()
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if msg.QMP == nil {
		return errors.New("unexpected greeting without a QMP member")
	}
	_, err = c.Execute(ctx, "qmp_capabilities", nil)
	return err
}

// Close closes the connection.
func (c *qmpClient) Close() error { return c.conn.Close() }

// watch makes blocked reads and writes return when ctx ends, until the
// returned function is called.
func (c *qmpClient) watch(ctx context.Context) (stop func()) {
	_ = c.conn.SetDeadline(time.Time{})
	cancelWatch := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { cancelWatch() }
}

// Execute runs a command with optional arguments (any value that marshals
// to a JSON object, or nil) and returns its "return" member. An error
// response is returned as *QMPError. Events that arrive meanwhile are kept
// for WaitEvent. The call is bounded by ctx.
func (c *qmpClient) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if c.broken != nil {
		return nil, fmt.Errorf("qmp %s: connection unusable after: %w", command, c.broken)
	}
	c.nextID++
	id := strconv.Itoa(c.nextID)
	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding qmp %s: %w", command, err)
	}
	stop := c.watch(ctx)
	defer stop()
	if _, err := c.conn.Write(append(data, '\n')); err != nil {
		c.broken = ctxErr(ctx, err)
		return nil, fmt.Errorf("sending qmp %s: %w", command, c.broken)
	}
	for {
		msg, err := c.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", command, err)
		}
		if msg.Event != "" {
			c.events = append(c.events, qmpEvent{Event: msg.Event, Data: msg.Data})
			continue
		}
		if gotID, _ := strconv.Unquote(string(msg.ID)); gotID != id {
			continue // a stray response; cannot be ours
		}
		if msg.Error != nil {
			return nil, &QMPError{Command: command, Class: msg.Error.Class, Desc: msg.Error.Desc}
		}
		return msg.Return, nil
	}
}

// WaitEvent returns the data of the first event named name for which match
// (if not nil) returns true, looking at events already received first.
// Events that do not match are discarded. The wait is bounded by ctx.
func (c *qmpClient) WaitEvent(ctx context.Context, name string, match func(data json.RawMessage) bool) (json.RawMessage, error) {
	stop := c.watch(ctx)
	defer stop()
	for {
		for len(c.events) > 0 {
			ev := c.events[0]
			c.events = c.events[1:]
			if ev.Event == name && (match == nil || match(ev.Data)) {
				return ev.Data, nil
			}
		}
		if c.broken != nil {
			return nil, fmt.Errorf("waiting for QMP event %s: connection unusable after: %w", name, c.broken)
		}
		msg, err := c.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for QMP event %s: %w", name, err)
		}
		if msg.Event != "" {
			c.events = append(c.events, qmpEvent{Event: msg.Event, Data: msg.Data})
		}
	}
}

// read reads one message. An I/O error marks the connection broken (a
// partial line may have been consumed).
func (c *qmpClient) read(ctx context.Context) (*qmpMessage, error) {
	line, err := c.reader.ReadBytes('\n')
	if err != nil {
		c.broken = ctxErr(ctx, err)
		return nil, c.broken
	}
	var msg qmpMessage
	if err := json.Unmarshal(line, &msg); err != nil {
		return nil, fmt.Errorf("decoding QMP message %q: %w", line, err)
	}
	return &msg, nil
}

// ctxErr returns the context's error instead of the I/O timeout that the
// context's end caused.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return cerr
	}
	return err
}
