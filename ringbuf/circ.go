package ringbuf

// CircCnt is the number of bytes between tail and head in a ring of size
// bytes (a power of two). head and tail may be free-running (never masked):
// the subtraction wraps like the kernel's unsigned long arithmetic.
//
// CircCnt mirrors CIRC_CNT() (include/linux/circ_buf.h, v6.18).
func CircCnt(head, tail, size uint64) uint64 {
	return (head - tail) & (size - 1)
}

// CircSpace is the number of bytes the producer may still store: like
// CIRC_SPACE it always leaves one byte free, so a ring of size bytes holds
// at most size-1 of them and a full ring is never confused with an empty one.
//
// CircSpace mirrors CIRC_SPACE() (include/linux/circ_buf.h, v6.18).
func CircSpace(head, tail, size uint64) uint64 {
	return CircCnt(tail, head+1, size)
}
