package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tracemark/tracemark/examples/demoservice"
)

// demoServiceName is the hidden command that "tracemark demo" runs in a
// child process: the sample service.
const demoServiceName = "__demo-service"

// demoServiceCmd runs the demo service until its standard input closes
// (the demo, its parent, is done or gone), a signal, or its lifetime.
func demoServiceCmd() *cobra.Command {
	var (
		rate     int
		lifetime time.Duration
		detached bool
	)
	cmd := &cobra.Command{
		Use:    demoServiceName,
		Hidden: true,
		Args:   args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if !detached {
				go func() {
					// The parent holds the other end of stdin: EOF means it
					// is finished with us, or died.
					_, _ = io.Copy(io.Discard, os.Stdin)
					cancel()
				}()
			}
			return demoservice.Run(ctx, demoservice.Config{
				Load: rate > 0, Rate: rate, Lifetime: lifetime,
				Plugin: true, Log: cmd.ErrOrStderr(),
				Ready: func(r demoservice.Ready) {
					fmt.Fprintf(cmd.OutOrStdout(), "ready pid=%d http=%s socket=%s\n", r.PID, r.HTTP, r.Socket)
				},
			})
		},
	}
	cmd.Flags().IntVar(&rate, "rate", 300, "requests per second")
	cmd.Flags().DurationVar(&lifetime, "lifetime", 10*time.Minute, "exit after this long whatever happens")
	cmd.Flags().BoolVar(&detached, "detached", false, "outlive the parent: ignore standard input, run until a signal or the lifetime")
	return cmd
}
