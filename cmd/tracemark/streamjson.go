package main

import (
	"bytes"

	"github.com/tracemark/tracemark/ctf"
	"github.com/tracemark/tracemark/format/jsonl"
	"github.com/tracemark/tracemark/internal/wire"
)

// jsonLines formats live records as the jsonl converter formats the
// events of a trace, so that "stream --json" and "convert --to jsonl"
// print the same schema.
type jsonLines struct {
	cc      clockConv
	sink    bytes.Buffer
	w       *jsonl.Writer
	classes map[*wire.EventClass]*ctf.EventClass
	ev      ctf.Event
}

func newJSONLines(cc clockConv) *jsonLines {
	j := &jsonLines{cc: cc, classes: map[*wire.EventClass]*ctf.EventClass{}}
	j.w = jsonl.NewWriter(&j.sink)
	return j
}

// format returns the line of r, a record of a packet of stream. rel_ns
// counts from the first record formatted.
func (j *jsonLines) format(r *wire.Record, stream uint32) ([]byte, error) {
	ec := j.classes[r.Class]
	if ec == nil {
		c, err := r.Class.CTF()
		if err != nil {
			return nil, err
		}
		ec = &c
		j.classes[r.Class] = ec
	}
	j.ev = ctf.Event{Class: ec, Stream: stream, CPU: stream, Cycles: r.TS, Time: j.cc.wall(r.TS).UnixNano(), Fields: r.Fields, Truncated: r.Truncated}
	if err := j.w.WriteEvent(&j.ev); err != nil {
		return nil, err
	}
	if err := j.w.Close(); err != nil { // flushes into sink; the writer stays usable
		return nil, err
	}
	line := bytes.Clone(j.sink.Bytes())
	j.sink.Reset()
	return line, nil
}
