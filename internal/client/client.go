// Package client is the tracemark command's side of the agent protocol
// (package wire): a Client that talks to one agent over its socket and
// reads its event streams, and the discovery of the agents of this user
// and of a given process.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tracemark/tracemark/internal/wire"
)

// MaxResponseBytes bounds a JSON response read by the Client.
const MaxResponseBytes = 16 << 20

// Client talks to one agent over its socket. Its methods are safe for
// concurrent use. Calls take their deadline from ctx; event streams last
// as long as ctx and the recording do.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client of the agent listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:       4,
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket returns the socket path.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Info returns GET /v1/info.
func (c *Client) Info(ctx context.Context) (*wire.Info, error) {
	var out wire.Info
	return &out, c.do(ctx, http.MethodGet, "/info", nil, &out)
}

// Markers returns GET /v1/markers, the markers matching glob ("" for all).
func (c *Client) Markers(ctx context.Context, glob string) ([]wire.Marker, error) {
	path := "/markers"
	if glob != "" {
		path += "?glob=" + url.QueryEscape(glob)
	}
	var out wire.MarkerList
	return out.Markers, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Sessions returns GET /v1/sessions.
func (c *Client) Sessions(ctx context.Context) ([]wire.SessionInfo, error) {
	list, err := c.SessionList(ctx)
	return list.Sessions, err
}

// SessionList calls GET /v1/sessions and returns the whole answer, the
// memory budget included.
func (c *Client) SessionList(ctx context.Context) (*wire.SessionList, error) {
	var out wire.SessionList
	return &out, c.do(ctx, http.MethodGet, "/sessions", nil, &out)
}

// Enable calls POST /v1/sessions/{name}/enable.
func (c *Client) Enable(ctx context.Context, name string, req wire.EnableRequest) (*wire.SessionInfo, error) {
	var out wire.SessionInfo
	return &out, c.do(ctx, http.MethodPost, "/sessions/"+url.PathEscape(name)+"/enable", req, &out)
}

// Disable calls POST /v1/sessions/{name}/disable.
func (c *Client) Disable(ctx context.Context, name string, patterns []string) (*wire.SessionInfo, error) {
	var out wire.SessionInfo
	return &out, c.do(ctx, http.MethodPost, "/sessions/"+url.PathEscape(name)+"/disable", wire.DisableRequest{Patterns: patterns}, &out)
}

// Destroy calls DELETE /v1/sessions/{name}.
func (c *Client) Destroy(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/sessions/"+url.PathEscape(name), nil, nil)
}

// Stop calls POST /v1/recordings/{id}/stop: the recording ends, and its
// stream delivers every event recorded, then an end frame.
func (c *Client) Stop(ctx context.Context, recording string) error {
	return c.do(ctx, http.MethodPost, "/recordings/"+url.PathEscape(recording)+"/stop", nil, nil)
}

// Record calls POST /v1/record and returns the event stream once its hello
// frame arrived. Cancelling ctx ends the recording without an end frame.
func (c *Client) Record(ctx context.Context, req wire.RecordRequest) (*Stream, error) {
	return c.stream(ctx, "/record", req)
}

// Snapshot calls POST /v1/sessions/{name}/snapshot and returns the event
// stream once its hello frame arrived.
func (c *Client) Snapshot(ctx context.Context, name string) (*Stream, error) {
	return c.stream(ctx, "/sessions/"+url.PathEscape(name)+"/snapshot", nil)
}

func (c *Client) stream(ctx context.Context, path string, body any) (*Stream, error) {
	resp, err := c.send(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wire.ContentTypeFrames) {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: unexpected content type %q", path, ct)
	}
	s := &Stream{body: resp.Body, fr: wire.NewFrameReader(resp.Body)}
	f, err := s.Next()
	if err == nil && f.Type != wire.FrameHello {
		err = fmt.Errorf("%w: stream starts with a %s frame", wire.ErrFrame, f.Type)
	}
	if err == nil {
		err = f.JSON(&s.Hello)
	}
	if err == nil {
		err = wire.CheckAgent(s.Hello.PID, s.Hello.Protocol, s.Hello.Revision)
	}
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return s, nil
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: reading response: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding response: %w", method, path, err)
	}
	return nil
}

// send sends a request and turns error responses into *wire.Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tracemark"+wire.Prefix+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", wire.ContentTypeJSON)
	}
	// Say which protocol this client speaks: an agent of a later
	// revision refuses it rather than be misread.
	req.Header.Set(wire.HeaderProtocol, wire.ProtocolString(wire.Version, wire.Revision))
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoAgent, c.socket, unwrapURLError(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// readError decodes an error response.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, wire.MaxRequestBytes))
	var eb wire.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = resp.StatusCode
		return eb.Error
	}
	return &wire.Error{Status: resp.StatusCode, Code: wire.CodeInternal,
		Message: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))}
}

// Stream is an event stream: a recording or a snapshot.
type Stream struct {
	// Hello is the stream's first frame.
	Hello wire.Hello
	body  io.ReadCloser
	fr    *wire.FrameReader
}

// Next returns the next frame. After an end frame it returns io.EOF.
// A stream cut before its end frame returns another error.
func (s *Stream) Next() (wire.Frame, error) { return s.fr.Next() }

// Swap hands over the buffer of the frame Next returned last, reading the
// next frames into spare (see wire.FrameReader.Swap).
func (s *Stream) Swap(spare []byte) []byte { return s.fr.Swap(spare) }

// Close closes the stream. Closing a recording's stream before its end
// frame makes the agent destroy the session.
func (s *Stream) Close() error { return s.body.Close() }

// Modules returns GET /v1/modules.
func (c *Client) Modules(ctx context.Context) (*wire.ModuleList, error) {
	var out wire.ModuleList
	return &out, c.do(ctx, http.MethodGet, "/modules", nil, &out)
}

// Insmod calls POST /v1/modules and returns the loaded module.
func (c *Client) Insmod(ctx context.Context, req wire.InsmodRequest) (*wire.ModuleInfo, error) {
	var out wire.ModuleInfo
	return &out, c.do(ctx, http.MethodPost, "/modules", req, &out)
}

// Rmmod calls DELETE /v1/modules/{name}[?force=1] and returns the module
// as it was unloaded.
func (c *Client) Rmmod(ctx context.Context, name string, force bool) (*wire.ModuleInfo, error) {
	path := "/modules/" + url.PathEscape(name)
	if force {
		path += "?force=1"
	}
	var out wire.ModuleInfo
	return &out, c.do(ctx, http.MethodDelete, path, nil, &out)
}

// Taint returns GET /v1/taint.
func (c *Client) Taint(ctx context.Context) (*wire.TaintReport, error) {
	var out wire.TaintReport
	return &out, c.do(ctx, http.MethodGet, "/taint", nil, &out)
}
