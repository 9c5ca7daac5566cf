package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Sub-buffer ownership states. Only the low two bits name the owner; the
// reader ORs in stReader while it copies bytes out of a writing or full
// sub-buffer, which stops the writer from reclaiming it.
const (
	stFree    uint32 = iota // empty, any writer may claim it
	stClaimed               // writer is resetting it; invisible to the reader
	stWriting               // the shard's current sub-buffer; prefix readable
	stFull                  // closed by the writer; waiting for the reader
	stReader  uint32 = 4    // flag: the reader is copying from it
)

// The published word of a sub-buffer packs, from the low bits up: the
// committed length (22 bits, up to MaxSubBufSize inclusive), the offset of
// the last committed record (21 bits) and the record count (19 bits, at most
// MaxSubBufSize/8). One atomic store of this word per Commit publishes a
// record together with everything the reader needs to describe the prefix.
const (
	pubLenBits    = 22
	pubLastShift  = pubLenBits
	pubLastBits   = 21
	pubCountShift = pubLastShift + pubLastBits
)

// Compile-time checks that the fields fit (an array length must not be
// negative): the length may equal MaxSubBufSize, the last offset is below
// it, and records are at least tsSize bytes long.
var (
	_ [1<<pubLenBits - 1 - MaxSubBufSize]struct{}
	_ [1<<pubLastBits - MaxSubBufSize]struct{}
	_ [1<<(64-pubCountShift) - 1 - MaxSubBufSize/tsSize]struct{}
)

func pack(end, last, count int) uint64 {
	return uint64(end) | uint64(last)<<pubLastShift | uint64(count)<<pubCountShift
}

func unpack(p uint64) (end, last, count int) {
	end = int(p & (1<<pubLenBits - 1))
	last = int(p >> pubLastShift & (1<<pubLastBits - 1))
	count = int(p >> pubCountShift)
	return end, last, count
}

// notSealed marks a sub-buffer whose discarded count at sealing time is not
// known yet because its writer may still append to it.
const notSealed = ^uint64(0)

// subBuf is one packet-sized area of a shard plus its bookkeeping.
//
// Field ownership follows state: seq is written only while the writer holds
// the sub-buffer in stClaimed; data is written by the writer only beyond the
// length published in pub, or after a claim; consumedR and consumedB are
// written only by the reader while stReader is set (and reset by the writer
// in stClaimed). The atomic state transitions and pub order those accesses.
type subBuf struct {
	state     atomic.Uint32
	pub       atomic.Uint64 // packed committed prefix, see pack
	sealDisc  atomic.Uint64 // shard's discarded count when sealed, or notSealed
	seq       uint64
	data      []byte
	consumedR int // records already emitted by Drain
	consumedB int // bytes already emitted by Drain
}

// paddedSubBuf gives each sub-buffer's atomics their own cache lines, so the
// reader locking one sub-buffer does not bounce the line the writer stores
// to at every Commit.
type paddedSubBuf struct {
	subBuf
	_ [128 - unsafe.Sizeof(subBuf{})%128]byte
}

// shard is the part of a Buffer owned by one P.
type shard struct {
	// Writer state: touched only by the goroutine pinned to this P.
	data     []byte  // current sub-buffer's bytes; truncated to off when sealed
	cur      *subBuf // current sub-buffer, always in stWriting
	off      int     // bytes committed in cur
	count    int     // records committed in cur
	curIdx   int     // index of cur in subs
	sealed   bool    // a record did not fit in cur; switch before writing
	switched bool    // a switch happened since Lagging last looked
	seq      uint64  // sequence number of the next sub-buffer
	subs     []paddedSubBuf
	id       int

	// Counters written by the writer, read by Stats and the reader.
	dropped     atomic.Uint64 // records refused by Reserve
	overwritten atomic.Uint64 // committed records reclaimed before being read
	closedRecs  atomic.Uint64 // records in sub-buffers closed so far
	closedBytes atomic.Uint64 // bytes in sub-buffers closed so far
	pubIdx      atomic.Int64  // curIdx, for Stats
	gen         atomic.Uint64 // odd while a switch is in progress (seqlock)

	// The overflow shard only: writers from several Ps share it, each
	// holding lock from Reserve to Commit, and its discarded count
	// includes the records refused before it was allocated (unsharded).
	shared    bool
	lock      atomic.Uint32
	unsharded *atomic.Uint64

	// Reader state, guarded by Buffer.mu: the Discarded of the last packet
	// Drain emitted (written once a packet, away from the writer's fields).
	drainDisc uint64
}

// discarded is the shard's CTF events_discarded counter.
func (s *shard) discarded() uint64 {
	d := s.dropped.Load() + s.overwritten.Load()
	if s.unsharded != nil {
		d += s.unsharded.Load()
	}
	return d
}

// acquire takes the overflow shard's lock. The caller is pinned, and so is
// the holder, on another P (one P runs one goroutine at a time), for the
// length of one Reserve-Commit section: the wait is short, and spinning is
// the only way to wait, since a pinned goroutine must not park.
func (s *shard) acquire() {
	for !s.lock.CompareAndSwap(0, 1) {
		for s.lock.Load() != 0 {
		}
	}
}

func (s *shard) release() { s.lock.Store(0) }

// paddedShard keeps each P's hot writer state on its own cache lines.
type paddedShard struct {
	shard
	_ [128 - unsafe.Sizeof(shard{})%128]byte
}

// Buffer is a set of per-P ring buffers of sub-buffers. Writers use
// [Buffer.Reserve] and [Buffer.Commit] from any goroutine; one reader at a
// time uses [Buffer.Drain] or [Buffer.Snapshot]. [Buffer.Stats] may be called
// from anywhere.
type Buffer struct {
	shards    []paddedShard
	over      atomic.Pointer[paddedShard] // overflow shard, nil until AllocOverflow
	unsharded atomic.Uint64               // records refused: P id >= len(shards), no overflow shard
	consumed  atomic.Uint64               // records emitted by Drain
	cfg       Config
	minRec    int
	chunk     int    // bytes Snapshot copies per pinned section (snapChunk)
	testChunk func() // tests: runs between two chunks of a Snapshot copy
	// tests: runs when a packet found its sub-buffer unsealed, before it
	// reads the live discarded count
	testDiscarded func()

	// Reader wake-up (wake.go): the reader sets sleeping before it parks
	// on wake; the writer that closes the next sub-buffer sends on wake.
	sleeping atomic.Bool
	waited   atomic.Bool   // the reader called Wait: see Lagging
	wake     chan struct{} // capacity 1
	wakeups  atomic.Uint64 // tokens sent
	timer    *time.Timer   // the reader's fallback timer

	// Reader state, guarded by mu (one reader at a time).
	mu       sync.Mutex
	freed    bool      // Free was called
	held     []heldSub // sub-buffers locked by the reader
	snapPkts []Packet  // packets of the shard being snapshotted
	snapBuf  []byte    // their copied records, during a Snapshot
}

// snapChunk is how many bytes Snapshot copies while pinned: a few
// microseconds of memmove, so that a snapshot never holds up a
// stop-the-world for longer than that, whatever the sub-buffer size.
const snapChunk = 64 << 10

// New allocates a Buffer with one shard per P: GOMAXPROCS shards (which
// follows the container's CPU limit since Go 1.25), fixed for the Buffer's
// life. Records written on a P whose id is not below that count
// (GOMAXPROCS raised later) go to an overflow shard that the writers of
// such Ps share under a lock, once [Buffer.AllocOverflow] has allocated
// it; until then they are dropped and counted in [Stats].Unsharded.
func New(cfg Config) (*Buffer, error) {
	return NewShards(cfg, runtime.GOMAXPROCS(0))
}

// NewShards is New with nshards shards instead of GOMAXPROCS, for a caller
// that decided the count (and accounted for its memory) beforehand.
func NewShards(cfg Config, nshards int) (*Buffer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Buffer{
		shards:   make([]paddedShard, nshards),
		cfg:      cfg,
		minRec:   cfg.MinRecordSize(),
		chunk:    snapChunk,
		wake:     make(chan struct{}, 1),
		held:     make([]heldSub, 0, cfg.SubBufCount),
		snapPkts: make([]Packet, 0, cfg.SubBufCount),
	}
	for i := range b.shards {
		b.shards[i].init(i, cfg)
	}
	return b, nil
}

// ShardBytes is the record memory of one shard: SubBufCount*SubBufSize.
func (c Config) ShardBytes() int { return c.SubBufCount * c.SubBufSize }

// AllocOverflow allocates the overflow shard, stream number Shards(), for
// records written on Ps whose id is not below Shards(), and reports
// whether it did (false: it already exists, or the Buffer was freed). The
// caller must not be pinned: it allocates Config.ShardBytes bytes.
func (b *Buffer) AllocOverflow() bool {
	b.mu.Lock() // the reader sees the overflow shard whole or not at all
	defer b.mu.Unlock()
	if b.over.Load() != nil || b.freed {
		return false
	}
	o := new(paddedShard)
	o.init(len(b.shards), b.cfg)
	o.shared, o.unsharded = true, &b.unsharded
	b.over.Store(o)
	return true
}

// Overflow reports whether the overflow shard is allocated.
func (b *Buffer) Overflow() bool { return b.over.Load() != nil }

// Bytes returns the record memory the Buffer holds: its shards' and the
// overflow shard's once allocated (not a running Snapshot's copy, see
// SnapshotBytes).
func (b *Buffer) Bytes() int {
	n := len(b.shards)
	if b.over.Load() != nil {
		n++
	}
	return n * b.cfg.ShardBytes()
}

// SnapshotBytes is the memory [Buffer.Snapshot] allocates while it runs:
// one shard's worth, reused shard after shard.
func (b *Buffer) SnapshotBytes() int { return b.cfg.ShardBytes() }

// Free drops the Buffer's record memory, so that it is garbage even if the
// Buffer is not: Drain and Snapshot then emit nothing, and Stats keeps
// working. No writer may use the Buffer at or after Free (in a session:
// after Stop). It waits for a Drain or Snapshot in progress.
func (b *Buffer) Free() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.freed = true
	free := func(s *shard) {
		s.data = nil
		for i := range s.subs {
			s.subs[i].data = nil
		}
	}
	for i := range b.shards {
		free(&b.shards[i].shard)
	}
	if o := b.over.Load(); o != nil {
		free(&o.shard)
	}
	b.snapBuf = nil
}

// init gives the shard its memory and makes sub-buffer 0 current, so the
// first Reserve takes the fast path.
func (s *shard) init(id int, cfg Config) {
	s.id = id
	s.subs = make([]paddedSubBuf, cfg.SubBufCount)
	mem := make([]byte, cfg.SubBufCount*cfg.SubBufSize)
	for i := range s.subs {
		sb := &s.subs[i].subBuf
		sb.data = mem[i*cfg.SubBufSize : (i+1)*cfg.SubBufSize : (i+1)*cfg.SubBufSize]
		sb.sealDisc.Store(notSealed)
	}
	first := &s.subs[0].subBuf
	first.state.Store(stWriting)
	s.cur, s.data, s.seq = first, first.data, 1
}

// Config returns the configuration the Buffer was created with.
func (b *Buffer) Config() Config { return b.cfg }

// Shards returns the number of shards.
func (b *Buffer) Shards() int { return len(b.shards) }
