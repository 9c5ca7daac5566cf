//go:build !wasip1

package guest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// capture intercepts what would be sent to the host.
func capture(t *testing.T) (defs, args *[][]byte) {
	t.Helper()
	defs, args = new([][]byte), new([][]byte)
	nativeDefine = func(b []byte) int32 {
		*defs = append(*defs, bytes.Clone(b))
		return int32(len(*defs))
	}
	nativeFire = func(h int32, b []byte) int32 {
		*args = append(*args, bytes.Clone(b))
		return 0
	}
	t.Cleanup(func() { nativeDefine, nativeFire = nil, nil })
	return defs, args
}

func le(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		default:
			b, _ = binary.Append(b, binary.LittleEndian, v)
		}
	}
	return b
}

// The definition encoding of ABI v1, byte for byte.
func TestDefineEncoding(t *testing.T) {
	defs, _ := capture(t)
	m := Define3("app:req", String("path"), Int64("n"), Bool("ok"), Stable, Doc("a request"))
	if m.Err() != nil || m.h != 1 {
		t.Fatalf("handle %d err %v", m.h, m.Err())
	}
	want := []byte{7}
	want = append(want, "app:req"...)
	want = append(want, 3, 12|0x80, 4)
	want = append(want, "path"...)
	want = append(want, 4, 1, 'n', 11, 2, 'o', 'k', 1, 9, 0)
	want = append(want, "a request"...)
	if !bytes.Equal((*defs)[0], want) {
		t.Errorf("definition\n got %q\nwant %q", (*defs)[0], want)
	}
	Define0("app:zero", Doc(strings.Repeat("d", 2000)))
	if d := (*defs)[1]; len(d) != 1+8+1+1+2+MaxDocBytes {
		t.Errorf("long doc not truncated: %d bytes", len(d))
	}
	bad := Define1(strings.Repeat("x", 256), Int8("a"))
	if !errors.Is(bad.Err(), ErrEncoding) || bad.h != 0 {
		t.Errorf("long name: %v", bad.Err())
	}
	nativeDefine = func([]byte) int32 { return -6 }
	taken := Define0("http:request")
	if !errors.Is(taken.Err(), ErrExists) || taken.Err().Error() != "tracemark: marker name taken by the host or another module" {
		t.Errorf("refused definition: %v", taken.Err())
	}
	taken.Fire() // does nothing
}

// The argument encoding of ABI v1, byte for byte, for every field type.
func TestFireEncoding(t *testing.T) {
	_, args := capture(t)
	a := Define6("t:a", Int8("a"), Int16("b"), Int32("c"), Int64("d"), Int("e"), Uint8("f"))
	b := Define6("t:b", Uint16("a"), Uint32("b"), Uint64("c"), Uint("d"), Float32("e"), Float64("f"))
	c := Define4("t:c", Bool("a"), Duration("b"), String("c"), Bytes("d"))
	d := Define2("t:d", String("long"), Bytes("long"))
	a.Fire(-1, -2, -3, -4, -5, 250)
	b.Fire(65535, 1<<32-1, math.MaxUint64, 7, 1.5, -2.5)
	c.Fire(true, time.Second, "héllo\xff", []byte{1, 2})
	long := "a" + strings.Repeat("é", MaxFieldBytes/2) // cut in the middle of an é: the host repairs it
	d.Fire(long, bytes.Repeat([]byte{9}, MaxFieldBytes+10))
	want := [][]byte{
		le(int8(-1), int16(-2), int32(-3), int64(-4), int64(-5), uint8(250)),
		le(uint16(65535), uint32(1<<32-1), uint64(math.MaxUint64), uint64(7), float32(1.5), float64(-2.5)),
		le(uint8(1), int64(time.Second), "héllo\xff", uint32(2), []byte{1, 2}),
		le(long[:MaxFieldBytes], uint32(MaxFieldBytes), bytes.Repeat([]byte{9}, MaxFieldBytes)),
	}
	if len(*args) != len(want) {
		t.Fatalf("%d events", len(*args))
	}
	for i := range want {
		if !bytes.Equal((*args)[i], want[i]) {
			t.Errorf("event %d\n got %x\nwant %x", i, (*args)[i], want[i])
		}
	}
	Define0("t:zero").Fire()
	if got := (*args)[len(*args)-1]; len(got) != 0 {
		t.Errorf("no-field event %x", got)
	}
}

// Fire does not allocate (natively: the buffer comes from a pool).
func TestFireAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	capture(t)
	nativeFire = func(int32, []byte) int32 { return 0 }
	m := Define3("t:allocs", String("s"), Int64("n"), Bytes("b"))
	s, p := "a string", []byte("bytes")
	if n := testing.AllocsPerRun(100, func() { m.Fire(s, 42, p) }); n != 0 {
		t.Errorf("Fire allocates %v times", n)
	}
}

func TestHandleNative(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handle did not panic outside wasip1")
		}
	}()
	Handle(nil, 0, func(b []byte) []byte { return b })
}

func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	want, err := exec.Command("go", "run", "./internal/genmarkers").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("marker_gen.go")
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("marker_gen.go is out of date: run go generate ./guest (%v)", err)
	}
}

func TestErrors(t *testing.T) {
	for e := ErrEncoding; e <= ErrFault; e++ {
		if e.Error() == "" {
			t.Errorf("%d has no message", e)
		}
	}
	if Error(-50).Error() != "tracemark: error -50" {
		t.Error(Error(-50).Error())
	}
}
