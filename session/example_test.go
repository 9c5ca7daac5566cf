package session_test

import (
	"fmt"

	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

var exampleQuery = marker.Define2("example_db:query", marker.String("table"), marker.Int("rows"))

func Example() {
	s, err := session.New(session.Config{Name: "example"})
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
	s, _ := session.New(session.Config{Name: "typo"})
	defer s.Destroy()
	_, err := s.Enable("example_db:query", "row > 10")
	fmt.Println(err)
	// Output: filter "row > 10" on example_db:query (fields: table string, rows int64): invalid filter: ERROR: <input>:1:1: undeclared reference to 'row' (did you mean 'rows'?)
}
