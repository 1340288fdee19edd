package linux

import (
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// bpfMap mirrors a BPF_MAP_TYPE_SOCKMAP (struct bpf_stab) or
// BPF_MAP_TYPE_SOCKHASH (struct bpf_shtab; both net/core/sock_map.c, v6.18)
// with u32 keys, and the programs attached to it (sock_map_progs).
//
// A sockmap slot or a sockhash element holds the socket; the socket's
// psock holds a link back (psock.Links), and each link holds one psock
// reference.
type bpfMap struct {
	Name       string
	Type       trace.MapType
	MaxEntries int64
	Progs      skPsockProgs

	// sockmap: slots by index; sockhash: elements by key. Both are sparse.
	slots map[int64]mapSlot
	// order keeps keys in insertion order for deterministic walks.
	order   []int64
	nextRaw int64
}

// mapSlot is a sockmap slot or sockhash element. Raw identifies it the
// way link_raw does: a sockmap slot's address (the key), or a sockhash
// element's address (a fresh number per element).
type mapSlot struct {
	Sk  *sock
	Raw int64
}

// mapCreate mirrors sock_map_alloc() / sock_hash_alloc()
// (net/core/sock_map.c, v6.18) for a u32 key and u32 value: max_entries 0
// is -EINVAL; a sockhash whose bucket array would overflow is -EINVAL too.
func mapCreate(name string, typ trace.MapType, n int64) (*bpfMap, syscall.Errno) {
	reach(fnMapCreate)
	if n == 0 {
		return nil, errEINVAL
	}
	if typ == trace.SockHash {
		b := int64(1)
		for b < n {
			b <<= 1
		}
		if b > (1<<32-1)/16 {
			return nil, errEINVAL
		}
	}
	return &bpfMap{Name: name, Type: typ, MaxEntries: n, slots: map[int64]mapSlot{}}, errOK
}

// lookup mirrors __sock_map_lookup_elem() / __sock_hash_lookup_elem()
// (net/core/sock_map.c, v6.18).
func (m *bpfMap) lookup(key int64) *sock {
	reach(fnBpfMapLookup)
	key = int64(uint32(key))
	if m.Type == trace.SockMap && key >= m.MaxEntries {
		return nil
	}
	return m.slots[key].Sk
}

// progAttach mirrors sock_map_prog_update() through
// sock_map_prog_lookup() (net/core/sock_map.c, v6.18, where it is named
// sock_map_prog_link_lookup()): the program replaces the one of its attach
// type.
func (m *bpfMap) progAttach(p *prog) syscall.Errno {
	reach(fnBpfMapProgAttach)
	switch p.Kind {
	case progMsgVerdict:
		m.Progs.MsgParser = p
	case progStreamParser:
		m.Progs.StreamParser = p
	case progStreamVerdict:
		if m.Progs.SkbVerdict != nil {
			return errEBUSY
		}
		m.Progs.StreamVerdict = p
	default:
		return errEOPNOTSUPP
	}
	return errOK
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutUpdateKeyOffByOne = registerMutation("update-key-off-by-one",
		"sock_map_update_common checks idx > max_entries for idx >= max_entries: a sockmap accepts a key one past its end")
	mutDeleteNoUnref = registerMutation("delete-no-unref",
		"sock_map_delete_elem clears the slot without sock_map_unref: the link and its psock reference leak")
	mutDelLinkAllMatches = registerMutation("del-link-all-matches",
		"sock_map_del_link drops every link matching link_raw, not the first (as before Michal Luczaj's fix): a same-slot update leaks the psock")
)

// mapUpdate mirrors sock_map_update_elem_sys() (net/core/sock_map.c, v6.18)
// with BPF_ANY: the state check, then sock_map_update_common /
// sock_hash_update_common.
func (k *kernel) mapUpdate(t *task, m *bpfMap, key int64, sk *sock) syscall.Errno {
	k.reach(fnMapUpdate)
	sk.lockSock(t)
	defer sk.releaseSock()
	// sock_map_sk_state_allowed.
	if sk.State != tcpEstablished && sk.State != tcpListen {
		return errEOPNOTSUPP
	}
	return k.mapUpdateCommon(m, key, sk)
}

// mapUpdateCommon mirrors sock_map_update_common() /
// sock_hash_update_common() (net/core/sock_map.c, v6.18): link the
// socket (its psock and the map's programs), then store it under key,
// unlinking the socket it replaces. The caller holds the socket: the
// syscall's lock_sock (mapUpdate), or the sock_ops context's ownership
// (sockHashUpdateOps).
func (k *kernel) mapUpdateCommon(m *bpfMap, key int64, sk *sock) syscall.Errno {
	k.reach(fnMapUpdateCommon)
	key = int64(uint32(key))
	if m.Type == trace.SockMap && (key > m.MaxEntries || key == m.MaxEntries && !k.mutated(mutUpdateKeyOffByOne)) {
		return errE2BIG
	}
	if err := k.sockMapLink(m, sk); err != 0 {
		return err
	}
	p := skPsock(sk)
	old, exists := m.slots[key]
	raw := key
	if m.Type == trace.SockHash {
		if !exists && int64(len(m.slots)) >= m.MaxEntries {
			// sock_hash_alloc_elem: -E2BIG; the link's psock reference goes.
			k.skPsockPut(sk, p)
			return errE2BIG
		}
		m.nextRaw++
		raw = -m.nextRaw
	}
	p.Links = append(p.Links, sockMapLink{Map: m, Key: key, Raw: raw})
	m.slots[key] = mapSlot{Sk: sk, Raw: raw}
	if !exists {
		m.order = append(m.order, key)
	} else {
		k.sockMapUnref(old.Sk, m, old.Raw)
	}
	return errOK
}

// mapDelete mirrors sock_map_delete_elem() (-EINVAL for a key out of range
// or an empty slot) and sock_hash_delete_elem() (-ENOENT)
// (net/core/sock_map.c, v6.18).
func (k *kernel) mapDelete(m *bpfMap, key int64) syscall.Errno {
	k.reach(fnMapDelete)
	key = int64(uint32(key))
	slot, ok := m.slots[key]
	if m.Type == trace.SockMap {
		if key >= m.MaxEntries || !ok {
			return errEINVAL
		}
	} else if !ok {
		return errENOENT
	}
	k.removeSlot(m, key)
	if !k.mutated(mutDeleteNoUnref) {
		k.sockMapUnref(slot.Sk, m, slot.Raw)
	}
	return errOK
}

func (k *kernel) removeSlot(m *bpfMap, key int64) {
	delete(m.slots, key)
	for i, x := range m.order {
		if x == key {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
}

// sockMapLink mirrors sock_map_link() (net/core/sock_map.c, v6.18): find
// or create the socket's psock, refuse a program type it already has
// (-EBUSY), install the map's programs, switch the proto and start the
// strparser or the verdict.
func (k *kernel) sockMapLink(m *bpfMap, sk *sock) syscall.Errno {
	k.reach(fnSockMapLink)
	progs := m.Progs
	p := skPsock(sk)
	if p != nil {
		if p.Refcnt == 0 {
			return errEBUSY
		}
		p.Refcnt++
		if (progs.MsgParser != nil && p.Progs.MsgParser != nil) ||
			(progs.StreamParser != nil && p.Progs.StreamParser != nil) ||
			(progs.SkbVerdict != nil && p.Progs.SkbVerdict != nil) ||
			(progs.SkbVerdict != nil && p.Progs.StreamVerdict != nil) ||
			(progs.StreamVerdict != nil && p.Progs.SkbVerdict != nil) ||
			(progs.StreamVerdict != nil && p.Progs.StreamVerdict != nil) {
			k.skPsockPut(sk, p)
			return errEBUSY
		}
	} else {
		p = k.skPsockInit(sk)
	}
	if progs.MsgParser != nil {
		p.Progs.MsgParser = progs.MsgParser
	}
	if progs.StreamParser != nil {
		p.Progs.StreamParser = progs.StreamParser
	}
	if progs.StreamVerdict != nil {
		p.Progs.StreamVerdict = progs.StreamVerdict
	}
	if progs.SkbVerdict != nil {
		p.Progs.SkbVerdict = progs.SkbVerdict
	}
	k.tcpBpfUpdateProto(sk, p)
	switch {
	case progs.StreamParser != nil && progs.StreamVerdict != nil && p.SavedDataReady == nil:
		k.skPsockInitStrp(sk, p)
		k.skPsockStartStrp(sk, p)
	case progs.StreamParser == nil && progs.StreamVerdict != nil && p.SavedDataReady == nil:
		k.skPsockStartVerdict(sk, p)
	case progs.StreamVerdict == nil && progs.SkbVerdict != nil && p.SavedDataReady == nil:
		k.skPsockStartVerdict(sk, p)
	}
	return errOK
}

// sockMapUnref mirrors sock_map_unref() (net/core/sock_map.c, v6.18):
// remove the links of slot raw and drop one psock reference.
func (k *kernel) sockMapUnref(sk *sock, m *bpfMap, raw int64) {
	k.reach(fnSockMapUnref)
	p := skPsock(sk)
	if p == nil {
		return
	}
	k.sockMapDelLink(sk, p, m, raw)
	k.skPsockPut(sk, p)
}

// sockMapDelLink mirrors sock_map_del_link() (net/core/sock_map.c,
// v6.18): drop the first link of slot raw, and stop the strparser or
// verdict the map had started.
func (k *kernel) sockMapDelLink(sk *sock, p *psock, m *bpfMap, raw int64) {
	k.reach(fnSockMapDelLink)
	strpStop, verdictStop := false, false
	for i := 0; i < len(p.Links); i++ {
		l := p.Links[i]
		if l.Map == m && l.Raw == raw {
			if p.SavedDataReady != nil && m.Progs.StreamParser != nil {
				strpStop = true
			}
			if p.SavedDataReady != nil && (m.Progs.StreamVerdict != nil || m.Progs.SkbVerdict != nil) {
				verdictStop = true
			}
			p.Links = append(p.Links[:i], p.Links[i+1:]...)
			if k.mutated(mutDelLinkAllMatches) {
				i--
				continue
			}
			// Only the first match: an update that puts a socket
			// where it already is holds two links to the slot for a
			// moment, and deleting both leaked the psock (Michal
			// Luczaj's fix, bpf 2024: "Stop tearing the links when a
			// matching link_raw is found").
			break
		}
	}
	if strpStop || verdictStop {
		if strpStop {
			k.skPsockStopStrp(sk, p)
		}
		if verdictStop {
			k.skPsockStopVerdict(sk, p)
		}
		k.tcpBpfUpdateProto(sk, p)
	}
}

// sockMapRemoveLinks mirrors sock_map_remove_links() (net/core/sock_map.c,
// v6.18): pop every link and delete the socket from that slot if it still
// holds it (sock_map_delete_from_link / sock_hash_delete_from_link).
func (k *kernel) sockMapRemoveLinks(sk *sock, p *psock) {
	k.reach(fnSockMapRemoveLinks)
	for len(p.Links) > 0 && skPsock(sk) == p {
		l := p.Links[0]
		p.Links = p.Links[1:]
		if slot, ok := l.Map.slots[l.Key]; ok && slot.Sk == sk && slot.Raw == l.Raw {
			k.removeSlot(l.Map, l.Key)
			k.sockMapUnref(sk, l.Map, l.Raw)
		}
	}
}

// sockMapClose mirrors sock_map_close() (net/core/sock_map.c, v6.18): leave
// every map, stop the psock, then the saved close (tcp_close).
func (k *kernel) sockMapClose(t *task, sk *sock) {
	k.reach(fnSockMapClose)
	sk.lockSock(t)
	p := skPsock(sk)
	saved := sk.SkProt
	if p != nil {
		saved = p.SkProto
		k.sockMapRemoveLinks(sk, p)
		if p2 := skPsockGet(sk); p2 != nil {
			k.skPsockStop(p2)
			sk.releaseSock()
			// cancel_delayed_work_sync: the model's backlog work checks
			// the psock state when it runs.
			k.skPsockPut(sk, p2)
		} else {
			sk.releaseSock()
		}
	} else {
		sk.releaseSock()
	}
	saved.Close(t, sk)
}
