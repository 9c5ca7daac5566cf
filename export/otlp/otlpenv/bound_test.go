package otlpenv

import (
	"testing"
	"time"

	"github.com/tracemark/tracemark/export/otlp"
)

// OTEL_EXPORTER_OTLP_TIMEOUT=0 (no limit, for any one signal) does not
// make Close wait weeks for a collector that is down.
func TestCloseBound(t *testing.T) {
	for _, c := range []struct{ timeout, want time.Duration }{
		{2 * time.Second, 2 * time.Second},
		{otlp.DefaultTimeout, otlp.DefaultTimeout},
		{otlp.NoTimeout, otlp.DefaultTimeout},
	} {
		if got := closeBound(c.timeout); got != c.want {
			t.Errorf("closeBound(%v) = %v, want %v", c.timeout, got, c.want)
		}
	}
}
