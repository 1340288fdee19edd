package trace

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxSize bounds every size and count in a trace (1 GiB).
const MaxSize = 1 << 30

func newParser(file string) *parser {
	return &parser{
		t:       &Trace{File: file, ThreadNames: []string{MainThread}},
		sockets: map[string]string{},
		maps:    map[string]string{},
		threads: map[string]string{MainThread: MainThread},
	}
}

// finish checks what needs the whole trace and returns it.
func (p *parser) finish() (*Trace, error) {
	if s := p.t.Schedule; s != nil {
		for i, th := range s.Threads {
			if _, ok := p.threads[th]; !ok {
				return nil, p.errAt(p.schedPos[i], "schedule names unknown thread %q", th)
			}
		}
	}
	return p.t, nil
}

type token struct {
	text   string
	col    int
	quoted bool // a "..." or x"..." literal
}

// parser parses a trace a line at a time. The names an op holds (sockets,
// maps, threads) are the interned copies in sockets, maps and threads, so
// an op never keeps its line's text alive.
type parser struct {
	t        *Trace
	sockets  map[string]string // each name defined so far, to itself
	maps     map[string]string
	threads  map[string]string
	schedPos []Pos

	line0 int
	toks  []token
	i     int
	endAt int // column just past the last character of the line
}

// errAt returns a *ParseError at pos. The strings and errors among args
// are input: each is cut to a few dozen bytes (echo).
func (p *parser) errAt(pos Pos, format string, args ...any) error {
	return &ParseError{File: p.t.File, Pos: pos, Msg: fmt.Sprintf(format, echoArgs(args)...)}
}

func (p *parser) errTok(t token, format string, args ...any) error {
	return p.errAt(Pos{p.line0, t.col}, format, args...)
}

// lex splits a line into tokens. `#` outside a literal starts a comment.
func (p *parser) lex(line string) error {
	p.toks = p.toks[:0]
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '#':
			p.endAt = i + 1
			return nil
		}
		start := i
		if c == '"' || (c == 'x' && i+1 < len(line) && line[i+1] == '"') {
			j := i + 1
			if c == 'x' {
				j++
			}
			closed := false
			for j < len(line) {
				if line[j] == '\\' {
					j += 2
					continue
				}
				if line[j] == '"' {
					closed = true
					j++
					break
				}
				j++
			}
			if !closed {
				return p.errAt(Pos{p.line0, start + 1}, "missing closing quote")
			}
			if j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '#' {
				return p.errAt(Pos{p.line0, j + 1}, "unexpected %q after closing quote", line[j])
			}
			p.toks = append(p.toks, token{line[start:j], start + 1, true})
			i = j
			continue
		}
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '#' {
			if line[i] == '"' {
				return p.errAt(Pos{p.line0, i + 1}, "unexpected quote")
			}
			i++
		}
		p.toks = append(p.toks, token{line[start:i], start + 1, false})
	}
	p.endAt = len(line) + 1
	return nil
}

func (p *parser) line(n int, line string) error {
	p.line0 = n
	if err := p.lex(line); err != nil {
		return err
	}
	if len(p.toks) == 0 {
		return nil
	}
	p.i = 0
	var op Op
	first := p.toks[0]
	op.Pos = Pos{n, first.col}
	if strings.HasPrefix(first.text, "@") {
		th := first.text[1:]
		if !validName(th) {
			return p.errTok(first, "bad thread name %q "+nameRule, th)
		}
		if th != MainThread {
			op.Thread = p.thread(th)
		}
		p.i++
		if p.i >= len(p.toks) {
			return p.errAt(Pos{n, p.endAt}, "missing op after thread prefix")
		}
	}
	word := p.toks[p.i]
	if word.quoted {
		return p.errTok(word, "expected an op, found a literal")
	}
	if word.text == "profile" || word.text == "schedule" {
		if p.i > 0 {
			return p.errTok(p.toks[0], "header directive %q cannot have a thread prefix", word.text)
		}
		if len(p.t.Ops) > 0 {
			return p.errTok(word, "header directive %q after the first op", word.text)
		}
		p.i++
		return p.header(word)
	}
	kind, ok := kindByName(word.text)
	if !ok {
		return p.errTok(word, "unknown op %q", word.text)
	}
	op.Kind = kind
	p.i++
	if err := p.operands(&op, word); err != nil {
		return err
	}
	if p.i < len(p.toks) {
		return p.errTok(p.toks[p.i], "unexpected %q after %s", p.toks[p.i].text, kind)
	}
	p.t.Ops = append(p.t.Ops, op)
	return nil
}

// thread returns the interned name of thread th, defining it (in order of
// first use) when the trace has not used it yet.
func (p *parser) thread(th string) string {
	if s, ok := p.threads[th]; ok {
		return s
	}
	s := strings.Clone(th)
	p.threads[s] = s
	p.t.ThreadNames = append(p.t.ThreadNames, s)
	return s
}

func (p *parser) header(word token) error {
	switch word.text {
	case "profile":
		if p.t.Profile != "" {
			return p.errTok(word, "duplicate profile directive")
		}
		t, err := p.next("profile name")
		if err != nil {
			return err
		}
		if _, err := ParseProfile(t.text); err != nil {
			return p.errTok(t, "%v", err)
		}
		p.t.Profile = strings.Clone(t.text)
		p.t.ProfilePos = Pos{p.line0, word.col}
	case "schedule":
		if p.t.Schedule != nil {
			return p.errTok(word, "duplicate schedule directive")
		}
		s := &Schedule{Pos: Pos{p.line0, word.col}}
		t, err := p.next("seed or thread names")
		if err != nil {
			return err
		}
		if len(p.toks) > p.i && !p.toks[p.i].quoted && isDigit(p.toks[p.i].text[0]) && (t.text == StrategyRandom || t.text == StrategyPCT || t.text == StrategyPicks) {
			if err := p.strategy(s, t); err != nil {
				return err
			}
		} else if isDigit(t.text[0]) {
			seed, err := strconv.ParseUint(t.text, 10, 64)
			if err != nil {
				return p.errTok(t, "bad schedule seed %q", t.text)
			}
			s.HasSeed, s.Seed = true, seed
		} else {
			p.i--
			for p.i < len(p.toks) {
				t := p.toks[p.i]
				if t.quoted || !validName(t.text) {
					return p.errTok(t, "bad thread name %q in schedule "+nameRule, t.text)
				}
				s.Threads = append(s.Threads, strings.Clone(t.text))
				p.schedPos = append(p.schedPos, Pos{p.line0, t.col})
				p.i++
			}
		}
		if p.i < len(p.toks) {
			return p.errTok(p.toks[p.i], "unexpected %q after schedule seed", p.toks[p.i].text)
		}
		p.t.Schedule = s
	}
	if p.i < len(p.toks) {
		return p.errTok(p.toks[p.i], "unexpected %q after %s", p.toks[p.i].text, word.text)
	}
	return nil
}

// next returns the next token or an error naming what was expected.
func (p *parser) next(what string) (token, error) {
	if p.i >= len(p.toks) {
		return token{}, p.errAt(Pos{p.line0, p.endAt}, "missing %s", what)
	}
	t := p.toks[p.i]
	p.i++
	return t, nil
}

func (p *parser) word(what string) (token, error) {
	t, err := p.next(what)
	if err == nil && t.quoted {
		err = p.errTok(t, "expected %s, found a literal", what)
	}
	return t, err
}

func (p *parser) name(what string) (token, error) {
	t, err := p.word(what)
	if err == nil && !validName(t.text) {
		err = p.errTok(t, "bad %s %q "+nameRule, what, t.text)
	}
	return t, err
}

// nameRule is validName in words, for errors.
const nameRule = "(want a letter a-z, then letters a-z, digits 0-9 or _, like a1)"

// socket reads a socket name that conn defined earlier and returns its
// interned copy.
func (p *parser) socket() (string, error) {
	t, err := p.name("socket name")
	if err != nil {
		return "", err
	}
	s, ok := p.sockets[t.text]
	if !ok {
		return "", p.errTok(t, "unknown socket %q", t.text)
	}
	return s, nil
}

func (p *parser) mapName() (string, error) {
	t, err := p.name("map name")
	if err != nil {
		return "", err
	}
	m, ok := p.maps[t.text]
	if !ok {
		return "", p.errTok(t, "unknown map %q", t.text)
	}
	return m, nil
}

// number reads a decimal number; sizes also accept k and m suffixes.
func (p *parser) number(what string, size bool) (int64, error) {
	t, err := p.word(what)
	if err != nil {
		return 0, err
	}
	return p.parseNumber(t, what, size)
}

func (p *parser) parseNumber(t token, what string, size bool) (int64, error) {
	s := t.text
	if strings.HasPrefix(s, "-") {
		return 0, p.errTok(t, "negative %s %q", what, s)
	}
	mult := int64(1)
	if size && len(s) > 1 {
		switch s[len(s)-1] {
		case 'k':
			mult, s = 1<<10, s[:len(s)-1]
		case 'm':
			mult, s = 1<<20, s[:len(s)-1]
		}
	}
	if s == "" || !allDigits(s) {
		return 0, p.errTok(t, "bad %s %q", what, t.text)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > math.MaxInt64/mult || v*mult > MaxSize {
		return 0, p.errTok(t, "%s %q too large (max %d)", what, t.text, MaxSize)
	}
	return v * mult, nil
}

// flags reads trailing flag words allowed for op.
func (p *parser) flags(op *Op) error {
	allowed := allowedFlags[op.Kind]
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		var f Flags
		for _, fw := range flagWords {
			if fw.word == t.text && !t.quoted {
				f = fw.f
			}
		}
		if f == 0 || allowed&f == 0 {
			return p.errTok(t, "unexpected %q after %s", t.text, op.Kind)
		}
		if op.Flags&f != 0 {
			return p.errTok(t, "duplicate flag %q", t.text)
		}
		op.Flags |= f
		p.i++
	}
	return nil
}

// define adds t's name to set and returns its interned copy.
func (p *parser) define(set map[string]string, what string, t token) (string, error) {
	if _, ok := set[t.text]; ok {
		return "", p.errTok(t, "%s %q already defined", what, t.text)
	}
	s := strings.Clone(t.text)
	set[s] = s
	return s, nil
}

func (p *parser) operands(op *Op, word token) error {
	var err error
	switch op.Kind {
	case OpConn:
		var a, b token
		if a, err = p.name("socket name"); err != nil {
			return err
		}
		if b, err = p.name("socket name"); err != nil {
			return err
		}
		if a.text == b.text {
			return p.errTok(b, "conn needs two different sockets")
		}
		if op.A, err = p.define(p.sockets, "socket", a); err != nil {
			return err
		}
		if op.B, err = p.define(p.sockets, "socket", b); err != nil {
			return err
		}
		p.t.SocketNames = append(p.t.SocketNames, op.A, op.B)
		return p.flags(op)
	case OpMap:
		m, err := p.name("map name")
		if err != nil {
			return err
		}
		if op.Map, err = p.define(p.maps, "map", m); err != nil {
			return err
		}
		p.t.MapNames = append(p.t.MapNames, op.Map)
		t, err := p.word("map type")
		if err != nil {
			return err
		}
		switch t.text {
		case "sockmap":
			op.MapType = SockMap
		case "sockhash":
			op.MapType = SockHash
		default:
			return p.errTok(t, "unknown map type %q (want sockmap or sockhash)", t.text)
		}
		if op.Size, err = p.number("map size", true); err != nil {
			return err
		}
	case OpProg:
		if op.Map, err = p.mapName(); err != nil {
			return err
		}
		op.Prog, err = p.prog()
		return err
	case OpInsert:
		if op.Map, err = p.mapName(); err != nil {
			return err
		}
		if op.Key, err = p.number("key", false); err != nil {
			return err
		}
		op.A, err = p.socket()
		return err
	case OpDelete:
		if op.Map, err = p.mapName(); err != nil {
			return err
		}
		op.Key, err = p.number("key", false)
		return err
	case OpPair, OpIOCopy:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		if op.B, err = p.socket(); err != nil {
			return err
		}
		return p.flags(op)
	case OpSend:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		if err = p.data(op); err != nil {
			return err
		}
		return p.flags(op)
	case OpRecv, OpSplice, OpPipe:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		if op.Size, err = p.number("size", true); err != nil {
			return err
		}
		return p.flags(op)
	case OpFIONREAD, OpPoll, OpState:
		op.A, err = p.socket()
		return err
	case OpSosplice:
		return p.sosplice(op)
	case OpUnsplice, OpGetsplice:
		op.A, err = p.socket()
		return err
	case OpErrqueue:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		op.Size = 1
		if p.i < len(p.toks) {
			if op.Size, err = p.number("notification count", false); err != nil {
				return err
			}
			if op.Size < 1 {
				return p.errTok(p.toks[p.i-1], "errqueue reads at least 1 notification, not %d", op.Size)
			}
		}
		return nil
	case OpShutdown:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		t, err := p.word("wr, rd or rdwr")
		if err != nil {
			return err
		}
		switch t.text {
		case "rd":
			op.How = ShutRD
		case "wr":
			op.How = ShutWR
		case "rdwr":
			op.How = ShutRDWR
		default:
			return p.errTok(t, "unknown shutdown %q (want wr, rd or rdwr)", t.text)
		}
	case OpClose:
		if op.A, err = p.socket(); err != nil {
			return err
		}
		return p.flags(op)
	case OpSet:
		return p.set(op)
	case OpSleep:
		op.Size, err = p.number("milliseconds", false)
		return err
	case OpJoin:
		t, err := p.name("thread name")
		if err != nil {
			return err
		}
		switch {
		case t.text == MainThread:
			return p.errTok(t, "cannot join thread main")
		case t.text == op.ThreadName():
			return p.errTok(t, "thread %q cannot join itself", t.text)
		}
		th, ok := p.threads[t.text]
		if !ok {
			return p.errTok(t, "unknown thread %q", t.text)
		}
		op.Target = th
	}
	return nil
}

// sosplice parses `sosplice A B [max N] [idle MS]`.
func (p *parser) sosplice(op *Op) error {
	var err error
	if op.A, err = p.socket(); err != nil {
		return err
	}
	if op.B, err = p.socket(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		if (t.text != "max" && t.text != "idle") || t.quoted || seen[t.text] {
			return p.errTok(t, "unexpected %q after sosplice (want max N or idle MS, once each)", t.text)
		}
		seen[t.text] = true
		p.i++
		if t.text == "max" {
			op.Size, err = p.number("max bytes", true)
		} else {
			op.Key, err = p.number("idle milliseconds", false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) set(op *Op) error {
	var err error
	if op.A, err = p.socket(); err != nil {
		return err
	}
	t, err := p.word("socket option")
	if err != nil {
		return err
	}
	for o, name := range sockOptNames {
		if name == t.text {
			op.Opt = o
		}
	}
	switch op.Opt {
	case 0:
		return p.errTok(t, "unknown socket option %q (want rcvtimeo, nonblock, busypoll, rcvbuf, sndbuf, pipesize, rxcopybreak or zerocopy)", t.text)
	case OptNonblock, OptZerocopy:
		v, err := p.word("on or off")
		if err != nil {
			return err
		}
		switch v.text {
		case "on":
			op.Size = 1
		case "off":
			op.Size = 0
		default:
			return p.errTok(v, "want on or off, found %q", v.text)
		}
	case OptRcvtimeo:
		op.Size, err = p.number("milliseconds", false)
	case OptBusypoll:
		op.Size, err = p.number("microseconds", false)
	default:
		op.Size, err = p.number("size", true)
	}
	return err
}

func (p *parser) data(op *Op) error {
	t, err := p.next("data")
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(t.text, `x"`):
		h := t.text[2 : len(t.text)-1]
		b, err := hex.DecodeString(h)
		if err != nil {
			return p.errTok(t, "bad hex data %s: %v", t.text, err)
		}
		op.Form, op.Data = DataHex, b
	case t.quoted:
		s, err := strconv.Unquote(t.text)
		if err != nil {
			return p.errTok(t, "bad escape in %s", t.text)
		}
		op.Form, op.Data = DataText, []byte(s)
	default:
		if op.Size, err = p.parseNumber(t, "size", true); err != nil {
			return err
		}
		op.Form = DataPattern
	}
	if op.Form != DataPattern && len(op.Data) == 0 {
		op.Data = []byte{}
	}
	return nil
}

func (p *parser) prog() (*Prog, error) {
	pr := &Prog{}
	t, err := p.word("program type")
	if err != nil {
		return nil, err
	}
	switch t.text {
	case "sk_msg":
		pr.Type = SkMsg
	case "sk_skb":
		pr.Type = SkSkb
	default:
		return nil, p.errTok(t, "unknown program type %q (want sk_msg or sk_skb)", t.text)
	}
	v, err := p.word("verdict")
	if err != nil {
		return nil, err
	}
	switch v.text {
	case "pass":
		pr.Verdict = VerdictPass
	case "drop":
		pr.Verdict = VerdictDrop
	case "redirect":
		pr.Verdict = VerdictRedirect
		if pr.Key, err = p.number("redirect key", false); err != nil {
			return nil, err
		}
		d, err := p.word("ingress or egress")
		if err != nil {
			return nil, err
		}
		switch d.text {
		case "ingress":
			pr.Ingress = true
		case "egress":
		default:
			return nil, p.errTok(d, "want ingress or egress, found %q", d.text)
		}
	default:
		return nil, p.errTok(v, "unknown verdict %q (want pass, drop or redirect)", v.text)
	}
	for p.i < len(p.toks) {
		o := p.toks[p.i]
		p.i++
		switch {
		case o.text == "apply" && pr.Type == SkMsg && !pr.HasApply:
			pr.HasApply = true
			if pr.Apply, err = p.number("apply bytes", true); err != nil {
				return nil, err
			}
		case o.text == "cork" && pr.Type == SkMsg && !pr.HasCork:
			pr.HasCork = true
			if pr.Cork, err = p.number("cork bytes", true); err != nil {
				return nil, err
			}
		case o.text == "parser" && pr.Type == SkSkb && pr.Parser == 0:
			n, err := p.next("parser size or all")
			if err != nil {
				return nil, err
			}
			if n.text == "all" {
				pr.Parser = ParserAll
				break
			}
			if pr.Parser, err = p.parseNumber(n, "parser size", true); err != nil {
				return nil, err
			}
			if pr.Parser == 0 {
				return nil, p.errTok(n, "parser size must be positive")
			}
		default:
			return nil, p.errTok(o, "unexpected %q in %s program", o.text, pr.Type)
		}
	}
	return pr, nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '_') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	return bytes.IndexFunc([]byte(s), func(r rune) bool { return r < '0' || r > '9' }) < 0
}

// strategy parses the rest of `schedule random SEED`, `schedule pct D SEED`
// or `schedule picks I I ...` after the strategy word w.
func (p *parser) strategy(s *Schedule, w token) error {
	s.Strategy = strings.Clone(w.text)
	num := func(what string) (uint64, error) {
		t, err := p.next(what)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseUint(t.text, 10, 64)
		if err != nil || t.quoted {
			return 0, p.errTok(t, "bad schedule %s %q", what, t.text)
		}
		return v, nil
	}
	switch w.text {
	case StrategyRandom:
		seed, err := num("seed")
		if err != nil {
			return err
		}
		s.Seed = seed
	case StrategyPCT:
		d, err := num("depth")
		if err != nil {
			return err
		}
		if d < 1 || d > 64 {
			return p.errAt(Pos{p.line0, p.toks[p.i-1].col}, "schedule pct depth %d outside [1, 64]", d)
		}
		seed, err := num("seed")
		if err != nil {
			return err
		}
		s.Depth, s.Seed = int(d), seed
	case StrategyPicks:
		for p.i < len(p.toks) {
			v, err := num("pick")
			if err != nil {
				return err
			}
			if v > 1<<16 {
				return p.errAt(Pos{p.line0, p.toks[p.i-1].col}, "schedule pick %d too large", v)
			}
			s.Picks = append(s.Picks, int(v))
		}
	}
	return nil
}
