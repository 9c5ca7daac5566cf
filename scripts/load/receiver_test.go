package main

import (
	"context"
	"os"
	"testing"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/export/otlp"
)

// TestMain lets the test binary stand in for the load program when
// startReceiver runs it as the receiver.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == serveReceiverFlag {
		if err := serveReceiver(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The receiver counts every log record an exporter sent it, in a process
// of its own (whose CPU it reports) and in this one.
func TestReceiverCounts(t *testing.T) {
	for _, inProc := range []bool{false, true} {
		recv, err := startReceiver(inProc)
		if err != nil {
			t.Fatal(err)
		}
		exp, err := otlp.New(recv.url, otlp.WithBlock(), otlp.WithBatch(1000, 0, 0))
		if err != nil {
			recv.stop()
			t.Fatal(err)
		}
		c := &otlp.Class{Name: "load:event", Fields: []otlp.Field{{Name: "i"}}}
		const n = 25_000
		for i := range n {
			exp.Log(c, int64(i), []ctf.Value{ctf.IntValue(int64(i))}, 0)
		}
		if err := exp.Close(context.Background()); err != nil {
			recv.stop()
			t.Fatal(err)
		}
		got, cpu, err := recv.counts()
		recv.stop()
		if err != nil {
			t.Fatal(err)
		}
		if got.Logs != n || got.Requests != n/1000 || got.Malformed != 0 || got.Bytes == 0 {
			t.Errorf("in process %v: counted %+v, want %d log records in %d requests", inProc, got, n, n/1000)
		}
		if !inProc && cpu <= 0 {
			t.Errorf("the receiver's process used %v of CPU", cpu)
		}
	}
}
