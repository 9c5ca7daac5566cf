package demoservice

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// workers send the load concurrently, so that a slow request does not
// hold up the others.
const workers = 8

// generateLoad sends about rate requests per second to base (a loopback
// address) until ctx is done: mostly reads of popular items, some writes
// and searches, health checks, and rarely the buggy item.
func generateLoad(ctx context.Context, base string, rate int) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	ticks := make(chan struct{})
	go func() {
		defer close(ticks)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ticks <- struct{}{}: // a free worker takes it
				default: // all busy: skip, the load stays bounded
				}
			}
		}
	}()
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range ticks {
				send(ctx, client, base)
			}
		}()
	}
	for range workers {
		<-done
	}
}

func send(ctx context.Context, c *http.Client, base string) {
	method, path := pick()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// pick chooses a request. Item ids follow a skewed distribution, so that
// popular items are cached; ids above knownItems are not found.
func pick() (method, path string) {
	switch r := rand.IntN(1000); {
	case r < 2:
		return http.MethodGet, "/items/" + strconv.Itoa(bugID)
	case r < 7:
		// Probes of an attacker, which the plugin refuses.
		return http.MethodGet, attacks[rand.IntN(len(attacks))]
	case r < 40:
		return http.MethodGet, "/healthz"
	case r < 140:
		return http.MethodGet, "/search?q=" + []string{"lamp", "chair", "desk", "mug"}[rand.IntN(4)]
	case r < 260:
		return http.MethodPut, "/items/" + strconv.Itoa(itemID())
	}
	return http.MethodGet, "/items/" + strconv.Itoa(itemID())
}

// attacks are requests the example plugin classifies as suspicious.
var attacks = []string{
	"/items/1/../../../etc/passwd",
	"/.env",
	"/wp-admin/install.php",
	"/search?q=%27%20or%201=1--",
	"/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
}

func itemID() int {
	x := rand.Float64()
	return 1 + int(x*x*x*1000) // cubed: small ids are much more popular
}
