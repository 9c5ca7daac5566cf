package session

import (
	"testing"

	"github.com/tracemark/tracemark/marker"
)

var benchFilterMarker = marker.Define3("sessbench:filter", marker.Int64("status"), marker.Int64("size"), marker.String("path"))

func BenchmarkFilterEval(b *testing.B) {
	for _, tc := range []struct{ name, src string }{
		{"reject", `status >= 500 && path.startsWith("/api")`},
		{"accept", `status >= 200 && path.startsWith("/api")`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := compileFilter(tc.src, benchFilterMarker.Info(), filterLimits{maxString: 1024})
			if err != nil {
				b.Fatal(err)
			}
			p, _ := marker.Register("sessbench:filter", func(e *marker.Event) { f.accept(e) })
			defer p.Unregister()
			b.ReportAllocs()
			for b.Loop() {
				benchFilterMarker.Fire(404, 1234, "/api/users/1234")
			}
		})
	}
}
