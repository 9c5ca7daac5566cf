//go:build wasip1

package main

import (
	"bytes"
	"unsafe"

	"github.com/tracemark/tracemark/guest"
)

var (
	classified = guest.Define3("classifier:classified",
		guest.String("category"), guest.Int64("score"), guest.Uint64("seen"),
		guest.Stable, guest.Doc("a request was classified; seen counts requests of that category so far"))
	suspicious = guest.Define3("classifier:suspicious",
		guest.String("method"), guest.String("path"), guest.String("reason"),
		guest.Doc("a request looked like an attack"))
)

// The categories, and how many requests of each the plugin has seen: the
// little state a real plugin would keep.
var (
	categories = [...]string{"static", "api", "admin", "health", "other", "suspicious"}
	seen       [len(categories)]uint64
)

const (
	catStatic = iota
	catAPI
	catAdmin
	catHealth
	catOther
	catSuspicious
)

func main() {}

// onRequest is the hook the demo service calls with "METHOD PATH"; it
// returns the category.
//
//go:wasmexport on_request
//lint:ignore U1000 the host calls it (staticcheck does not know go:wasmexport)
func onRequest(in unsafe.Pointer, n uint32) uint64 {
	return guest.Handle(in, n, classify)
}

var attacks = []struct{ needle, reason string }{
	{"..", "path traversal"},
	{"/etc/passwd", "system file"},
	{"<script", "script injection"},
	{"' or ", "SQL injection"},
	{"/.env", "secrets probe"},
	{"/wp-admin", "CMS probe"},
}

func classify(req []byte) []byte {
	method, path, _ := bytes.Cut(req, []byte{' '})
	cat, score := catOther, int64(10)
	lower := bytes.ToLower(path)
	for _, a := range attacks {
		if bytes.Contains(lower, []byte(a.needle)) {
			cat, score = catSuspicious, 100
			suspicious.Fire(string(method), string(path), a.reason)
			break
		}
	}
	if cat != catSuspicious {
		switch {
		case bytes.Equal(path, []byte("/healthz")) || bytes.Equal(path, []byte("/readyz")):
			cat, score = catHealth, 0
		case bytes.HasPrefix(path, []byte("/admin")):
			cat, score = catAdmin, 60
		case bytes.HasPrefix(path, []byte("/api/")):
			cat, score = catAPI, 30
			if !bytes.Equal(method, []byte("GET")) {
				score = 40
			}
		case bytes.HasPrefix(path, []byte("/static/")) || bytes.HasSuffix(path, []byte(".css")) || bytes.HasSuffix(path, []byte(".js")):
			cat, score = catStatic, 5
		}
	}
	seen[cat]++
	classified.Fire(categories[cat], score, seen[cat])
	return []byte(categories[cat])
}
