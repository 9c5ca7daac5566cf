package agent_test

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tracemark/tracemark/agent"
)

// A program makes itself traceable with one call in main. Tracing is
// never a reason not to run: a failure to start is logged, not fatal.
func ExampleStart() {
	a, err := agent.Start()
	if err != nil {
		log.Printf("tracing unavailable: %v", err)
	} else {
		defer a.Close()
	}
	// ... the program runs; "tracemark ps" lists it.
}

// WithDir puts the socket elsewhere than the user's runtime directory;
// the socket is named after the process.
func ExampleWithDir() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	a, err := agent.Start(agent.WithDir(filepath.Join(dir, "sockets")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(a.Socket()) == fmt.Sprintf("%d.sock", os.Getpid()))
	if err := a.Close(); err != nil {
		log.Fatal(err)
	}
	_, err = os.Stat(a.Socket())
	fmt.Println(os.IsNotExist(err))
	// Output:
	// true
	// true
}

// Start takes options for what is not the default; a value out of an
// option's range makes Start fail with an error naming the option.
func ExampleStart_options() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	_, err = agent.Start(agent.WithDir(dir), agent.WithMaxConns(-1))
	fmt.Println(err)
	a, err := agent.Start(agent.WithDir(dir), agent.WithMaxConns(8), agent.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	// Output:
	// agent: WithMaxConns: -1 connections; want at least 1, or 0 for the default 64
}
