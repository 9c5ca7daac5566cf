package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/internal/wire"
)

// guardListener accepts only connections from this process's user or
// root (checked with the peer's credentials, which the kernel records at
// connect time and a client cannot forge), and at most max at a time.
type guardListener struct {
	*net.UnixListener
	uid   int
	slots chan struct{}
	log   *slog.Logger
	// rejecting bounds the connections being answered a refusal.
	rejecting chan struct{}
	refused   atomic.Uint64
	overload  atomic.Uint64
}

func newGuardListener(ln *net.UnixListener, max int, log *slog.Logger) *guardListener {
	return &guardListener{UnixListener: ln, uid: os.Geteuid(), slots: make(chan struct{}, max), rejecting: make(chan struct{}, 8), log: log}
}

// streamSendBuffer is the socket send buffer asked for connections (see
// Accept): two default sub-buffers of each of a few shards.
const streamSendBuffer = 4 << 20

// Accept returns the next acceptable connection, answering and closing
// the others itself.
func (l *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, pid, err := peerCred(c)
		if err != nil || (uid != l.uid && uid != 0) {
			l.refused.Add(1)
			l.log.Warn("refused connection from another user", "uid", uid, "pid", pid, "err", err)
			l.reject(c, wire.Errorf(wire.CodeForbidden, "the tracemark agent of this process only serves uid %d and root", l.uid))
			continue
		}
		// Let a recording's stream queue a whole drain in the socket: a
		// reader whose write would block must wait for a P again before
		// it can drain more, which, while the program keeps every P busy,
		// means the scheduler's 10 ms preemption each time. The kernel
		// caps the size at net.core.wmem_max, and only charges what is
		// queued.
		_ = c.SetWriteBuffer(streamSendBuffer)
		select {
		case l.slots <- struct{}{}:
			return &slotConn{UnixConn: c, release: func() { <-l.slots }}, nil
		default:
			l.overload.Add(1)
			l.reject(c, wire.Errorf(wire.CodeUnavailable, "too many connections (%d)", cap(l.slots)))
		}
	}
}

// reject answers a connection's first request with an error and closes
// it, on its own goroutine: the agent waits (briefly) for the request,
// because HTTP clients discard answers that come before their request.
// At most cap(rejecting) connections are in that state; beyond, they are
// closed at once, so a flood of refused peers costs nothing but the
// closing.
func (l *guardListener) reject(c *net.UnixConn, e *wire.Error) {
	select {
	case l.rejecting <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		defer c.Close()
		body := fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, e.Code, e.Message)
		resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			e.Status, statusText(e.Status), wire.ContentTypeJSON, len(body), body)
		_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		var buf [4096]byte
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
		_, _ = c.Write([]byte(resp))
		// Let the peer read the answer before the close: a close with
		// unread request bytes could reset the connection.
		_ = c.CloseWrite()
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

func statusText(code int) string {
	if code == 403 {
		return "Forbidden"
	}
	return "Service Unavailable"
}

// slotConn gives its slot back when closed.
type slotConn struct {
	*net.UnixConn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.release)
	return c.UnixConn.Close()
}
