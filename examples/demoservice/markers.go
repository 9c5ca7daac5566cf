package demoservice

import "github.com/tracemark/tracemark/marker"

// The service's markers: what an operator finds with tracemark list.
var (
	requestStart = marker.Define2("http:request_start",
		marker.String("method"), marker.String("path"),
		marker.Stable, marker.Doc("an HTTP request arrived"))
	requestDone = marker.Define5("http:request_done",
		marker.String("method"), marker.String("path"), marker.Int("status"),
		marker.Duration("latency"), marker.Int("bytes"),
		marker.Stable, marker.Doc("an HTTP request was answered"),
		marker.SpanDuration("latency"))

	cacheHit = marker.Define1("cache:hit", marker.String("key"),
		marker.Doc("an item was served from the in-memory cache"))
	cacheMiss = marker.Define1("cache:miss", marker.String("key"),
		marker.Doc("an item was not in the cache and is read from storage"))

	storageQuery = marker.Define3("storage:query",
		marker.String("op"), marker.String("key"), marker.Duration("latency"),
		marker.Doc("a storage operation completed (get, put, scan)"),
		marker.SpanDuration("latency"))
	storageError = marker.Define3("storage:error",
		marker.String("op"), marker.String("key"), marker.String("error"),
		marker.Doc("a storage operation failed"))

	jobStart = marker.Define2("batch:job_start", marker.String("job"), marker.Int("items"),
		marker.Doc("a background batch job started"))
	jobDone = marker.Define4("batch:job_done",
		marker.String("job"), marker.Int("items"), marker.Int("failed"), marker.Duration("latency"),
		marker.Doc("a background batch job finished"),
		marker.SpanEnd("batch:job_start", "job"))

	appPanic = marker.Define2("app:panic", marker.String("where"), marker.String("value"),
		marker.Stable, marker.Doc("a handler panicked; the panic was recovered and answered 500"))
)
