// Package ringbuf is a lock-free single-producer single-consumer byte ring
// with cached cursors: the per-direction ring of Cong Wang's loopback
// splice RFC ("tcp: opportunistic loopback splice for BPF-paired sockets",
// net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06), written as a Go library. It is
// also the ring splicecheck's model runs on its loopback-splice path, with
// Hooks giving the model's scheduler a yield point between copying bytes
// and publishing a cursor.
//
// # Layout
//
// The ring is a power-of-two byte buffer with two free-running (never
// masked) 64-bit cursors: Head, the next byte the producer writes, and
// Tail, the next byte the consumer reads. A cursor's offset in the buffer
// is cursor & (size-1). Counts follow include/linux/circ_buf.h: CircCnt is
// CIRC_CNT, CircSpace is CIRC_SPACE, which always leaves one byte free, so
// a ring of size bytes holds at most size-1 (a 16 KiB ring holds 16383
// bytes, like the RFC's). Copies that cross the end of the buffer are done
// in two parts, the part up to the end first, as splice_ring_write() and
// splice_ring_read() do; the cursor is published once, after both parts.
//
// Each side owns one cache line (padded to 128 bytes): the producer's holds
// Head and CachedTail, the consumer's holds Tail and CachedHead, and the
// read-mostly fields (buffer, mask, hooks) sit on a third. A store to one
// side's cursor therefore never invalidates the other side's hot line.
//
// # Ownership
//
// Exactly one producer goroutine and one consumer goroutine. The producer
// calls Write, WriteFrom, Space and the Writer's methods; the consumer
// calls Read, ReadTo, Len and the Reader's methods. A role may move to
// another goroutine only through a happens-before edge (a channel send, a
// mutex), never while a call is running. Buffered, HasData, Size, Cap,
// CloseWrite and CloseRead are safe from any goroutine. Cursors and
// CheckInvariants read the private caches and need both sides quiescent.
//
// LOCKING: there is no lock on the data path. Head is stored only by the
// producer, Tail only by the consumer, CachedTail and CachedHead are plain
// fields each touched by one side only. The bytes in [Tail, Head) belong
// to the consumer, the rest of the buffer to the producer; a side gives
// bytes to the other only by publishing its cursor.
//
// # Memory ordering
//
// The RFC publishes each cursor with smp_store_release() after copying the
// bytes, and reads the other side's cursor with smp_load_acquire() before
// touching the bytes it covers. Go's sync/atomic operations are
// sequentially consistent (the Go memory model, "Atomic Values"): an atomic
// store is at least a release and an atomic load at least an acquire, so
// the pairing carries over unchanged. The producer's copy happens before
// its store of Head, which is synchronized-before the consumer's load that
// observes it, which happens before the consumer's copy out; symmetrically
// for Tail, which is what stops the producer from overwriting unread
// bytes. On amd64 an atomic load is a plain MOV, as smp_load_acquire is,
// but an atomic store is an XCHG, a full barrier that drains the store
// buffer, where smp_store_release is a plain MOV: each publish waits until
// this core owns the lines it publishes, which is what bounds small writes.
// On arm64 they are LDAR and STLR, exactly what the kernel emits. Unlike
// Linux, Go offers no weaker orderings, so the ring also reads its own
// cursor with an atomic load where the kernel uses a plain read; that costs
// nothing on either architecture.
//
// Sequential consistency also gives the blocking wrappers their
// no-lost-wakeup argument for free. A side about to park stores its parked
// flag and then loads the other side's cursor; the other side stores its
// cursor and then loads the flag. Under sequential consistency one of
// them sees the other's store, which is what the RFC buys with the smp_mb()
// in splice_wake_sync() paired with set_current_state().
//
// # Cached cursors
//
// The producer keeps CachedTail, a copy of Tail, and computes its space
// from it; it loads the real Tail only when the cached space is short of
// what it wants to write. Because Tail only grows, the cached value is
// conservative: the producer never believes there is more space than there
// is. This is the RFC's cached_tail.
//
// Unlike the RFC, the consumer also keeps CachedHead, a copy of Head, and
// loads the real Head only when CachedHead says the ring is empty. The RFC
// can do without: its consumer is recvmsg(), which drains everything it
// sees on every call and then returns or sleeps, so every call would have
// to refresh anyway and a cache would save nothing. A library consumer is different:
// it may read in small pieces (a length prefix, then a record), and it may
// busy-poll. Without the cache every such read would pull the producer's
// line across cores, and every pull makes the producer's next Head store
// miss, so the fast path of both sides would pay a coherence round trip
// per call. With it, the consumer pays one load per batch the producer
// published. The cost is that Read may return fewer bytes than the ring
// holds (legal for an io.Reader; the next Read refreshes), and Len is a
// lower bound, as Space is. Since Head only grows, CachedHead is
// conservative in the same way: the consumer never reads a byte that was
// not published.
//
// # Invariants
//
// With all differences modulo 2^64 (Cursors.Check verifies them):
//
//   - 0 <= Head - Tail <= size-1;
//   - CachedTail <= Tail <= Head: the cached tail never runs ahead of the
//     real tail, so 0 <= Head - CachedTail <= size-1 and the producer never
//     overwrites a byte the consumer has not read;
//   - Tail <= CachedHead <= Head: the consumer never reads a byte the
//     producer has not published;
//   - a cursor only grows, and only its owner stores it.
//
// # Waiting
//
// Write, WriteFrom, Read and ReadTo never block: they return ErrFull or
// ErrEmpty (the ring's EAGAIN). Ring.Writer and Ring.Reader wrap them in an
// io.Writer/io.ReaderFrom and an io.Reader/io.WriterTo that block. A
// blocked side polls the other side's cursor while the other side is
// visibly making progress. As soon as a poll finds nothing to take and no
// progress since the last one, it parks on a channel until the other side
// publishes or a side closes. It does not spin or yield against a side
// that is not moving: two goroutines sharing one P hand it over at once.
// A producer that fills the ring then wakes a consumer that drains it from
// the same core's cache. On this project's 2-core machine that hand-off
// moves 4 KiB writes faster than any cross-core stream does.
//
// The polls batch. A reader that found nothing in its cache waits, while
// the producer is visibly writing, until it can fill its buffer or a
// quarter of the ring, until the producer pauses for about a microsecond,
// or until the 25 microseconds run out; it then returns what is there. A
// writer that found the ring full waits until a quarter of it is free, the
// consumer pauses, or the time runs out. Each pause is aimed at the moment
// the batch should be complete, from the rate the last polls saw and from
// how long the last wait took, so a steady stream costs about two polls
// per batch: 64-byte writes through a 16 KiB ring load the other side's
// cursor about once per 40 writes. The two thresholds add up to half the
// ring, so the sides never wait on each other. Unlike the RFC, whose
// receiver spins on splice_ring_has_data() for its SO_BUSY_POLL budget and
// then sleeps on the socket's wait queue, and whose sender never waits (it
// falls back to TCP), the ring spins with backoff and batches.
//
// # Hooks
//
// NewWithHooks installs Hooks, called just before each publish and each
// cross-core cursor load, on the side that does it. splicecheck's model is
// to block in them so that its deterministic scheduler runs the other side
// at exactly those points (TestExploreSchedules does this exhaustively for
// small scripts); the tests also use them to count cursor loads. The hook
// calls sit out of line behind a nil check of Ring.hooks, so a ring
// without hooks pays that check and nothing else (BenchmarkHookCost
// measures it against a copy of the code with the checks deleted).
//
// Package ringbuf imports only the standard library.
package ringbuf
