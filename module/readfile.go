package module

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// MaxFileBytes is the largest module file InspectFile reads, and the
// default limit of the sandbox (wasm.Limits.MaxModuleBytes).
const MaxFileBytes = 64 << 20

// ErrTooBig is wrapped by the error about a module file over its size
// limit.
var ErrTooBig = errors.New("module file too large")

// ErrNotRegular is wrapped by the error about a module path that is not a
// regular file: a directory, a FIFO, a device or a socket, which could
// block or never end.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads a module file of at most limit bytes. It refuses what is
// not a regular file without blocking on it (a FIFO is opened
// non-blocking), and it does not trust the size the file system reports:
// it reads at most limit+1 bytes, so that a file that grows or lies about
// its size (such as one in /proc) costs at most that much memory.
func ReadFile(path string, limit int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%v)", path, ErrNotRegular, st.Mode().Type())
	}
	if st.Size() > int64(limit) {
		return nil, fmt.Errorf("%s: %w: %d bytes, limit %d", path, ErrTooBig, st.Size(), limit)
	}
	if err := clearNonblock(f); err != nil {
		return nil, err
	}
	// The reported size is a hint: the buffer starts at it (plus the byte
	// that shows the end) and grows in pages if the file is longer. Reads
	// are whole pages where they can be: some /proc files refuse others.
	const page = 4096
	b := make([]byte, 0, max(min(st.Size(), int64(limit))+1, page))
	for len(b) <= limit {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), limit+1-len(b)))
		}
		want := min(cap(b), limit+1) - len(b)
		if want > page {
			want -= want % page
		}
		n, err := f.Read(b[len(b) : len(b)+want])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil && len(b) >= limit {
			// Such as pagemap refusing the one-byte read past the limit:
			// long enough to refuse anyway.
			return nil, fmt.Errorf("%s: %w: at least %d bytes (its size said %d)", path, ErrTooBig, limit, st.Size())
		}
		if err != nil {
			return nil, err
		}
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes (its size said %d)", path, ErrTooBig, limit, st.Size())
	}
	return b, nil
}
