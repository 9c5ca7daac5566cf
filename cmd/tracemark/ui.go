package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/internal/webui"
)

func uiCmd(a *app) *cobra.Command {
	var (
		pid  string
		all  bool
		keep string
	)
	cmd := &cobra.Command{
		Use:     "ui [-p PID | --all]",
		GroupID: "trace",
		Short:   "Watch and steer processes from a live web page",
		Long: `Serve a live web page for one process (-p) or all your instrumented
processes (--all, the default): their markers with fields, module,
stability, state and live event rates; enabling and disabling markers
in named sessions, with a filter; live plots of rates and of a log2
histogram of a numeric field (as "tracemark stats --hist" counts it);
recordings to start, stop and download as CTF traces; taint and modules,
with loading and unloading as insmod and rmmod do (for a program that
loads modules; the file path is read by the process).

The page is served on 127.0.0.1 only, on a random port, and every
request must carry the random token of the URL printed at start: any
local user can reach a port, and only you may reach your processes.
Open that URL in a browser on this machine (or through an ssh tunnel:
ssh -L PORT:127.0.0.1:PORT host). Ctrl-C stops the server; the traces of
recordings that were not downloaded are deleted then unless --keep
names a directory for them.`,
		Example: example(
			"tracemark ui -p 1234",
			"tracemark ui --all",
			"tracemark ui -p myservice --keep ./traces"),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pid != "" && all {
				return usagef("give -p PID or --all, not both")
			}
			s, err := newUIServer(cmd.Context(), a, pid, keep)
			if err != nil {
				return err
			}
			defer s.close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return s.serve(ctx)
		},
	}
	pidFlag(cmd, &pid)
	cmd.Flags().BoolVar(&all, "all", false, "show all your instrumented processes (the default without -p)")
	cmd.Flags().StringVar(&keep, "keep", "", "keep the traces recorded from the page in this directory (default: a temporary one, deleted at exit)")
	return cmd
}

// serve listens, prints the URL and serves until ctx ends.
func (s *uiServer) serve(ctx context.Context) error {
	token, err := webui.NewToken()
	if err != nil {
		return err
	}
	ln, err := webui.Listen()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	webui.Mount(mux, token)
	s.mount(mux)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           webui.Guard(token, mux),
		ReadHeaderTimeout: 10 * time.Second,
		// Event streams end with ctx: handlers derive from it.
		BaseContext: func(_ net.Listener) context.Context { return ctx },
	}
	fmt.Fprintf(s.a.stdout, "tracemark ui: open %s\n", webui.URL(ln, token))
	fmt.Fprintf(s.a.stderr, "serving %s on 127.0.0.1 only; Ctrl-C to stop\n", s.scope())
	// Whatever ends the server, recordings are stopped and their traces
	// completed first.
	defer s.stopRecordings()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ui: %w", err)
	case <-ctx.Done():
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ui: %w", err)
	}
	return nil
}
