// Package agent is the in-process control server of tracemark: it lets an
// operator discover the markers of a running program, record them and take
// flight-recorder snapshots, with the tracemark command, without knowing
// the program's code and without restarting it.
//
// # Opting in
//
// A program opts in with one line in main:
//
//	a, err := agent.Start()
//	if err != nil {
//		log.Printf("tracing unavailable: %v", err) // not a reason to stop
//	}
//	defer a.Close()
//
// or, without code, by importing package agent/autostart and starting the
// program with TRACEMARK_AGENT=1.
//
// Start's options (WithDir, WithLogger, WithTimeouts, WithMaxConns,
// WithMemoryBudget, WithModuleHost) each change one default; every option
// documents its default and the values it accepts, and Start fails with
// an error naming the option given a value it does not.
//
// # The socket and who may use it
//
// The agent listens on a unix socket named after the process id, PID.sock,
// in the user's runtime directory: $XDG_RUNTIME_DIR/tracemark, or
// /tmp/tracemark-UID when XDG_RUNTIME_DIR is not set (WithDir chooses
// another one). The directory is created with mode 0700 and refused (Start
// fails with ErrUnsafeDir) if it is a symbolic link, belongs to another
// user or is open to others: in /tmp another user could have created it
// first. The socket has mode 0600.
//
// File modes are the first fence; the second is the kernel. For every
// connection the agent reads the peer's credentials (SO_PEERCRED, recorded
// by the kernel at connect time, impossible to forge) and serves only the
// process's own user and root. Any other peer gets a 403 answer and the
// connection is closed; Agent.Refused counts them, and so does
// tracemark ps. Peer credentials are implemented on Linux; elsewhere
// Start fails with an error wrapping errors.ErrUnsupported rather than
// serve anyone.
//
// Close removes the socket. A process that exits without Close (or dies)
// leaves its socket behind: the next agent started in the directory removes
// the sockets of dead processes, and tracemark ps ignores them meanwhile.
//
// # Protocol and robustness
//
// Clients speak HTTP/1.1 with JSON over the socket, and receive events as
// binary frames holding CTF packets; package internal/wire documents the
// protocol, and curl can use it:
//
//	curl --unix-socket $XDG_RUNTIME_DIR/tracemark/1234.sock http://x/v1/markers
//
// The agent is a guest in someone else's process, so a client can cost it
// little and harm it not at all: request bodies are limited to
// 64 KiB and strictly validated; requests must arrive within the read
// timeout and responses be accepted within the write timeout
// (WithTimeouts); at most MaxConns connections, MaxSessions named
// sessions and MaxRecordings recordings exist at once, and their buffers
// must fit in the process's recording memory budget (WithMemoryBudget);
// every error is a JSON answer with a code, never a crash.
//
// # Sessions
//
// Sessions created through the agent are of two lifetimes:
//
//   - named sessions (tracemark enable, disable, snapshot, sessions) live
//     in the process until disabled or until the agent closes. An
//     overwrite-mode named session is a flight recorder: it keeps the most
//     recent events, and a snapshot copies them out without stopping it.
//   - ephemeral sessions (tracemark record, stream, stats) belong to one
//     client's stream: the session is destroyed as soon as the client goes
//     away. A recording that is stopped (by the client, by its duration or
//     by Close) is drained to its last event before the stream ends with
//     an end frame, so that the client's trace is complete.
//
// Sessions created by the agent are ordinary sessions of package session:
// they record the same way, and cost the program the same, as sessions the
// program creates itself.
//
// # Modules
//
// tracemark taint shows the process taint of any traced process, and
// tracemark ps shows its letters. Loading WebAssembly modules at run time
// (tracemark insmod, rmmod) is opt-in: a program that allows it imports
// package agent/agentmodules and gives the agent its module host,
//
//	host, err := wasm.NewHost(wasm.WithTrustedDir("/srv/plugins"))
//	...
//	a, err := agent.Start(agentmodules.WithHost(host))
//
// and tracemark lsmod then lists host's modules, whether the program or an
// operator loaded them. Without it, insmod and rmmod are answered with an
// error saying that the program was built without module support and
// which package to import; package agent knows modules only through the
// ModuleHost interface, so that the sandbox (wazero) is not even linked
// into a program that loads no modules.
package agent
