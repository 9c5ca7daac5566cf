package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tracemark/tracemark/internal/otlptest"
)

// The receiver of -path otlp counts what tracemark record --otlp sends.
// It runs in a process of its own, as a collector does: in this
// process, its request handlers took both Ps for milliseconds at a time
// while the replay's stream waited for one, and the traced program's
// buffers overflowed for a reason no deployment has. -receiver inproc
// keeps the old way, to compare.

// otlpReceiverInProc makes -path otlp count in this process.
var otlpReceiverInProc bool

// serveReceiverFlag runs this program as the receiver: it prints the
// address it listens on, counts until its standard input ends, then
// prints the counts as JSON and exits.
const serveReceiverFlag = "-serve-otlp-receiver"

// receiverCounts are the receiver's counts at the end.
type receiverCounts struct {
	Logs, Spans, Requests, Bytes, Malformed uint64
}

func countsOf(c *otlptest.Counter) receiverCounts {
	return receiverCounts{Logs: c.Logs.Load(), Spans: c.Spans.Load(), Requests: c.Requests.Load(),
		Bytes: c.Bytes.Load(), Malformed: c.Malformed.Load()}
}

// receiver is a running receiver.
type receiver struct {
	url    string
	counts func() (receiverCounts, time.Duration, error) // at the end, and the CPU it used
	stop   func()
}

// startReceiver starts the receiver, in this process if inProc.
func startReceiver(inProc bool) (*receiver, error) {
	if inProc {
		var c otlptest.Counter
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: &c}
		go srv.Serve(ln)
		return &receiver{url: "http://" + ln.Addr().String(),
			counts: func() (receiverCounts, time.Duration, error) { return countsOf(&c), 0, nil },
			stop:   func() { srv.Close() }}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, serveReceiverFlag)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out := bufio.NewReader(stdout)
	addr, err := out.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the receiver did not start: %v", err)
	}
	r := &receiver{url: "http://" + strings.TrimSpace(addr)}
	done := false
	r.counts = func() (receiverCounts, time.Duration, error) {
		var c receiverCounts
		stdin.Close()
		err := json.NewDecoder(out).Decode(&c)
		err = errors.Join(err, cmd.Wait())
		done = true
		if err != nil {
			return c, 0, fmt.Errorf("the receiver: %v", err)
		}
		return c, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	r.stop = func() {
		if !done {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	return r, nil
}

// serveReceiver is this program run with serveReceiverFlag.
func serveReceiver() error {
	var c otlptest.Counter
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &c}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	// The exporter has had its answers: tracemark record exited before
	// the counts are asked for.
	srv.Close()
	return json.NewEncoder(os.Stdout).Encode(countsOf(&c))
}
