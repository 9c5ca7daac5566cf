package wire

// MarkerSpan is a marker's span declaration (marker.SpanDecl): each event
// is a span whose length is the Duration field, or the marker ends spans
// started by marker Start, paired by equal values of the Keys fields.
type MarkerSpan struct {
	Duration string   `json:"duration,omitempty"`
	Start    string   `json:"start,omitempty"`
	Keys     []string `json:"keys,omitempty"`
}
