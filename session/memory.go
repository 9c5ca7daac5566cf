package session

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// DefaultMemoryBudget is the process-wide recording memory budget when
// neither TRACEMARK_MEMORY nor SetMemoryBudget set one, unless the process
// has a memory limit of less than eight times that: the budget is then an
// eighth of the limit (see MemoryBudget).
const DefaultMemoryBudget = 256 << 20

// ErrMemoryBudget is wrapped by the errors of New, Snapshot and
// WriteSnapshot when the memory they need would take the process's
// recording memory over its budget (see SetMemoryBudget). The error's
// message names the budget, the request and what holds the memory.
var ErrMemoryBudget = errors.New("recording memory budget exceeded")

// budget accounts for the record memory of every session of the process:
// buffers from New until Destroy, overflow shards when allocated, and a
// snapshot's copy while the snapshot runs.
var budget struct {
	mu     sync.Mutex
	limit  int64 // 0 until set or read from the environment
	envErr error // TRACEMARK_MEMORY could not be parsed
	inUse  int64
	users  map[*Session]struct{} // sessions with mem > 0
}

// SetMemoryBudget sets the process-wide budget for recording memory, in
// bytes, and returns the previous one; n <= 0 restores the default
// (TRACEMARK_MEMORY if set, else the default of MemoryBudget). Memory
// already held is kept even if over the new budget; later requests must
// fit. It overrides TRACEMARK_MEMORY, as runtime.GOMAXPROCS overrides
// GOMAXPROCS.
func SetMemoryBudget(n int64) int64 {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	prev, _ := budgetLimit()
	budget.limit, budget.envErr = n, nil
	if n <= 0 {
		budget.limit = 0
		budgetLimit()
	}
	return prev
}

// MemoryBudget returns the recording memory budget of the process and the
// bytes in use. Unless SetMemoryBudget set it, the budget is
// TRACEMARK_MEMORY (a size such as 512M), or else DefaultMemoryBudget or
// an eighth of the process's memory limit if that is smaller: the limit
// is the cgroup's memory.max (a container's memory limit) or the Go
// runtime's soft limit (GOMEMLIMIT), whichever is lower. Record buffers
// are Go heap memory, so a garbage-collected heap may grow by up to twice
// what they hold (GOGC=100) before GOMEMLIMIT reins it in.
func MemoryBudget() (limit, inUse int64) {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	limit, _ = budgetLimit()
	return limit, budget.inUse
}

// Memory returns the record memory the session holds: its buffers (one
// shard of about WithBufferSize bytes per stream), and a snapshot's
// copy while Snapshot runs. It is 0 after Destroy.
func (s *Session) Memory() int64 {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	return s.mem
}

// budgetLimit returns the budget, reading the environment the first time.
// Called with budget.mu held.
func budgetLimit() (int64, error) {
	if budget.limit == 0 && budget.envErr == nil {
		budget.limit = defaultBudget()
		if v := os.Getenv(EnvMemory); v != "" {
			n, err := ParseSize(v)
			if err != nil {
				budget.envErr = fmt.Errorf("%s: %w", EnvMemory, err)
			} else {
				budget.limit = int64(n)
			}
		}
	}
	return budget.limit, budget.envErr
}

func defaultBudget() int64 {
	limit := debug.SetMemoryLimit(-1) // reads the limit; math.MaxInt64 if none
	if c := cgroupMemoryMax(); c > 0 && c < limit {
		limit = c
	}
	return min(DefaultMemoryBudget, limit/8)
}

// cgroupMemoryMax returns the memory.max of the process's cgroup (v2), or
// 0 if there is none or it is "max". It looks in the process's own
// cgroup directory, then at the root of /sys/fs/cgroup, which is the
// container's own cgroup when the container has a cgroup namespace.
func cgroupMemoryMax() int64 {
	var dirs []string
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok && p != "/" {
				dirs = append(dirs, "/sys/fs/cgroup"+p)
			}
		}
	}
	for _, d := range append(dirs, "/sys/fs/cgroup") {
		b, err := os.ReadFile(d + "/memory.max")
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 {
			return 0 // "max": no limit
		}
		return n
	}
	return 0
}

// charge takes n bytes of the budget for s, or returns an error wrapping
// ErrMemoryBudget that says what needs them (what) and who holds the rest.
func charge(s *Session, n int64, what string) error {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	limit, err := budgetLimit()
	if err != nil {
		return err
	}
	if n > limit-budget.inUse {
		return &budgetError{limit: limit, inUse: budget.inUse, need: n, what: what, users: budgetUsers()}
	}
	budget.inUse += n
	s.mem += n
	if budget.users == nil {
		budget.users = map[*Session]struct{}{}
	}
	budget.users[s] = struct{}{}
	return nil
}

// release gives back n bytes charged for s.
func release(s *Session, n int64) {
	budget.mu.Lock()
	defer budget.mu.Unlock()
	budget.inUse -= n
	if s.mem -= n; s.mem == 0 {
		delete(budget.users, s)
	}
}

// memUser is a session's share of the budget, for error messages.
type memUser struct {
	name  string
	bytes int64
}

// budgetUsers lists the sessions holding memory, largest first. Called
// with budget.mu held.
func budgetUsers() []memUser {
	users := make([]memUser, 0, len(budget.users))
	for s := range budget.users {
		users = append(users, memUser{s.cfg.Name, s.mem})
	}
	slices.SortFunc(users, func(a, b memUser) int {
		if c := cmp.Compare(b.bytes, a.bytes); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return users
}

// budgetError is a refusal: it matches ErrMemoryBudget.
type budgetError struct {
	limit, inUse, need int64
	what               string
	users              []memUser
}

// maxUsersShown bounds the sessions an error message lists.
const maxUsersShown = 8

func (e *budgetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "recording memory budget %s exceeded: %s needs %s, %s free; in use: ",
		sizeString(e.limit), e.what, sizeString(e.need), sizeString(max(0, e.limit-e.inUse)))
	if len(e.users) == 0 {
		b.WriteString("nothing")
	}
	for i, u := range e.users {
		if i == maxUsersShown {
			fmt.Fprintf(&b, ", and %d more", len(e.users)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "session %q %s", u.name, sizeString(u.bytes))
	}
	fmt.Fprintf(&b, " (the budget is set by %s in the process's environment, or by the program)", EnvMemory)
	return b.String()
}

func (e *budgetError) Is(target error) bool { return target == ErrMemoryBudget }

// sizeString formats a byte count with a binary unit: "512 B", "64 KiB",
// "1.5 MiB", "2 GiB".
func sizeString(n int64) string {
	if n < 1<<10 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n)/(1<<10), 0
	for v >= 1<<10 && u < len(units)-1 {
		v, u = v/(1<<10), u+1
	}
	if v == math.Trunc(v) || v >= 100 {
		return fmt.Sprintf("%.0f %s", v, units[u])
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}
