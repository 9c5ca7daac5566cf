package wasm

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestInvalidOption checks that NewHost and the loads refuse an option
// given a value out of its range with an error naming the option, before
// reading or compiling anything.
func TestInvalidOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  HostOption
	}{
		{"WithLimits", WithLimits(Limits{CallTimeout: -time.Second})},
		{"WithLimits", WithLimits(Limits{MaxMarkers: -1})},
		{"WithCacheBytes", WithCacheBytes(-1)},
	} {
		h, err := NewHost(tc.opt)
		if err == nil {
			h.Close(context.Background())
			t.Errorf("%s: NewHost succeeded, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %q does not name the option", tc.name, err)
		}
	}
	h := newHost(t)
	if _, err := h.Load(context.Background(), []byte("not read"), WithLoadLimits(Limits{InitTimeout: -1})); err == nil || !strings.Contains(err.Error(), "WithLoadLimits") {
		t.Errorf("Load: %v, want an error naming WithLoadLimits", err)
	}
	if _, err := h.LoadFile(context.Background(), "/nonexistent.wasm", WithLoadLimits(Limits{MaxModuleBytes: -1})); err == nil || !strings.Contains(err.Error(), "WithLoadLimits") {
		t.Errorf("LoadFile: %v, want an error naming WithLoadLimits", err)
	}
}

// TestLimitsOptionsAddUp checks that WithLimits replaces only the fields
// it sets, of the defaults or of an earlier WithLimits.
func TestLimitsOptionsAddUp(t *testing.T) {
	h := newHost(t, WithLimits(Limits{MemoryPages: 20}), WithLimits(Limits{MaxMarkers: 10}))
	l := h.Limits()
	if l.MemoryPages != 20 || l.MaxMarkers != 10 || l.CallTimeout != DefaultLimits.CallTimeout {
		t.Errorf("limits %+v", l)
	}
}
