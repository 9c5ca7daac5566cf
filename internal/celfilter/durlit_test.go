package celfilter

import "testing"

func TestExpandDurations(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`latency > 20ms`, `latency > duration("20ms")`},
		{`latency > 1h30m && latency < 1.5s`, `latency > duration("1h30m") && latency < duration("1.5s")`},
		{`lat >= 10us || lat >= 10µs`, `lat >= duration("10us") || lat >= duration("10µs")`},
		{`(latency>2s)`, `(latency>duration("2s"))`},
		{`-5m < latency`, `-duration("5m") < latency`},
		// Left alone: valid CEL, strings, names, other literals.
		{`latency > duration("20ms")`, `latency > duration("20ms")`},
		{`path == "/20ms" && m == '5s' && r"\d+s" != ""`, `path == "/20ms" && m == '5s' && r"\d+s" != ""`},
		{`"""a 3s""" == x`, `"""a 3s""" == x`},
		{`x5s > 1 && status >= 500 && n > 20u && f > 1.5`, `x5s > 1 && status >= 500 && n > 20u && f > 1.5`},
		{`a.b2s == 1`, `a.b2s == 1`},
		{`n > 20sx`, `n > 20sx`},
		{`n > 0x1s`, `n > 0x1s`},
		{`s == "esc\"5s" && t > 5s`, `s == "esc\"5s" && t > duration("5s")`},
	} {
		if got := expandDurations(tt.in); got != tt.want {
			t.Errorf("expandDurations(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
