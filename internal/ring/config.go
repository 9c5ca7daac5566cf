package ring

import (
	"errors"
	"fmt"
)

// Limits enforced by [Config.Validate].
const (
	// MinSubBufSize is the smallest accepted Config.SubBufSize.
	MinSubBufSize = 4 << 10
	// MaxSubBufSize is the largest accepted Config.SubBufSize. The limit
	// lets a sub-buffer's committed length, last record offset and record
	// count share one 64-bit word, which the writer publishes with a single
	// release store per record.
	MaxSubBufSize = 2 << 20
	// MinSubBufCount is the smallest accepted Config.SubBufCount: a writer
	// needs somewhere to go while the reader holds a full sub-buffer.
	MinSubBufCount = 2
	// MaxSubBufCount bounds Config.SubBufCount to catch configuration
	// mistakes; more sub-buffers rarely help more than bigger ones.
	MaxSubBufCount = 1 << 16
	// tsSize is the size of the little-endian timestamp in each record.
	tsSize = 8
)

// Config describes a [Buffer]. Every shard gets SubBufCount sub-buffers of
// SubBufSize bytes, so a Buffer holds shards*SubBufCount*SubBufSize bytes,
// and one shard more once it allocates its overflow shard.
type Config struct {
	// SubBufSize is the size in bytes of one sub-buffer (one packet). It
	// must be a power of two in [MinSubBufSize, MaxSubBufSize]. It is also
	// the largest record size.
	SubBufSize int
	// SubBufCount is the number of sub-buffers per shard, in
	// [MinSubBufCount, MaxSubBufCount].
	SubBufCount int
	// Overwrite selects what a shard does when its writer needs a new
	// sub-buffer and the next one in ring order still holds data the reader
	// has not consumed. False (discard) keeps the oldest data: the new
	// record is dropped and counted. True (overwrite, a flight recorder)
	// keeps the newest data: the writer reuses the oldest full sub-buffer
	// and counts its unread records as overwritten; if the reader is
	// copying that sub-buffer at that very moment, the new record is
	// dropped instead. (session.Mode is the public name of this choice.)
	Overwrite bool
	// TimestampOffset is where, in every record, the caller stores the
	// record's timestamp as a little-endian uint64. Records must therefore
	// be at least TimestampOffset+8 bytes long.
	TimestampOffset int
}

// DefaultConfig returns a discard-mode configuration with 8 sub-buffers of
// 64 KiB per shard and the timestamp in the first 8 bytes of each record.
func DefaultConfig() Config {
	return Config{SubBufSize: 64 << 10, SubBufCount: 8}
}

// ErrConfig is wrapped by every error returned by [Config.Validate].
var ErrConfig = errors.New("ring: invalid config")

// Validate reports whether c can be used to create a [Buffer].
func (c Config) Validate() error {
	switch {
	case c.SubBufSize < MinSubBufSize || c.SubBufSize > MaxSubBufSize:
		return fmt.Errorf("%w: SubBufSize %d not in [%d, %d]", ErrConfig, c.SubBufSize, MinSubBufSize, MaxSubBufSize)
	case c.SubBufSize&(c.SubBufSize-1) != 0:
		return fmt.Errorf("%w: SubBufSize %d is not a power of two", ErrConfig, c.SubBufSize)
	case c.SubBufCount < MinSubBufCount || c.SubBufCount > MaxSubBufCount:
		return fmt.Errorf("%w: SubBufCount %d not in [%d, %d]", ErrConfig, c.SubBufCount, MinSubBufCount, MaxSubBufCount)
	case c.TimestampOffset < 0 || c.TimestampOffset+tsSize > c.SubBufSize:
		return fmt.Errorf("%w: TimestampOffset %d does not leave room for an 8-byte timestamp", ErrConfig, c.TimestampOffset)
	}
	return nil
}

// MinRecordSize is the smallest record Reserve accepts: the record must hold
// its timestamp.
func (c Config) MinRecordSize() int { return c.TimestampOffset + tsSize }
