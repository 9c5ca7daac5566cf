package otlp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/klauspost/compress/gzip"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracemark/tracemark/ctf"
)

// ErrRejected is matched by the error of an export the collector refused
// for good (an HTTP status other than 429, 502, 503 and 504): the batch
// is not sent again, and its events count as rejected.
var ErrRejected = errors.New("otlp: collector rejected the export")

// ErrIncomplete is returned by Close when events were dropped, rejected
// or could not be sent before its context ended; Stats says how many.
var ErrIncomplete = errors.New("otlp: not every event was exported")

// HTTPError is the error of an export answered with an HTTP error
// status. It matches ErrRejected unless the status is retryable.
type HTTPError struct {
	URL        string
	StatusCode int
	// Message is the collector's explanation (the google.rpc.Status
	// message of the answer), if any.
	Message string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("otlp: %s answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap makes permanent failures match ErrRejected.
func (e *HTTPError) Unwrap() error {
	if retryable(e.StatusCode) {
		return nil
	}
	return ErrRejected
}

// retryable reports the statuses after which OTLP/HTTP clients try again.
func retryable(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Stats are an exporter's counters. Every event given to the exporter
// ends up in exactly one of Exported, Dropped, Rejected and Failed, or is
// still Queued.
type Stats struct {
	// Events counts the items (log records and spans) given to the
	// exporter, Spans the spans among them.
	Events, Spans uint64
	// Exported counts those the collector accepted.
	Exported uint64
	// Dropped counts those that found the queue full (the collector was
	// slow or unreachable for too long) or came after Close.
	Dropped uint64
	// Rejected counts those the collector refused (ErrRejected, or a
	// partial success naming rejected items).
	Rejected uint64
	// Failed counts those not yet exported when Close's context ended:
	// unsent, or sent and not answered in time, which the collector
	// may have received.
	Failed uint64
	// Queued is the number of events in memory, waiting to be sent.
	Queued uint64
	// Requests counts export requests, Retries the ones that failed
	// and were tried again.
	Requests, Retries uint64
	// Bytes counts the bytes of the requests sent, after compression.
	Bytes uint64
	// Unpaired counts span ends without a start (not exported as spans),
	// and span starts not remembered because MaxPendingStarts were
	// waiting.
	Unpaired uint64
}

// Lost returns the events that the collector did not accept: they
// will not reach it, except those of Failed that it received without
// its answer arriving in time.
func (s Stats) Lost() uint64 { return s.Dropped + s.Rejected + s.Failed }

type signal int

const (
	sigLogs signal = iota
	sigTraces
	// sigMetrics is sent apart from the batches of events (metrics.go).
	sigMetrics
	numSignals
)

// scopeBuf holds the encoded records of one scope in a batch.
type scopeBuf struct {
	n int
	// recs[skip:] are the records: repeated log_records (or spans)
	// fields. A buffer taken from a LogBuilder (commitScope) starts
	// with records that went to an earlier batch, which skip leaves
	// out: keeping them keeps the buffer's whole capacity for reuse.
	skip int
	recs []byte
}

// records returns the records of sb.
func (sb *scopeBuf) records() []byte { return sb.recs[sb.skip:] }

// batch is the encoded events of one signal waiting to be sent together.
type batch struct {
	sig    signal
	scopes []scopeBuf // indexed by scope id
	n      int
	size   int
	born   time.Time
}

// Exporter sends events to an OpenTelemetry collector over OTLP/HTTP
// with protobuf encoding. Log and Span encode the event at once into the
// current batch and return; a goroutine of the exporter sends full batches,
// retries, and drops nothing unless the queue is full. Its methods may be
// called from several goroutines.
type Exporter struct {
	cfg      config
	resource []byte
	start    time.Time

	mu       sync.Mutex
	scopeIDs map[Scope]int
	scopeEnc [][]byte
	cur      [2]*batch
	pending  []*batch
	free     []*batch
	queued   int
	// full is whether an event given now would be dropped (the queue
	// is full or the exporter closed, and not WithBlock): LogBuilder
	// reads it without the lock.
	full      atomic.Bool
	room      *sync.Cond // signalled when queued shrinks (WithBlock)
	closed    bool
	rec       []byte
	scratch   []byte
	key       []byte
	starts    map[string]pendingStart // span starts by pairing key
	lastErr   error
	rejectErr error

	wake       chan struct{}
	done       chan struct{}
	sendCtx    context.Context
	cancelSend context.CancelFunc

	// recsHint is, per scope id, the capacity for a new batch's records
	// of that scope: the most a sent batch held.
	recsHint []int
	sending  sync.WaitGroup

	events, exported, dropped, rejected, failed atomic.Uint64
	requests, retries, bytes                    atomic.Uint64
	unpaired, spansIn                           atomic.Uint64

	reportMu      sync.Mutex // one drop report at a time, in order
	reportedDrops uint64     // under reportMu
}

// sender is one of the goroutines that compress and send batches, with
// its buffers.
type sender struct {
	e    *Exporter
	head []byte   // the request's bytes that are not the records
	segs [][]byte // the request: pieces of head and the batch's records
	zbuf bytes.Buffer
	zw   *gzip.Writer
}

// New returns an exporter that sends to the collector at endpoint, its
// base URL such as http://localhost:4318 (the exporter appends /v1/logs,
// /v1/traces and /v1/metrics), and starts its sending goroutine; Close
// stops it. An empty endpoint is the environment's (WithEnv), or else
// DefaultEndpoint. The configuration is checked: a bad endpoint or option
// value is an error wrapping ErrConfig.
func New(endpoint string, opts ...Option) (*Exporter, error) {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if endpoint == "" && cfg.env != nil {
		endpoint = cfg.env.Endpoint
		cfg.LogsURL = cmp.Or(cfg.LogsURL, cfg.env.LogsURL)
		cfg.TracesURL = cmp.Or(cfg.TracesURL, cfg.env.TracesURL)
		cfg.MetricsURL = cmp.Or(cfg.MetricsURL, cfg.env.MetricsURL)
	}
	cfg.Endpoint, cfg.env = endpoint, nil
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.defaults()
	e := &Exporter{
		cfg: cfg, resource: encodeResource(cfg.Resource), start: time.Now(),
		scopeIDs: map[Scope]int{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	e.room = sync.NewCond(&e.mu)
	e.sendCtx, e.cancelSend = context.WithCancel(context.Background())
	for range cfg.Senders {
		e.sending.Add(1)
		go (&sender{e: e}).loop()
	}
	go func() { e.sending.Wait(); close(e.done) }()
	return e, nil
}

// scopeID returns the index of a scope, adding it if new. Call with mu
// held.
func (e *Exporter) scopeID(s Scope) int {
	id, ok := e.scopeIDs[s]
	if !ok {
		id = len(e.scopeEnc)
		e.scopeIDs[s] = id
		e.scopeEnc = append(e.scopeEnc, encodeScope(s))
	}
	return id
}

// admit counts an event and reserves queue space for it; it returns the
// batch to add it to, or nil if the event is dropped. Call with mu held.
func (e *Exporter) admit(sig signal) *batch {
	e.events.Add(1)
	if sig == sigTraces {
		e.spansIn.Add(1)
	}
	for e.cfg.Block && !e.closed && e.queued >= e.cfg.QueueSize {
		// Let the sender make room: seal what is being filled.
		e.seal(sigLogs)
		e.seal(sigTraces)
		e.room.Wait()
	}
	if e.closed || e.queued >= e.cfg.QueueSize {
		e.dropped.Add(1)
		return nil
	}
	e.queued++
	e.noteFull()
	return e.current(sig)
}

// noteFull updates full after queued or closed changed. Call with mu
// held.
func (e *Exporter) noteFull() {
	e.full.Store(!e.cfg.Block && (e.closed || e.queued >= e.cfg.QueueSize))
}

// current returns the batch of a signal being filled, starting one if
// none is. Call with mu held.
func (e *Exporter) current(sig signal) *batch {
	b := e.cur[sig]
	if b == nil {
		if n := len(e.free); n > 0 {
			b, e.free = e.free[n-1], e.free[:n-1]
		} else {
			b = &batch{}
		}
		b.sig, b.born = sig, time.Now()
		e.cur[sig] = b
	}
	return b
}

// scope returns the records of a scope in b, new ones with room for hint
// bytes.
func (b *batch) scope(scope, hint int) *scopeBuf {
	for len(b.scopes) <= scope {
		b.scopes = append(b.scopes, scopeBuf{})
	}
	sb := &b.scopes[scope]
	if sb.recs == nil && hint > 0 {
		// As big as the biggest so far: no regrowing every batch.
		sb.recs = make([]byte, 0, hint)
	}
	return sb
}

// add appends the encoded record in e.rec to b. Call with mu held.
func (e *Exporter) add(b *batch, scope int) {
	sb := b.scope(scope, e.hint(scope))
	before := len(sb.recs)
	sb.recs = appendBytesField(sb.recs, 2, e.rec)
	e.added(b, sb, len(sb.recs)-before)
}

// added counts a record of size bytes appended to sb, of batch b, and
// seals b if full. Call with mu held.
func (e *Exporter) added(b *batch, sb *scopeBuf, size int) {
	sb.n++
	b.n++
	b.size += size
	if b.n >= e.cfg.BatchSize || b.size >= e.cfg.BatchBytes {
		e.seal(b.sig)
	}
}

// seal moves the current batch of a signal to the queue. Call with mu
// held.
func (e *Exporter) seal(sig signal) {
	b := e.cur[sig]
	if b == nil {
		return
	}
	e.cur[sig] = nil
	e.pending = append(e.pending, b)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Log exports an event as a LogRecord: event name c.Name, the fields as
// attributes, timestamp timeNS (ns since the Unix epoch), the observed
// timestamp now, scope c.Scope. truncated has bit i set if the recorder cut
// field i. The values are encoded before Log returns: byte slices may be
// reused afterwards. Log returns false if the event was dropped because
// the queue is full or the exporter closed.
func (e *Exporter) Log(c *Class, timeNS int64, vals []ctf.Value, truncated uint8) bool {
	return e.LogAt(c, timeNS, time.Now().UnixNano(), vals, truncated)
}

// LogAt is Log with the observed timestamp given (ns since the Unix
// epoch): for a caller that receives events in bunches, such as the
// packets of a recording, and reads the clock once per bunch rather than
// once per event.
func (e *Exporter) LogAt(cl *Class, timeNS, observed int64, vals []ctf.Value, truncated uint8) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.admit(sigLogs)
	if b == nil {
		return false
	}
	c := e.prepareLocked(cl)
	if n := logRecordLen(c, vals, truncated); n >= 0 {
		// The size known, the record goes straight into the batch.
		sb := b.scope(c.scopeID, e.hint(c.scopeID))
		before := len(sb.recs)
		sb.recs = appendTag(sb.recs, 2, wireBytes)
		sb.recs = appendVarint(sb.recs, uint64(n))
		sb.recs, e.scratch = appendLogRecord(sb.recs, e.scratch, c, timeNS, observed, vals, truncated)
		e.added(b, sb, len(sb.recs)-before)
	} else {
		e.rec, e.scratch = appendLogRecord(e.rec[:0], e.scratch, c, timeNS, observed, vals, truncated)
		e.add(b, c.scopeID)
	}
	if c.span != nil {
		e.spans(c, timeNS, vals, truncated)
	}
	return true
}

// SpanData is one span for Span.
type SpanData struct {
	Name  string
	Scope Scope
	// TraceID and SpanID identify the span; ParentSpanID is zero for a
	// root span.
	TraceID      [16]byte
	SpanID       [8]byte
	ParentSpanID [8]byte
	// StartNS and EndNS are ns since the Unix epoch.
	StartNS, EndNS int64
	Attributes     []Attribute
}

// Span exports a span (of kind internal). It returns false if the span
// was dropped because the queue is full or the exporter closed.
func (e *Exporter) Span(s *SpanData) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.admit(sigTraces)
	if b == nil {
		return false
	}
	e.rec, e.scratch = appendSpan(e.rec[:0], e.scratch, s)
	e.add(b, e.scopeID(s.Scope))
	return true
}

// Flush seals the batches being filled, so that they are sent now rather
// than when full or BatchDelay old. It does not wait.
func (e *Exporter) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seal(sigLogs)
	e.seal(sigTraces)
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	e.mu.Lock()
	q := e.queued
	e.mu.Unlock()
	return Stats{
		Events: e.events.Load(), Spans: e.spansIn.Load(), Exported: e.exported.Load(), Dropped: e.dropped.Load(),
		Rejected: e.rejected.Load(), Failed: e.failed.Load(), Queued: uint64(q),
		Requests: e.requests.Load(), Retries: e.retries.Load(), Bytes: e.bytes.Load(), Unpaired: e.unpaired.Load(),
	}
}

// Err returns the error of the latest failed export attempt, or nil if
// the latest attempt succeeded.
func (e *Exporter) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr
}

// Rejection returns the latest error with which the collector refused
// events for good (an HTTP error status, or a partial success), or nil if
// it never did. Unlike Err it stays set after later exports succeed.
func (e *Exporter) Rejection() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rejectErr
}

// Timeout returns the bound of each request: WithTimeout's, or
// OTEL_EXPORTER_OTLP_TIMEOUT's with WithEnv, or DefaultTimeout; where
// the signals' bounds differ (OTEL_EXPORTER_OTLP_LOGS_TIMEOUT...), the
// longest.
func (e *Exporter) Timeout() time.Duration {
	var d time.Duration
	for _, sc := range e.cfg.Signal {
		d = max(d, sc.Timeout)
	}
	return d
}

// Warnings returns the settings of the environment that WithEnv ignored,
// each with why, such as an unknown OTEL_EXPORTER_OTLP_COMPRESSION: for
// the program to show its operator, as an OpenTelemetry SDK logs them.
func (e *Exporter) Warnings() []string { return slices.Clone(e.cfg.warnings) }

// Close sends what is queued and stops the exporter. If ctx ends first,
// the events still unsent count as Failed. Close returns nil if every
// event was exported, an error wrapping ErrIncomplete if some were lost
// (see Stats), and is idempotent. Events given after Close are dropped.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.noteFull()
	e.room.Broadcast()
	e.seal(sigLogs)
	e.seal(sigTraces)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		e.cancelSend()
		<-e.done
	}
	e.cancelSend()
	if st := e.Stats(); st.Lost() > 0 {
		err := fmt.Errorf("%w: %d of %d events lost (%d dropped, %d rejected, %d unsent)",
			ErrIncomplete, st.Lost(), st.Events, st.Dropped, st.Rejected, st.Failed)
		if last := e.Err(); last != nil {
			err = fmt.Errorf("%w; last error: %w", err, last)
		}
		return err
	}
	return nil
}

// loop is a sending goroutine: it seals the batches that waited
// BatchDelay and sends queued batches, until Close and the queue is empty.
func (s *sender) loop() {
	e := s.e
	defer e.sending.Done()
	timer := time.NewTimer(e.cfg.BatchDelay)
	defer timer.Stop()
	for {
		e.mu.Lock()
		now := time.Now()
		wait := e.cfg.BatchDelay
		for sig, b := range e.cur {
			if b == nil {
				continue
			}
			if age := now.Sub(b.born); age >= e.cfg.BatchDelay {
				e.seal(signal(sig))
			} else {
				wait = min(wait, e.cfg.BatchDelay-age)
			}
		}
		var b *batch
		if len(e.pending) > 0 {
			b = e.pending[0]
			e.pending[0] = nil
			e.pending = e.pending[1:]
			if len(e.pending) > 0 {
				// More for the other senders.
				select {
				case e.wake <- struct{}{}:
				default:
				}
			}
		}
		closed := e.closed
		e.mu.Unlock()
		if b != nil {
			s.send(b)
			continue
		}
		if closed {
			// Pass the word on: another sender may be waiting.
			select {
			case e.wake <- struct{}{}:
			default:
			}
			return
		}
		timer.Reset(wait)
		select {
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// send exports one batch, trying again as long as the failure is
// temporary and the exporter is not given up on.
func (s *sender) send(b *batch) {
	e := s.e
	s.encodeBatch(b)
	n := uint64(b.n)
	rejected, err := s.post(b.sig)
	e.release(b)
	switch {
	case err == nil:
		rejected = min(rejected, n) // a collector that claims more than it got
		e.rejected.Add(rejected)
		e.exported.Add(n - rejected)
		e.reportDrops()
	case errors.Is(err, ErrRejected):
		e.rejected.Add(n)
	default: // given up: Close's context ended
		e.failed.Add(n)
	}
	e.mu.Lock()
	e.queued -= int(n)
	e.noteFull()
	e.room.Broadcast()
	e.mu.Unlock()
}

// hint returns the capacity for a new batch's records of a scope. Call
// with mu held.
func (e *Exporter) hint(scope int) int {
	if scope < len(e.recsHint) {
		return e.recsHint[scope]
	}
	return 0
}

// release returns a batch to the free list once sent.
func (e *Exporter) release(b *batch) {
	e.mu.Lock()
	for i := range b.scopes {
		for len(e.recsHint) <= i {
			e.recsHint = append(e.recsHint, 0)
		}
		e.recsHint[i] = min(max(e.recsHint[i], len(b.scopes[i].records())), e.cfg.BatchBytes)
		b.scopes[i].n = 0
		b.scopes[i].recs, b.scopes[i].skip = b.scopes[i].recs[:0], 0
	}
	b.n, b.size = 0, 0
	// Kept for reuse, as many as can be in use at once (a full queue's,
	// the senders' and the two being filled): a queue that backs up
	// once (a slow collector, a burst) would otherwise make the
	// exporter allocate a batch, and its buffers, for every one sent
	// after, and the garbage collector run for them. The memory kept
	// is what a full queue holds.
	if len(e.free) < e.cfg.QueueSize/e.cfg.BatchSize+e.cfg.Senders+2 {
		e.free = append(e.free, b)
	}
	e.mu.Unlock()
}

// encodeBatch makes the Export{Logs,Trace}ServiceRequest of a batch, one
// Resource{Logs,Spans} holding one Scope{Logs,Spans} per scope, as
// s.segs: the headers in s.head and the batch's records where they are,
// not copied.
func (s *sender) encodeBatch(b *batch) {
	e := s.e
	e.mu.Lock()
	scopes := e.scopeEnc[:len(b.scopes)]
	e.mu.Unlock()
	inner := bytesFieldLen(len(e.resource))
	for i, sb := range b.scopes {
		if sb.n > 0 {
			inner += bytesFieldLen(bytesFieldLen(len(scopes[i])) + len(sb.records()))
		}
	}
	// The headers go into head first, their ends noted, since appending
	// may move head; the pieces are made after.
	head := s.head[:0]
	head = appendTag(head, 1, wireBytes)
	head = appendVarint(head, uint64(inner))
	head = appendBytesField(head, 1, e.resource)
	ends := []int{len(head)}
	for i, sb := range b.scopes {
		if sb.n == 0 {
			continue
		}
		head = appendTag(head, 2, wireBytes)
		head = appendVarint(head, uint64(bytesFieldLen(len(scopes[i]))+len(sb.records())))
		head = appendBytesField(head, 1, scopes[i])
		ends = append(ends, len(head))
	}
	s.head = head
	s.segs = append(s.segs[:0], head[:ends[0]])
	k := 1
	for _, sb := range b.scopes {
		if sb.n == 0 {
			continue
		}
		s.segs = append(s.segs, head[ends[k-1]:ends[k]], sb.records())
		k++
	}
}

// post sends the request in s.segs until it succeeds, fails for good or
// the exporter gives up; it returns the number of items the collector
// rejected in a partial success.
func (s *sender) post(sig signal) (rejected uint64, err error) {
	e := s.e
	segs := s.segs
	gz := e.cfg.Signal[sig].Compression == CompressionGzip
	if gz {
		s.zbuf.Reset()
		if s.zw == nil {
			// The fastest level: compressing is most of the cost of a
			// gzip export, and the requests are mostly repeated keys.
			s.zw, _ = gzip.NewWriterLevel(&s.zbuf, gzip.BestSpeed)
		} else {
			s.zw.Reset(&s.zbuf)
		}
		for _, seg := range segs {
			s.zw.Write(seg)
		}
		s.zw.Close()
		segs = [][]byte{s.zbuf.Bytes()}
	}
	backoff := e.cfg.RetryInitial
	for {
		wait, err := e.attempt(sig, segs, gz)
		var rej *rejection
		if errors.As(err, &rej) {
			e.mu.Lock()
			e.rejectErr = rej
			e.mu.Unlock()
			return rej.n, nil
		}
		if err == nil {
			e.setErr(nil)
			return 0, nil
		}
		if e.sendCtx.Err() != nil {
			return 0, err // given up: keep the error that made it wait
		}
		e.setErr(err)
		if errors.Is(err, ErrRejected) {
			e.mu.Lock()
			e.rejectErr = err
			e.mu.Unlock()
			return 0, err
		}
		if e.sendCtx.Err() != nil {
			return 0, err
		}
		e.retries.Add(1)
		if wait <= 0 {
			wait = jittered(backoff)
			backoff = min(2*backoff, e.cfg.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.sendCtx.Done():
			t.Stop()
			return 0, err
		}
	}
}

// rejection reports a partial success with rejected items; it is not a
// failure of the request.
type rejection struct {
	n   uint64
	msg string
}

// Unwrap makes a partial success match ErrRejected.
func (r *rejection) Unwrap() error { return ErrRejected }

func (r *rejection) Error() string {
	return fmt.Sprintf("otlp: the collector rejected %d items: %s", r.n, r.msg)
}

// attempt makes one request, its body the concatenation of segs. It
// returns the server's Retry-After, if any.
func (e *Exporter) attempt(sig signal, segs [][]byte, gz bool) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(e.sendCtx, e.cfg.Signal[sig].Timeout)
	defer cancel()
	return e.attemptCtx(ctx, sig, segs, gz)
}

// attemptCtx makes one request of sig, to its URL with its headers,
// until ctx ends.
func (e *Exporter) attemptCtx(ctx context.Context, sig signal, segs [][]byte, gz bool) (retryAfter time.Duration, err error) {
	url := e.cfg.url(sig)
	size := 0
	for _, seg := range segs {
		size += len(seg)
	}
	body := func() io.ReadCloser {
		return &requestBody{bufs: net.Buffers(slices.Clone(segs))} // reading consumes the list
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body())
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	req.ContentLength = int64(size)
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	req.Header.Set("Content-Type", "application/x-protobuf")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range e.cfg.Signal[sig].Headers {
		req.Header.Set(k, v)
	}
	e.requests.Add(1)
	e.bytes.Add(uint64(size))
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("otlp: sending to %s: %w", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		if n, msg := partialSuccess(answer); n > 0 {
			return 0, &rejection{uint64(n), msg}
		}
		return 0, nil
	}
	herr := &HTTPError{URL: url, StatusCode: resp.StatusCode}
	if resp.Header.Get("Content-Type") == "application/x-protobuf" {
		herr.Message = statusMessage(answer)
	} else if len(answer) > 0 && len(answer) < 512 {
		herr.Message = string(bytes.TrimSpace(answer))
	}
	return parseRetryAfter(resp.Header.Get("Retry-After")), herr
}

// requestBody is the body of an export request: the pieces of the
// request where they lie (the batch's records behind a few header bytes).
// The default client's connections write it with one writev (bodyConn).
type requestBody struct{ bufs net.Buffers }

func (b *requestBody) Read(p []byte) (int, error)         { return b.bufs.Read(p) }
func (b *requestBody) WriteTo(w io.Writer) (int64, error) { return b.bufs.WriteTo(w) }
func (b *requestBody) Close() error                       { return nil }

// len returns the bytes left to read.
func (b *requestBody) len() int64 {
	n := 0
	for _, p := range b.bufs {
		n += len(p)
	}
	return int64(n)
}

// jittered returns a wait of between half of d and d, at random, so
// that senders and exporters that failed together (a collector
// restarting) do not retry together: the OTLP specification asks for an
// exponential back-off with jitter.
func jittered(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d-d/2+1)
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(s string) time.Duration {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func (e *Exporter) setErr(err error) {
	e.mu.Lock()
	e.lastErr = err
	e.mu.Unlock()
}
