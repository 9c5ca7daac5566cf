package ctf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	killHelperEnv  = "CTF_KILL_HELPER_DIR"
	fsizeHelperEnv = "CTF_FSIZE_HELPER_DIR"
)

// killClass is the main event class of the kill test. Every field is
// derived from seq, so each event read back can be checked completely.
var killClass = EventClass{ID: 0, Name: "kill:event", Truncation: true,
	Fields: []Field{{Name: "seq", Type: u64}, {Name: "n", Type: u32}, {Name: "text", Type: str}, {Name: "blob", Type: byt}, {Name: "neg", Type: i16}}}

// killText is the source of text contents: text[i] = 'a' + (seq+i)%26.
var killText = func() string {
	b := make([]byte, 6<<20+26)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}()

// killValues returns the field values of event seq with a text of textLen
// bytes. Everything but the text length derives from seq; the n field
// holds the text length.
func killValues(seq uint64, textLen int) ([]Value, uint8) {
	off := int(seq % 26)
	blob := make([]byte, seq*7919%3000)
	for i := range blob {
		blob[i] = byte(seq + uint64(i))
	}
	return []Value{UintValue(seq), UintValue(uint64(textLen)), StringValue(killText[off : off+textLen]),
		BytesValue(blob), IntValue(-int64(seq % 30000))}, uint8(seq % 3)
}

// lateClass is added while recording, every few packets.
func lateClass(i int) EventClass {
	return EventClass{ID: uint16(i), Name: fmt.Sprintf("kill:late%d", i),
		Fields: []Field{{Name: "k", Type: u64}, {Name: "label_with_a_longer_name", Type: str}}}
}

// TestHelperProcess is the child process of TestKill9: it records packets
// into the trace directory given by $CTF_KILL_HELPER_DIR forever, until it
// is killed. It reports on stdout "begin <k>" right before WritePacket of
// packet k and "done <k> <events>" after it (each line is one write(2)).
func TestHelperProcess(t *testing.T) {
	var err error
	switch {
	case os.Getenv(killHelperEnv) != "":
		err = killHelper(os.Getenv(killHelperEnv))
	case os.Getenv(fsizeHelperEnv) != "":
		err = fsizeHelper(os.Getenv(fsizeHelperEnv))
	default:
		t.Skip("helper process of TestKill9 and TestFileSizeLimit; only runs when they start it")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}

func killHelper(dir string) error {
	w, err := Create(dir, testInfo())
	if err != nil {
		return err
	}
	if err := w.AddEventClass(killClass); err != nil {
		return err
	}
	var seq uint64
	var recs []byte
	ts := uint64(1)
	eventsPerPacket := []int{1, 50, 2, 500, 4, 1000, 7}
	for k := 0; ; k++ {
		recs = recs[:0]
		begin := ts
		if k%3 == 2 {
			// A class added mid-recording, used right away.
			late := lateClass(k/3 + 1)
			if err := w.AddEventClass(late); err != nil {
				return err
			}
			recs, err = AppendRecord(recs, &late, ts, []Value{UintValue(uint64(k)), StringValue(late.Name)}, 0)
			if err != nil {
				return err
			}
		}
		for i := range eventsPerPacket[k%len(eventsPerPacket)] {
			// In even packets, the first event has a text of 1 to 6 MiB,
			// so that the packet spans many pages and most of the child's
			// time is spent in write(2).
			textLen := int(seq % 50)
			if k%2 == 0 && i == 0 {
				textLen = 1<<20 + k*7919%(5<<20)
			}
			vals, trunc := killValues(seq, textLen)
			if recs, err = AppendRecord(recs, &killClass, ts, vals, trunc); err != nil {
				return err
			}
			seq++
			ts += 3
		}
		p := PacketInfo{BeginTS: begin, EndTS: ts, Seq: uint64(k), CPU: 0}
		fmt.Printf("begin %d\n", k)
		if err := w.WritePacket(0, p, recs); err != nil {
			return err
		}
		fmt.Printf("done %d %d\n", k, seq)
		ts++
	}
}

// TestKill9 kills a recording child process with SIGKILL while it writes
// packet k (right after it reports "begin k"), for various k, and checks
// that Babeltrace reads the trace without error and that every event of
// every packet the child finished writing is there, intact.
func TestKill9(t *testing.T) {
	if !haveBabeltrace {
		t.Log("babeltrace2 is not on PATH: checking the killed traces with the Reader only")
	}
	for _, target := range []int{0, 1, 2, 3, 5, 8, 12, 13, 21, 24, 33} {
		t.Run(fmt.Sprintf("packet%d", target), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the child starts writing packet target, then
			// kill it.
			sc := bufio.NewScanner(out)
			var packets, events uint64 // complete packets and their events
			started := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && f[0] == "begin" && f[1] == strconv.Itoa(target) {
					started = true
					break
				}
				if len(f) == 3 && f[0] == "done" {
					k, _ := strconv.ParseUint(f[1], 10, 64)
					packets = k + 1
					events, _ = strconv.ParseUint(f[2], 10, 64)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			werr := cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v; stderr:\n%s", werr, stderr.String())
			}
			if !started {
				t.Fatalf("child exited before packet %d; stderr:\n%s", target, stderr.String())
			}

			// Babeltrace reads the whole trace without error or warning.
			n := -1
			if haveBabeltrace {
				n = babeltraceCount(t, dir).events
			}

			// Every event is intact, and all events of the reported
			// packets are there.
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var seq uint64
			late := 0
			for ev, err := range r.Events() {
				if err != nil {
					t.Fatal(err)
				}
				if ev.Class == nil {
					t.Fatalf("unexpected notice %+v", ev)
				}
				if ev.Class.ID != 0 {
					late++
					want := lateClass(int(ev.Class.ID))
					if !ev.Class.equal(&want) || string(ev.Fields[1].Bytes) != want.Name {
						t.Fatalf("late event %+v, want class %+v", ev, want)
					}
					continue
				}
				want, trunc := killValues(seq, int(ev.Fields[1].Uint))
				for i, v := range ev.Fields {
					if !v.Equal(want[i]) {
						t.Fatalf("event seq %d field %s = %v, want %v", seq, killClass.Fields[i].Name, v, want[i])
					}
				}
				if ev.Truncated != trunc {
					t.Fatalf("event seq %d truncated = %d, want %d", seq, ev.Truncated, trunc)
				}
				seq++
			}
			if seq < events {
				t.Errorf("read %d events, but the child had completed packets with %d", seq, events)
			}
			if n >= 0 && n != int(seq)+late {
				t.Errorf("babeltrace read %d events, Reader %d", n, int(seq)+late)
			}
			t.Logf("killed while writing packet %d, after %d complete packets (%d events); the trace holds %d events", target, packets, events, seq)
		})
	}
}

// fsizeLimit is the file size limit of TestFileSizeLimit's child; not a
// whole number of pages, so that failed writes end in mid-page.
const fsizeLimit = 300<<10 + 1000

// fsizeHelper writes packets of growing size under a file size limit, so
// that growing the stream file fails (EFBIG) part way, then small packets
// that still fit, and exits without closing the trace (as if it crashed).
// It prints "ok <events> <failures>" with the number of events of the
// packets WritePacket accepted.
func fsizeHelper(dir string) error {
	w, err := Create(dir, testInfo())
	if err != nil {
		return err
	}
	if err := w.AddEventClass(killClass); err != nil {
		return err
	}
	if err := limitFileSize(fsizeLimit); err != nil {
		return err
	}
	var seq, accepted, pseq uint64
	failures := 0
	ts := uint64(1)
	for k := 0; k < 60; k++ {
		n := 1 + k*5 // events of up to 3000-byte blobs
		if failures > 0 {
			n = 1
		}
		var recs []byte
		first := seq
		begin := ts
		for range n {
			vals, trunc := killValues(seq, int(seq%50))
			if recs, err = AppendRecord(recs, &killClass, ts, vals, trunc); err != nil {
				return err
			}
			seq++
			ts += 3
		}
		err := w.WritePacket(0, PacketInfo{BeginTS: begin, EndTS: ts, Seq: pseq}, recs)
		if err != nil {
			if !errors.Is(err, syscall.EFBIG) {
				return err
			}
			failures++
			seq = first // the events were not written: reuse their numbers
			continue
		}
		accepted = seq
		pseq++
	}
	if failures == 0 {
		return errors.New("no write failed: the limit is too high")
	}
	fmt.Printf("ok %d %d\n", accepted, failures)
	return nil
}

// TestFileSizeLimit checks that failed writes (the file size limit is hit
// while the stream file grows) leave a valid trace holding exactly the
// accepted packets, and that writing can go on with packets that fit. The
// writer is not closed, so the file is checked as a crash would leave it.
func TestFileSizeLimit(t *testing.T) {
	if !hasFileSizeLimit {
		t.Skip("no file size limit (RLIMIT_FSIZE) on " + runtime.GOOS)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeHelperEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var accepted, failures uint64
	if _, err := fmt.Sscanf(string(out), "ok %d %d", &accepted, &failures); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	st, err := os.Stat(filepath.Join(dir, "channel0_0"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > fsizeLimit {
		t.Errorf("stream file is %d bytes, over the %d limit", st.Size(), fsizeLimit)
	}
	var seq uint64
	for ev, err := range readAllIter(t, dir) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Class == nil {
			t.Fatalf("unexpected notice %+v", ev)
		}
		want, trunc := killValues(seq, int(ev.Fields[1].Uint))
		for i, v := range ev.Fields {
			if !v.Equal(want[i]) || ev.Truncated != trunc {
				t.Fatalf("event seq %d field %d = %v, want %v", seq, i, v, want[i])
			}
		}
		seq++
	}
	if seq != accepted {
		t.Errorf("read %d events, the writer accepted %d", seq, accepted)
	}
	if haveBabeltrace {
		if c := babeltraceCount(t, dir); c.events != int(seq) {
			t.Errorf("babeltrace read %d events, want %d", c.events, seq)
		}
	}
	t.Logf("%d writes failed; %d events written in %d bytes", failures, seq, st.Size())
}
