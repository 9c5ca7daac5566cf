package wasm

import (
	"math"

	"github.com/tracemark/tracemark/marker"
)

// fireValues builds the marker.Values of one event and fires it.
//
// It is written out once per field, not as a loop, to allocate nothing:
// marker's Value constructors take the address of their argument, and the
// compiler keeps that argument on this function's stack only when the
// constructor is inlined outside any loop and the values do not escape
// (Dynamic.Fire does not keep them). TestFireAllocs checks it; race builds
// allocate anyway, as marker's do.
func fireValues(d *marker.Dynamic, kinds *[marker.MaxFields]marker.Kind, n int, bits *[marker.MaxFields]uint64, strs *[marker.MaxFields]string, byts *[marker.MaxFields][]byte) error {
	var v [marker.MaxFields]marker.Value
	if n > 0 {
		switch k := kinds[0]; {
		case k.Signed():
			v[0] = marker.IntValue(k, int64(bits[0]))
		case k.Unsigned():
			v[0] = marker.UintValue(k, bits[0])
		case k == marker.KindFloat32:
			v[0] = marker.Float32Value(math.Float32frombits(uint32(bits[0])))
		case k == marker.KindFloat64:
			v[0] = marker.Float64Value(math.Float64frombits(bits[0]))
		case k == marker.KindBool:
			v[0] = marker.BoolValue(bits[0] != 0)
		case k == marker.KindString:
			v[0] = marker.StringValue(strs[0])
		default:
			v[0] = marker.BytesValue(byts[0])
		}
	}
	if n > 1 {
		switch k := kinds[1]; {
		case k.Signed():
			v[1] = marker.IntValue(k, int64(bits[1]))
		case k.Unsigned():
			v[1] = marker.UintValue(k, bits[1])
		case k == marker.KindFloat32:
			v[1] = marker.Float32Value(math.Float32frombits(uint32(bits[1])))
		case k == marker.KindFloat64:
			v[1] = marker.Float64Value(math.Float64frombits(bits[1]))
		case k == marker.KindBool:
			v[1] = marker.BoolValue(bits[1] != 0)
		case k == marker.KindString:
			v[1] = marker.StringValue(strs[1])
		default:
			v[1] = marker.BytesValue(byts[1])
		}
	}
	if n > 2 {
		switch k := kinds[2]; {
		case k.Signed():
			v[2] = marker.IntValue(k, int64(bits[2]))
		case k.Unsigned():
			v[2] = marker.UintValue(k, bits[2])
		case k == marker.KindFloat32:
			v[2] = marker.Float32Value(math.Float32frombits(uint32(bits[2])))
		case k == marker.KindFloat64:
			v[2] = marker.Float64Value(math.Float64frombits(bits[2]))
		case k == marker.KindBool:
			v[2] = marker.BoolValue(bits[2] != 0)
		case k == marker.KindString:
			v[2] = marker.StringValue(strs[2])
		default:
			v[2] = marker.BytesValue(byts[2])
		}
	}
	if n > 3 {
		switch k := kinds[3]; {
		case k.Signed():
			v[3] = marker.IntValue(k, int64(bits[3]))
		case k.Unsigned():
			v[3] = marker.UintValue(k, bits[3])
		case k == marker.KindFloat32:
			v[3] = marker.Float32Value(math.Float32frombits(uint32(bits[3])))
		case k == marker.KindFloat64:
			v[3] = marker.Float64Value(math.Float64frombits(bits[3]))
		case k == marker.KindBool:
			v[3] = marker.BoolValue(bits[3] != 0)
		case k == marker.KindString:
			v[3] = marker.StringValue(strs[3])
		default:
			v[3] = marker.BytesValue(byts[3])
		}
	}
	if n > 4 {
		switch k := kinds[4]; {
		case k.Signed():
			v[4] = marker.IntValue(k, int64(bits[4]))
		case k.Unsigned():
			v[4] = marker.UintValue(k, bits[4])
		case k == marker.KindFloat32:
			v[4] = marker.Float32Value(math.Float32frombits(uint32(bits[4])))
		case k == marker.KindFloat64:
			v[4] = marker.Float64Value(math.Float64frombits(bits[4]))
		case k == marker.KindBool:
			v[4] = marker.BoolValue(bits[4] != 0)
		case k == marker.KindString:
			v[4] = marker.StringValue(strs[4])
		default:
			v[4] = marker.BytesValue(byts[4])
		}
	}
	if n > 5 {
		switch k := kinds[5]; {
		case k.Signed():
			v[5] = marker.IntValue(k, int64(bits[5]))
		case k.Unsigned():
			v[5] = marker.UintValue(k, bits[5])
		case k == marker.KindFloat32:
			v[5] = marker.Float32Value(math.Float32frombits(uint32(bits[5])))
		case k == marker.KindFloat64:
			v[5] = marker.Float64Value(math.Float64frombits(bits[5]))
		case k == marker.KindBool:
			v[5] = marker.BoolValue(bits[5] != 0)
		case k == marker.KindString:
			v[5] = marker.StringValue(strs[5])
		default:
			v[5] = marker.BytesValue(byts[5])
		}
	}
	if n > 6 {
		switch k := kinds[6]; {
		case k.Signed():
			v[6] = marker.IntValue(k, int64(bits[6]))
		case k.Unsigned():
			v[6] = marker.UintValue(k, bits[6])
		case k == marker.KindFloat32:
			v[6] = marker.Float32Value(math.Float32frombits(uint32(bits[6])))
		case k == marker.KindFloat64:
			v[6] = marker.Float64Value(math.Float64frombits(bits[6]))
		case k == marker.KindBool:
			v[6] = marker.BoolValue(bits[6] != 0)
		case k == marker.KindString:
			v[6] = marker.StringValue(strs[6])
		default:
			v[6] = marker.BytesValue(byts[6])
		}
	}
	if n > 7 {
		switch k := kinds[7]; {
		case k.Signed():
			v[7] = marker.IntValue(k, int64(bits[7]))
		case k.Unsigned():
			v[7] = marker.UintValue(k, bits[7])
		case k == marker.KindFloat32:
			v[7] = marker.Float32Value(math.Float32frombits(uint32(bits[7])))
		case k == marker.KindFloat64:
			v[7] = marker.Float64Value(math.Float64frombits(bits[7]))
		case k == marker.KindBool:
			v[7] = marker.BoolValue(bits[7] != 0)
		case k == marker.KindString:
			v[7] = marker.StringValue(strs[7])
		default:
			v[7] = marker.BytesValue(byts[7])
		}
	}
	return d.Fire(v[:n]...)
}
