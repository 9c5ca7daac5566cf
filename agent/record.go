package agent

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tracemark/tracemark/agent/internal/request"
	"github.com/tracemark/tracemark/internal/wire"
	"github.com/tracemark/tracemark/session"
)

// recording is a client's ephemeral session: it lives as long as the
// client's stream.
type recording struct {
	id      string
	s       *session.Session
	client  string
	created time.Time
	stop    chan struct{}
	once    sync.Once
}

func (rec *recording) requestStop() { rec.once.Do(func() { close(rec.stop) }) }

// postRecord serves POST /v1/record: record into an ephemeral session and
// stream the events back until the client stops the recording, the
// duration elapses, the agent closes or the client goes away.
func (a *Agent) postRecord(w http.ResponseWriter, r *http.Request, _ params) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	spec, err := request.ParseRecord(body)
	if err != nil {
		return err
	}
	rec, err := a.newRecording(spec)
	if err != nil {
		return err
	}
	defer a.endRecording(rec)
	var gt *goTrace
	if spec.GoTrace {
		if gt, err = startGoTrace(); err != nil {
			return err
		}
		defer gt.stop()
	}
	h := wire.Hello{Recording: rec.id, Started: rec.created, Duration: spec.Duration, GoTrace: gt != nil, Rules: ruleInfos(rec.s)}
	fs, err := startStream(w, r, rec.s, h, a.cfg.writeTimeout)
	if err != nil {
		return nil // the client is gone; the status line is sent
	}
	fs.gt = gt
	a.cfg.logger.Info("recording started", "id", rec.id, "client", rec.client)
	reason, err := a.runRecording(r.Context(), fs, rec, spec)
	a.cfg.logger.Info("recording ended", "id", rec.id, "reason", reason, "err", err)
	return nil
}

// newRecording creates, configures and starts an ephemeral session. A
// slot is reserved before the session's buffers are allocated, so that a
// burst of requests cannot allocate more than MaxRecordings of them.
func (a *Agent) newRecording(spec request.RecordSpec) (*recording, error) {
	id, err := a.reserveRecording()
	if err != nil {
		return nil, err
	}
	rec, err := newSession(id, spec)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reserved--
	if err != nil {
		return nil, err
	}
	a.recordings[id] = rec
	return rec, nil
}

func (a *Agent) reserveRecording() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.recordings)+a.reserved >= MaxRecordings {
		return "", wire.Errorf(wire.CodeLimit, "%d recordings are running, the most an agent serves", MaxRecordings)
	}
	a.reserved++
	a.nextID++
	return "rec-" + strconv.FormatUint(a.nextID, 10), nil
}

func newSession(id string, spec request.RecordSpec) (*recording, error) {
	opts := []session.Option{session.WithMode(spec.Mode), session.WithBufferSize(spec.Buffer), session.WithSubBufSize(spec.SubBuffer)}
	if len(spec.Context) > 0 {
		opts = append(opts, session.WithEventContext(spec.Context...))
	}
	s, err := session.New(id, opts...)
	if err != nil {
		return nil, newError(err)
	}
	if err := enableAll(s, spec.Rules); err != nil {
		s.Destroy()
		return nil, err
	}
	if err := s.Start(); err != nil {
		s.Destroy()
		return nil, sessionError(err)
	}
	return &recording{id: id, s: s, client: spec.Client, created: time.Now(), stop: make(chan struct{})}, nil
}

func (a *Agent) endRecording(rec *recording) {
	a.mu.Lock()
	delete(a.recordings, rec.id)
	a.mu.Unlock()
	rec.s.Destroy()
}

// runRecording streams until the recording ends, and returns why. In
// discard mode it drains whenever a recording goroutine fills a
// sub-buffer (session.Wait) and at the latest spec.Flush after the
// previous drain; stats frames go out every spec.StatsEvery.
func (a *Agent) runRecording(ctx context.Context, fs *frameStream, rec *recording, spec request.RecordSpec) (string, error) {
	// The watcher closes stop when the recording must end, after setting
	// reason (read only after stop is closed).
	stop, quit := make(chan struct{}), make(chan struct{})
	defer close(quit)
	var reason string
	go func() {
		var elapsed <-chan time.Time
		if spec.Duration > 0 {
			t := time.NewTimer(spec.Duration)
			defer t.Stop()
			elapsed = t.C
		}
		select {
		case <-ctx.Done():
			reason = "client gone"
		case <-rec.stop:
			reason = wire.EndStopped
		case <-elapsed:
			reason = wire.EndDuration
		case <-a.done:
			reason = wire.EndShutdown
		case <-quit:
			return
		}
		close(stop)
	}()
	discard := spec.Mode == session.Discard
	timer := time.NewTimer(spec.StatsEvery)
	defer timer.Stop()
	nextStats := time.Now().Add(spec.StatsEvery)
	for {
		// A wait of zero would be no timeout at all: when the stats are
		// due already, wait as little as possible.
		wait := max(time.Until(nextStats), time.Nanosecond)
		if discard {
			// In overwrite mode the buffers are the flight recorder:
			// they are read once, at the end, for the newest events.
			rec.s.Wait(stop, min(wait, spec.Flush))
		} else {
			timer.Reset(wait)
			select {
			case <-stop:
			case <-timer.C:
			}
		}
		select {
		case <-stop:
			if reason == "client gone" {
				return reason, nil // nobody to send the rest to
			}
			return finish(fs, reason)
		default:
		}
		var err error
		if discard {
			err = fs.drain()
		}
		if err == nil {
			err = fs.sendGoTrace()
		}
		if now := time.Now(); err == nil && !now.Before(nextStats) {
			err = fs.stats()
			nextStats = now.Add(spec.StatsEvery)
		}
		if err != nil {
			fs.end(wire.EndError, err)
			return wire.EndError, err
		}
	}
}

// finish stops the session and sends everything it recorded, the final
// counters and the end frame.
func finish(fs *frameStream, reason string) (string, error) {
	_ = fs.s.Stop()
	err := fs.drain()
	if fs.gt != nil {
		fs.gt.stop() // writes the rest of Go's trace
		if err == nil {
			err = fs.sendGoTrace()
		}
	}
	fs.end(reason, err)
	return reason, err
}

// postStop serves POST /v1/recordings/{id}/stop.
func (a *Agent) postStop(w http.ResponseWriter, r *http.Request, p params) error {
	if err := noBody(w, r); err != nil {
		return err
	}
	id := p["id"]
	a.mu.Lock()
	rec := a.recordings[id]
	a.mu.Unlock()
	if rec == nil {
		return notFound("recording", wire.Clip(id))
	}
	rec.requestStop()
	writeJSON(w, http.StatusOK, map[string]string{"recording": id, "state": "stopping"})
	return nil
}

// postSnapshot serves POST /v1/sessions/{name}/snapshot: what a named
// session's buffers hold, without consuming it.
func (a *Agent) postSnapshot(w http.ResponseWriter, r *http.Request, p params) error {
	name, err := sessionName(p)
	if err != nil {
		return err
	}
	if err := noBody(w, r); err != nil {
		return err
	}
	a.mu.Lock()
	n := a.sessions[name]
	a.mu.Unlock()
	if n == nil {
		return notFound("session", name)
	}
	fs, err := startStream(w, r, n.s, wire.Hello{Started: n.created}, a.cfg.writeTimeout)
	if err != nil {
		return nil
	}
	fs.deadline()
	err = n.s.Snapshot(fs.packet)
	if err == nil && fs.packets > 0 {
		if werr := fs.fw.WriteEmpty(wire.FrameSync); werr != nil {
			err = &writeErr{werr}
		}
	}
	if err == nil {
		err = fs.flushClasses()
	}
	fs.end(wire.EndSnapshot, err)
	return nil
}
