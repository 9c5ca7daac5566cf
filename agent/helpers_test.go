package agent_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tracemark/tracemark/agent"
	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/internal/client"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/marker"
)

// Markers of the test process.
var (
	tick  = marker.Define2("agenttest:tick", marker.Int("i"), marker.String("key"), marker.Doc("fired by the tests"))
	other = marker.Define1("agenttest:other", marker.Uint32("n"))
)

// shortDir returns a new directory with a short path: socket paths are
// limited to 107 bytes, more than t.TempDir names can afford.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tma")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startAgent starts an agent with its socket in a fresh directory and
// returns it with a client.
func startAgent(t *testing.T, opts ...agent.Option) (*agent.Agent, *client.Client) {
	t.Helper()
	dir := filepath.Join(shortDir(t), "s")
	a, err := agent.Start(append([]agent.Option{agent.WithDir(dir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	c := client.NewClient(a.Socket())
	t.Cleanup(c.Close)
	return a, c
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collected is what a stream delivered.
type collected struct {
	classes map[uint16]wire.EventClass
	records []string // "name i key" for agenttest:tick, "name n" for other
	tids    []uint32 // the records' thread ids, if the stream has them
	// ctx holds each record's context values, space-separated, and
	// streams the stream of its packet.
	ctx     []string
	streams []uint32
	end     *wire.End
	stats   int
	packets int
}

// collect reads a stream to its end, decoding every record, and checks
// that every record's class was announced before its packet.
func collect(t *testing.T, s *client.Stream) collected {
	t.Helper()
	got := collected{classes: map[uint16]wire.EventClass{}}
	dec := wire.NewDecoder()
	if err := dec.SetContext(s.Hello.Context); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := s.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		switch f.Type {
		case wire.FrameClasses:
			var cs wire.Classes
			if err := f.JSON(&cs); err != nil {
				t.Fatal(err)
			}
			for _, c := range cs.Classes {
				got.classes[c.ID] = c
			}
			if err := dec.Add(cs.Classes); err != nil {
				t.Fatal(err)
			}
		case wire.FramePacket:
			got.packets++
			ph, recs, err := f.Packet()
			if err != nil {
				t.Fatal(err)
			}
			err = dec.Decode(recs, func(r *wire.Record) error {
				got.records = append(got.records, describe(r))
				got.tids = append(got.tids, r.ThreadID)
				var vs []string
				for _, v := range r.Context {
					switch v.Kind {
					case ctf.String:
						vs = append(vs, string(v.Bytes))
					case ctf.Int:
						vs = append(vs, strconv.FormatInt(v.Int, 10))
					default:
						vs = append(vs, strconv.FormatUint(v.Uint, 10))
					}
				}
				got.ctx = append(got.ctx, strings.Join(vs, " "))
				got.streams = append(got.streams, ph.Stream)
				return nil
			})
			if err != nil {
				t.Fatalf("packet with unannounced or malformed records: %v", err)
			}
		case wire.FrameStats:
			got.stats++
		case wire.FrameEnd:
			got.end = new(wire.End)
			if err := f.JSON(got.end); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func describe(r *wire.Record) string {
	s := r.Class.Name
	for _, v := range r.Fields {
		s += " " + v.String()
	}
	return s
}
