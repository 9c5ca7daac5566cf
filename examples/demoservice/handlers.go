package demoservice

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// service is the item store: a cache in front of a slow, flaky storage.
type service struct {
	storage *storage
	plugin  *classifier // nil: no plugin
	mu      sync.Mutex
	cache   map[string]item
}

type item struct {
	ID      int       `json:"id"`
	Name    string    `json:"name"`
	Price   int       `json:"price_cents"`
	Updated time.Time `json:"updated"`
}

// cacheSize bounds the cache: beyond it, a random entry is evicted, so
// that the hit ratio stays interesting.
const cacheSize = 300

func newService(plugin *classifier) *service {
	return &service{storage: newStorage(), plugin: plugin, cache: make(map[string]item)}
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", s.getItem)
	mux.HandleFunc("PUT /items/{id}", s.putItem)
	mux.HandleFunc("GET /search", s.search)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return instrument(mux, s.plugin)
}

// instrument fires the request markers around every request, asks the
// plugin (if one is loaded) to classify it and refuses what it finds
// suspicious, and turns panics into an app:panic event and a 500.
func instrument(next http.Handler, plugin *classifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		requestStart.Fire(r.Method, r.URL.Path)
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				appPanic.Fire(r.Method+" "+r.URL.Path, fmt.Sprint(v))
				rw.status = http.StatusInternalServerError
				http.Error(rw, "internal error", rw.status)
			}
			requestDone.Fire(r.Method, r.URL.Path, rw.status, time.Since(start), rw.bytes)
		}()
		if plugin.classify(r) == "suspicious" {
			http.Error(rw, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status, bytes int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// bugID is the item whose handler has a bug: a nil map write.
const bugID = 666

func (s *service) getItem(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	if id == bugID {
		// The bug app:panic exists for: this item is assumed to be
		// preloaded, and is not.
		var preloaded map[int]*item
		_ = preloaded[id].Name
	}
	key := "item:" + strconv.Itoa(id)
	it, ok := s.cached(key)
	if ok {
		cacheHit.Fire(key)
	} else {
		cacheMiss.Fire(key)
		if it, err = s.storage.get(id); err != nil {
			httpError(w, err)
			return
		}
		s.remember(key, it)
	}
	writeItem(w, http.StatusOK, it)
}

func (s *service) putItem(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	it := item{ID: id, Name: fmt.Sprintf("item %d", id), Price: rand.IntN(10000), Updated: time.Now()}
	if err := s.storage.put(it); err != nil {
		httpError(w, err)
		return
	}
	s.mu.Lock()
	delete(s.cache, "item:"+strconv.Itoa(id))
	s.mu.Unlock()
	writeItem(w, http.StatusCreated, it)
}

func (s *service) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	n, err := s.storage.scan(q)
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"query":%q,"matches":%d}`+"\n", q, n)
}

func (s *service) cached(key string) (item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.cache[key]
	return it, ok
}

func (s *service) remember(key string, it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= cacheSize {
		for k := range s.cache { // map order is random: a random eviction
			delete(s.cache, k)
			break
		}
	}
	s.cache[key] = it
}

func httpError(w http.ResponseWriter, err error) {
	if err == errNotFound {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
}

func writeItem(w http.ResponseWriter, status int, it item) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(it)
}
