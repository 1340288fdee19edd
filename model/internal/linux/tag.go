package linux

// Tag says where one payload byte came from, for the campaigns' byte
// provenance (Config.Provenance): the socket whose user send it was (its
// index in the run's connection order, Stats.TagSocks) and its offset in
// that socket's stream, and the paths it took on the way (TagRing: a
// loopback-splice ring; TagIngress: a psock's ingress_msg). The zero Tag
// is unknown: a byte the model made itself, or one whose tag was lost.
//
// Tags are the simulator's, not the kernel's: they ride beside the bytes
// (page.Tags, iovIter.tags, the ring shadow, an external transport's
// tagQueue) through every copy the model makes, and a page reference
// handed on carries them with it. With provenance off every tag slice is
// nil and no tag is made.
type Tag uint64

const (
	tagOffBits = 40
	tagOffMask = 1<<tagOffBits - 1
	tagSockMax = 1<<16 - 1
	// TagRing marks a byte that went through a loopback-splice ring.
	TagRing Tag = 1 << 63
	// TagIngress marks a byte that was queued on a psock's ingress_msg.
	TagIngress Tag = 1 << 62
	// TagRingReaders and TagRingWriters mark a byte read out of, or
	// written into, a ring while another task read or wrote the same
	// ring (two consumers or two producers on an SPSC ring).
	TagRingReaders Tag = 1 << 61
	TagRingWriters Tag = 1 << 60
	tagPaths           = TagRing | TagIngress | TagRingReaders | TagRingWriters
)

// makeTag is the tag of offset off of socket sock's stream (sock >= 0).
func makeTag(sock int, off int64) Tag {
	if sock < 0 || sock >= tagSockMax || off < 0 || off > tagOffMask {
		return 0
	}
	return Tag(sock+1)<<tagOffBits | Tag(off)
}

// Known reports whether t says where its byte came from.
func (t Tag) Known() bool { return t&^tagPaths != 0 }

// Sock is the index of the sending socket (Stats.TagSocks), -1 if unknown.
func (t Tag) Sock() int { return int((t&^tagPaths)>>tagOffBits) - 1 }

// Off is the byte's offset in its sender's stream.
func (t Tag) Off() int64 { return int64(t & tagOffMask) }

// Paths returns the path bits of t.
func (t Tag) Paths() Tag { return t & tagPaths }

// markTags sets path on tags.
func markTags(tags []Tag, path Tag) {
	for i := range tags {
		if tags[i] != 0 {
			tags[i] |= path
		}
	}
}

// markAllTags sets path on tags, unknown ones too (a byte that has no
// sender still took the path).
func markAllTags(tags []Tag, path Tag) {
	for i := range tags {
		tags[i] |= path
	}
}

// tagsOrZero returns tags, or n zero tags when tags is nil and want is
// set (the destination keeps tags and the source has none).
func tagsOrZero(tags []Tag, n int, want bool) []Tag {
	if tags == nil && want {
		return make([]Tag, n)
	}
	return tags
}
