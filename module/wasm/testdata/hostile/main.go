//go:build wasip1

// Command hostile is a module that misbehaves on request, for the
// sandbox's tests. Each export is one kind of misbehaviour; garbage and
// bad_define take the name of a case as input and return the host's
// result code in decimal.
package main

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/tracemark/tracemark/guest"
)

// Handles 1 to 4, in this order.
var (
	event = guest.Define2("hostile:event", guest.String("s"), guest.Int64("n"), guest.Doc("one event"))
	ints  = guest.Define6("hostile:ints", guest.Int8("a"), guest.Int16("b"), guest.Int32("c"), guest.Int64("d"), guest.Uint8("e"), guest.Uint16("f"))
	more  = guest.Define6("hostile:more", guest.Uint32("a"), guest.Uint64("b"), guest.Float32("c"), guest.Float64("d"), guest.Bool("e"), guest.Duration("f"), guest.Stable)
	vars  = guest.Define2("hostile:vars", guest.String("s"), guest.Bytes("b"))
)

//go:wasmimport tracemark_v1 fire
func rawFire(h int32, p unsafe.Pointer, n uint32) int32

//go:wasmimport tracemark_v1 define
func rawDefine(p unsafe.Pointer, n uint32) int32

func main() {}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func result(code int32) []byte { return []byte(strconv.Itoa(int(code))) }

//go:wasmexport echo
func echo(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func(in []byte) []byte { return append([]byte("echo:"), in...) })
}

// fire_all fires every kind with known values.
//
//go:wasmexport fire_all
func fireAll(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func([]byte) []byte {
		event.Fire("héllo", -42)
		ints.Fire(-8, -16, -32, math.MinInt64, 200, 65535)
		more.Fire(4000000000, math.MaxUint64, 1.5, -2.25, true, 1500*time.Millisecond)
		vars.Fire("x\xffy", []byte{0, 1, 2})
		return nil
	})
}

// flood fires hostile:event as often as its input says.
//
//go:wasmexport flood
func flood(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func(in []byte) []byte {
		count, _ := strconv.Atoi(string(in))
		for i := range count {
			event.Fire("flood", int64(i))
		}
		return nil
	})
}

//go:wasmexport loop
func loop(p unsafe.Pointer, n uint32) uint64 {
	for {
	}
}

//go:wasmexport sleep
func sleep(p unsafe.Pointer, n uint32) uint64 {
	time.Sleep(time.Hour)
	return 0
}

var hoard [][]byte

// grow allocates until the memory cap stops it.
//
//go:wasmexport grow
func grow(p unsafe.Pointer, n uint32) uint64 {
	for {
		hoard = append(hoard, make([]byte, 1<<20))
	}
}

//go:wasmexport panic_after_fire
func panicAfterFire(p unsafe.Pointer, n uint32) uint64 {
	event.Fire("last words", 1)
	panic("hostile module gives up")
}

// output_oob returns an output outside its memory.
//
//go:wasmexport output_oob
func outputOOB(p unsafe.Pointer, n uint32) uint64 {
	return 0xffff_ff00<<32 | 1000
}

func str(s string) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(len(s)))
}

// garbage calls fire with a broken argument buffer.
//
//go:wasmexport garbage
func garbage(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func(in []byte) []byte {
		valid := append(str("ok"), "ok"...)
		valid = binary.LittleEndian.AppendUint64(valid, 7)
		switch string(in) {
		case "valid":
			return result(rawFire(1, ptr(valid), uint32(len(valid))))
		case "truncated_string":
			b := append(str("hello"), 'h')
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "truncated_int":
			b := append(str("ok"), "ok\x07\x00\x00\x00"...)
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "trailing":
			b := append(valid, 0)
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "utf8":
			// A strict string field (the SDK's are lenient).
			d := def("hostile:strict", "12", "s")
			h := rawDefine(ptr(d), uint32(len(d)))
			b := append(str("\xff\xfe"), "\xff\xfe"...)
			return result(rawFire(h, ptr(b), uint32(len(b))))
		case "utf8_lenient":
			b := append(str("a\xffb"), "a\xffb"...)
			b = binary.LittleEndian.AppendUint64(b, 1)
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "oversized":
			s := string(make([]byte, 5000))
			b := append(str(s), s...)
			b = binary.LittleEndian.AppendUint64(b, 1)
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "huge_length":
			b := binary.LittleEndian.AppendUint32(nil, 0xffff_ffff)
			return result(rawFire(1, ptr(b), uint32(len(b))))
		case "bad_bool":
			b := binary.LittleEndian.AppendUint32(nil, 1)
			b = binary.LittleEndian.AppendUint64(b, 2)
			b = binary.LittleEndian.AppendUint32(b, 0)
			b = binary.LittleEndian.AppendUint64(b, 0)
			b = append(b, 2) // bool
			b = binary.LittleEndian.AppendUint64(b, 0)
			return result(rawFire(3, ptr(b), uint32(len(b))))
		case "unknown_marker":
			return result(rawFire(99, ptr(valid), uint32(len(valid))))
		case "negative_handle":
			return result(rawFire(-1, ptr(valid), uint32(len(valid))))
		case "out_of_bounds":
			return result(rawFire(1, unsafe.Pointer(uintptr(0xffff_fff0)), 100))
		case "args_too_big":
			return result(rawFire(1, ptr(valid), 1<<20))
		}
		return []byte("unknown case")
	})
}

func def(name string, fields ...string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	b = append(b, byte(len(fields)/2))
	for i := 0; i < len(fields); i += 2 {
		k, _ := strconv.Atoi(fields[i])
		b = append(b, byte(k), byte(len(fields[i+1])))
		b = append(b, fields[i+1]...)
	}
	return append(b, 0, 0, 0) // unstable, no doc
}

// bad_define calls define with a broken definition.
//
//go:wasmexport bad_define
func badDefine(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func(in []byte) []byte {
		var b []byte
		switch string(in) {
		case "valid":
			b = def("hostile:extra", "4", "n")
		case "truncated":
			b = []byte{20, 'h', 'o'}
		case "bad_kind":
			b = def("hostile:x", "99", "n")
		case "bad_name":
			b = def("Bad Name", "4", "n")
		case "utf8":
			b = def("hostile:\xff", "4", "n")
		case "host_marker":
			b = def("hosttest:ping", "4", "n")
		case "redefine":
			b = def("hostile:event", "4", "n")
		case "trailing":
			b = append(def("hostile:y", "4", "n"), 1)
		case "doc_control":
			b = def("hostile:z", "4", "n")
			b = append(b[:len(b)-2], 4, 0, 0x1b, '[', '2', 'J')
		case "out_of_bounds":
			return result(rawDefine(unsafe.Pointer(uintptr(0xffff_fff0)), 100))
		case "too_many":
			for i := range 1000 {
				b = def("hostile:m"+strconv.Itoa(i), "4", "n")
				if r := rawDefine(ptr(b), uint32(len(b))); r < 0 {
					return result(r)
				}
			}
			return result(0)
		default:
			return []byte("unknown case")
		}
		return result(rawDefine(ptr(b), uint32(len(b))))
	})
}

// Benchmark helpers: count is the hook's pointer argument (the benchmarks
// call them directly, not as hooks).

// bench_rawfire calls fire directly with a prebuilt buffer.
//
//go:wasmexport bench_rawfire
func benchRawFire(count uint32, _ uint32) uint64 {
	b := append(str("flood"), "flood"...)
	b = binary.LittleEndian.AppendUint64(b, 7)
	for range count {
		rawFire(1, ptr(b), uint32(len(b)))
	}
	return 0
}

// bench_sdk fires through the SDK.
//
//go:wasmexport bench_sdk
func benchSDK(count uint32, _ uint32) uint64 {
	for i := range count {
		event.Fire("flood", int64(i))
	}
	return 0
}

// bench_sdk100 fires through the SDK 100 times per loop iteration (count
// rounded down to a multiple of 100), so that the loop's own cost (a
// deadline check per iteration) does not hide a disabled marker's.
//
//go:wasmexport bench_sdk100
func benchSDK100(count uint32, _ uint32) uint64 {
	for i := range count / 100 {
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
		event.Fire("flood", int64(i))
	}
	return 0
}

// bench_empty100 is bench_sdk100 without the Fires: its loop alone, the
// baseline that BenchmarkFireDisabled subtracts.
//
//go:wasmexport bench_empty100
func benchEmpty100(count uint32, _ uint32) uint64 {
	for range count / 100 {
	}
	return 0
}

// enabled_flag returns "1" if the SDK sees hostile:event enabled, "0" if
// not, without asking the host.
//
//go:wasmexport enabled_flag
func enabledFlag(p unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(p, n, func([]byte) []byte {
		if event.Enabled() {
			return []byte("1")
		}
		return []byte("0")
	})
}
