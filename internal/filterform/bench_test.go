package filterform

import (
	"fmt"
	"testing"

	"github.com/tracemark/tracemark/marker"
)

// balanced returns a balanced tree of n operators op over leaves.
func balanced(n int, op string, leaf func() *Node) *Node {
	if n == 0 {
		return leaf()
	}
	l := (n - 1) / 2
	return call(op, balanced(l, op, leaf), balanced(n-1-l, op, leaf))
}

// BenchmarkNodes measures what a node of each kind takes, the figures of
// the cost model (nodeNs): the most nodes the budget allows, evaluated
// on an event that makes them all run.
func BenchmarkNodes(b *testing.B) {
	status := func() *Node { return field("status") }
	for _, tc := range []struct {
		name string
		form func(n int) *Node
	}{
		{"add", func(n int) *Node { return call("eq", balanced(n, "add", status), &Node{Op: "int", Int: -1}) }},
		{"mul", func(n int) *Node { return call("eq", balanced(n, "mul", status), &Node{Op: "int", Int: -1}) }},
		{"div", func(n int) *Node { return call("eq", balanced(n, "div", status), &Node{Op: "int", Int: -1}) }},
		{"mod", func(n int) *Node { return call("eq", balanced(n, "mod", status), &Node{Op: "int", Int: -1}) }},
		{"uadd", func(n int) *Node {
			return call("eq", balanced(n, "add", func() *Node { return field("n") }), &Node{Op: "uint", Uint: 1})
		}},
		{"dadd", func(n int) *Node {
			return call("eq", balanced(n, "add", func() *Node { return field("r") }), &Node{Op: "double", Double: 1})
		}},
		{"double", func(n int) *Node {
			return call("eq", balanced(n, "add", func() *Node { return call("double", status()) }), &Node{Op: "double", Double: -1})
		}},
		{"and", func(n int) *Node {
			return balanced(n, "and", func() *Node { return call("ge", status(), &Node{Op: "int", Int: 0}) })
		}},
		{"or", func(n int) *Node {
			return balanced(n, "or", func() *Node { return call("lt", status(), &Node{Op: "int", Int: 0}) })
		}},
		{"cond", func(n int) *Node {
			return call("eq", balanced(n, "add", func() *Node {
				return call("cond", call("ge", status(), &Node{Op: "int"}), status(), status())
			}), &Node{Op: "int", Int: -1})
		}},
	} {
		n := 1
		for {
			c, err := Compile(tc.form(n*2), testFields, 1024)
			if err != nil || Units(c.Ns) > Budget {
				break
			}
			n *= 2
		}
		c, err := Compile(tc.form(n), testFields, 1024)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/nodes=%d/bound=%.0fns", tc.name, n, c.Ns), func(b *testing.B) {
			p, _ := marker.Register("filterformtest:event", func(e *marker.Event) { c.Pred(e) })
			defer p.Unregister()
			cpu := cpuTime()
			for b.Loop() {
				testMarker.Fire(marker.IntValue(marker.KindInt64, 1), marker.StringValue(""), marker.BoolValue(true),
					marker.BytesValue(nil), marker.IntValue(marker.KindDuration, 0), marker.UintValue(marker.KindUint32, 0),
					marker.Float64Value(0))
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
