package session_test

import (
	"fmt"
	"time"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var exampleQuery = marker.Define2("example_db:query", marker.String("table"), marker.Int64("rows"))

func Example() {
	s, err := session.New("example")
	if err != nil {
		panic(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("example_db:*", "rows > 10"); err != nil {
		panic(err)
	}
	s.Start()
	exampleQuery.Fire("users", 3)
	exampleQuery.Fire("orders", 250)
	s.Stop()

	events := 0
	s.Drain(func(p session.Packet) error {
		events += p.Events
		return nil
	})
	st := s.Stats()
	fmt.Printf("recorded %d, filtered out %d, drained %d\n", st.Recorded, st.Filtered, events)
	// Output: recorded 1, filtered out 1, drained 1
}

func ExampleSession_Enable() {
	s, _ := session.New("typo")
	defer s.Destroy()
	_, err := s.Enable("example_db:query", "row > 10")
	fmt.Println(err)
	// Output: filter "row > 10" on example_db:query (fields: table string, rows int64): invalid filter: ERROR: <input>:1:1: undeclared reference to 'row' (did you mean 'rows'?)
}

// A reader that drains as the buffers fill: Wait returns when a recording
// goroutine fills a sub-buffer, or after the timeout for a quiet buffer.
func ExampleSession_Wait() {
	s, err := session.New("reader", session.WithBufferSize(64<<10), session.WithSubBufSize(4<<10))
	if err != nil {
		panic(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("example_db:*", ""); err != nil {
		panic(err)
	}
	s.Start()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		events := 0
		count := func(p session.Packet) error {
			events += p.Events
			return nil
		}
		for {
			s.Wait(stop, 100*time.Millisecond)
			select {
			case <-stop:
				s.Drain(count) // the rest, after Stop
				done <- events
				return
			default:
			}
			s.Drain(count)
		}
	}()
	for i := range 1000 { // about 30 KiB: several sub-buffers
		exampleQuery.Fire("orders", int64(i))
	}
	s.Stop()
	close(stop)
	fmt.Println("drained", <-done)
	// Output: drained 1000
}

// New takes the session's name and options for what is not the default;
// the session reports the configuration it resolved, and a value out of
// an option's range is an error naming the option.
func ExampleNew() {
	s, err := session.New("flight", session.WithMode(session.Overwrite), session.WithBufferSize(1<<20))
	if err != nil {
		panic(err)
	}
	defer s.Destroy()
	fmt.Println(s.Mode(), s.BufferSize(), s.SubBufSize(), s.MaxStringLen())

	_, err = session.New("bad", session.WithMaxStringLen(-1))
	fmt.Println(err)
	// Output:
	// overwrite 1048576 262144 1024
	// session "bad": WithMaxStringLen: negative length -1; 0 keeps the default
}

// WithEventContext records the process id, the program name, the shard
// and the thread in every event, the trace's stream event context, as
// lttng add-context does; a field it does not know is an error.
func ExampleWithEventContext() {
	s, err := session.New("ctx", session.WithEventContext(session.ContextPID, session.ContextProcname, session.ContextCPU, session.ContextTID))
	if err != nil {
		panic(err) // session.ErrNoThreadID where thread ids cannot be had
	}
	defer s.Destroy()
	fmt.Println(s.EventContext(), s.ThreadID())

	_, err = session.New("bad", session.WithEventContext("ip"))
	fmt.Println(err)
	// Output:
	// [pid procname cpu tid] true
	// session "bad": WithEventContext: unknown context field "ip" (choose from pid, procname, cpu, vtid, tid)
}
