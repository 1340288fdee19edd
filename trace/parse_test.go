package trace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// everyOp holds every op, directive, flag, option and data form of the
// language at least once.
const everyOp = `# every form of the language
profile linux-6.18+splice-copy
schedule t1 main t2
conn a b
conn c d pair
map m sockmap 4
map h sockhash 2k
prog m sk_msg pass
prog m sk_msg drop apply 10
prog m sk_msg redirect 1 ingress apply 1k cork 2
prog h sk_msg redirect 0 egress cork 4
prog m sk_skb pass parser all
prog h sk_skb redirect 3 ingress parser 100
prog h sk_skb drop
insert m 0 a
insert h 1 b
delete m 0
pair a c
send a "hello\n\x00" dontwait
send a x"0a0b0c"
send a 1m
send a ""
send a 100 zerocopy
send a "z" dontwait zerocopy
@t1 recv b 10 peek dontwait waitall
recv b 1k
@t2 splice d 64k nonblock
splice b 10
pipe b 10
iocopy b c
iocopy c b readwrite
fionread b
poll b
state b
shutdown a wr
shutdown c rd
shutdown d rdwr
set b rcvtimeo 100
set b nonblock on
set b nonblock off
set b busypoll 50
set b rcvbuf 64k
set b sndbuf 1m
set a zerocopy on
errqueue a
errqueue a 4
sosplice a b max 129 idle 500
sosplice b a
unsplice a
getsplice a
sleep 10
join t1
@t2 join t1
close a
close c rst
`

func TestParseEveryOp(t *testing.T) {
	tr, err := Parse("every.trace", []byte(everyOp))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Kind]bool{}
	for _, op := range tr.Ops {
		seen[op.Kind] = true
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("op %s missing from the every-op trace", k)
		}
	}
	if tr.Profile != "linux-6.18+splice-copy" || tr.Schedule == nil || strings.Join(tr.Schedule.Threads, ",") != "t1,main,t2" {
		t.Errorf("directives: profile %q schedule %+v", tr.Profile, tr.Schedule)
	}
	if got := strings.Join(tr.ThreadNames, ","); got != "main,t1,t2" {
		t.Errorf("threads %s", got)
	}
	printed := map[string]*Op{}
	for i := range tr.Ops {
		printed[tr.Ops[i].String()] = &tr.Ops[i]
	}
	for _, want := range []string{
		"prog m sk_msg redirect 1 ingress apply 1024 cork 2",
		`send a "hello\n\x00" dontwait`,
		`send a x"0a0b0c"`,
		"send a 1048576",
		"@t1 recv b 10 peek dontwait waitall",
		"@t2 splice d 65536 nonblock",
		"set b nonblock on",
		"@t2 join t1",
		"close c rst",
		"prog m sk_skb pass parser all",
		"conn c d pair",
	} {
		if printed[want] == nil {
			t.Errorf("no op prints as %q", want)
		}
	}
	if op := printed["send a 1048576"]; op == nil || op.Form != DataPattern || op.Size != 1<<20 || op.Data != nil {
		t.Errorf("pattern send parsed as %+v", op)
	}
	if op := printed[`send a ""`]; op == nil || op.Form != DataText || op.Data == nil || len(op.Data) != 0 {
		t.Errorf("empty send parsed as %+v", op)
	}
	if op := printed["prog m sk_skb pass parser all"]; op == nil || op.Prog.Parser != ParserAll || op.Prog.Type != SkSkb {
		t.Errorf("parser all parsed as %+v", op)
	}
	if op := tr.Ops[0]; op.Pos != (Pos{4, 1}) {
		t.Errorf("first op at %+v", op.Pos)
	}
}

func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("../testdata/traces/*/*.trace")
	srcs := map[string][]byte{"every": []byte(everyOp)}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs[f] = b
	}
	for name, src := range srcs {
		tr, err := Parse(name, src)
		if err != nil {
			t.Fatal(err)
		}
		out := tr.Format()
		tr2, err := Parse(name, []byte(out))
		if err != nil {
			t.Fatalf("%s: printed trace does not parse: %v\n%s", name, err, out)
		}
		if !Equal(tr, tr2) {
			t.Fatalf("%s: round trip changed the trace:\n%s", name, out)
		}
		if out2 := tr2.Format(); out2 != out {
			t.Fatalf("%s: printing is not stable:\n%s\nvs\n%s", name, out, out2)
		}
	}
}

// TestConnPair: `conn A B pair` parses to OpConn with FlagPair, prints
// back as written and round-trips; `pair` is a word of conn only.
func TestConnPair(t *testing.T) {
	src := "conn a b pair\nconn c d\npair a c\n"
	tr, err := Parse("p.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if op := tr.Ops[0]; op.Kind != OpConn || op.Flags != FlagPair || op.A != "a" || op.B != "b" {
		t.Errorf("conn a b pair parsed as %+v", op)
	}
	if op := tr.Ops[1]; op.Flags != 0 {
		t.Errorf("conn c d parsed with flags %v", op.Flags)
	}
	if got := tr.Format(); got != src {
		t.Errorf("printed as\n%s", got)
	}
	tr2, err := Parse("p.trace", []byte(tr.Format()))
	if err != nil || !Equal(tr, tr2) {
		t.Errorf("round trip: %v", err)
	}
	plain, err := Parse("q.trace", []byte("conn a b\nconn c d\npair a c\n"))
	if err != nil {
		t.Fatal(err)
	}
	if Equal(tr, plain) {
		t.Error("Equal does not see the pair flag")
	}
	for src, want := range map[string]string{
		"conn a b\nsend a 1 pair\n":   `x.trace:2:10: unexpected "pair" after send`,
		"conn a b\nclose a pair\n":    `x.trace:2:9: unexpected "pair" after close`,
		"conn a b\npair a b pair\n":   `x.trace:2:10: unexpected "pair" after pair`,
		"conn a b\nrecv a 1 pair\n":   `x.trace:2:10: unexpected "pair" after recv`,
		"conn a b pair pair\n":        `x.trace:1:15: duplicate flag "pair"`,
		"conn a b rst\n":              `x.trace:1:10: unexpected "rst" after conn`,
		"conn a b\nsplice a 1 pair\n": `x.trace:2:12: unexpected "pair" after splice`,
	} {
		_, err := Parse("x.trace", []byte(src))
		if err == nil || !errors.Is(err, ErrSyntax) || err.Error() != want {
			t.Errorf("%q: got %v, want %s", src, err, want)
		}
	}
}

func TestEqualSeesDifferences(t *testing.T) {
	base := "conn a b\nsend a \"x\"\n"
	for _, other := range []string{
		"conn a b\nsend a \"y\"\n",
		"conn a b\nsend a x\"78\"\n",
		"conn a b\nsend a 1\n",
		"conn a b\nsend a \"x\" dontwait\n",
		"conn a b\n@t send a \"x\"\n",
		"profile linux-6.1\nconn a b\nsend a \"x\"\n",
		"conn a b\n",
	} {
		a, _ := Parse("a", []byte(base))
		b, err := Parse("b", []byte(other))
		if err != nil {
			t.Fatal(err)
		}
		if Equal(a, b) {
			t.Errorf("Equal(%q, %q) = true", base, other)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown op", "conn a b\nfrobnicate a\n", "x.trace:2:1: unknown op \"frobnicate\""},
		{"unknown socket", "conn a b\nsend c 10\n", "x.trace:2:6: unknown socket \"c\""},
		{"unknown socket second", "conn a b\niocopy a zz\n", "x.trace:2:10: unknown socket \"zz\""},
		{"negative size", "conn a b\nrecv a -5\n", "x.trace:2:8: negative size \"-5\""},
		{"negative send", "conn a b\nsend a -1\n", "x.trace:2:8: negative size \"-1\""},
		{"bad escape", "conn a b\nsend a \"ab\\q\"\n", "x.trace:2:8: bad escape in \"ab\\q\""},
		{"missing quote", "conn a b\nsend a \"abc\n", "x.trace:2:8: missing closing quote"},
		{"missing hex quote", "conn a b\nsend a x\"0a\n", "x.trace:2:8: missing closing quote"},
		{"odd hex", "conn a b\nsend a x\"0a0\"\n", "x.trace:2:8: bad hex data x\"0a0\": encoding/hex: odd length hex string"},
		{"missing operand", "conn a\n", "x.trace:1:7: missing socket name"},
		{"extra operand", "conn a b c\n", "x.trace:1:10: unexpected \"c\" after conn"},
		{"redefined socket", "conn a b\nconn b c\n", "x.trace:2:6: socket \"b\" already defined"},
		{"same socket twice", "conn a a\n", "x.trace:1:8: conn needs two different sockets"},
		{"unknown map", "conn a b\ninsert m 0 a\n", "x.trace:2:8: unknown map \"m\""},
		{"bad map type", "map m array 4\n", "x.trace:1:7: unknown map type \"array\" (want sockmap or sockhash)"},
		{"apply on sk_skb", "map m sockmap 2\nprog m sk_skb pass apply 4\n", "x.trace:2:20: unexpected \"apply\" in sk_skb program"},
		{"parser on sk_msg", "map m sockmap 2\nprog m sk_msg pass parser 4\n", "x.trace:2:20: unexpected \"parser\" in sk_msg program"},
		{"parser zero", "map m sockmap 2\nprog m sk_skb pass parser 0\n", "x.trace:2:27: parser size must be positive"},
		{"bad verdict", "map m sockmap 2\nprog m sk_msg redirect 1 sideways\n", "x.trace:2:26: want ingress or egress, found \"sideways\""},
		{"flag not allowed", "conn a b\nsend a 1 peek\n", "x.trace:2:10: unexpected \"peek\" after send"},
		{"duplicate flag", "conn a b\nrecv a 1 peek peek\n", "x.trace:2:15: duplicate flag \"peek\""},
		{"suffix on key", "map m sockmap 2\ndelete m 1k\n", "x.trace:2:10: bad key \"1k\""},
		{"too large", "conn a b\nrecv a 2048m\n", "x.trace:2:8: size \"2048m\" too large (max 1073741824)"},
		{"bad thread", "conn a b\n@T1 recv a 1\n", "x.trace:2:1: bad thread name \"T1\" " + nameRule},
		{"thread prefix alone", "@t1\n", "x.trace:1:4: missing op after thread prefix"},
		{"directive after op", "conn a b\nprofile linux-6.1\n", "x.trace:2:1: header directive \"profile\" after the first op"},
		{"directive with thread", "@t profile linux-6.1\n", "x.trace:1:1: header directive \"profile\" cannot have a thread prefix"},
		{"unknown profile", "profile linux-2.4\n", "x.trace:1:9: unknown profile \"linux-2.4\""},
		{"duplicate profile", "profile linux-6.1\nprofile linux-6.1\n", "x.trace:2:1: duplicate profile directive"},
		{"bad seed", "schedule 12x\n", "x.trace:1:10: bad schedule seed \"12x\""},
		{"schedule unknown thread", "schedule t9 main\nconn a b\n", "x.trace:1:10: schedule names unknown thread \"t9\""},
		{"join unknown", "join t1\n", "x.trace:1:6: unknown thread \"t1\""},
		{"join main", "conn a b\n@t1 poll a\njoin main\n", "x.trace:3:6: cannot join thread main"},
		{"join self", "conn a b\n@t1 join t1\n", "x.trace:2:10: thread \"t1\" cannot join itself"},
		{"bad set", "conn a b\nset a nodelay 1\n", "x.trace:2:7: unknown socket option \"nodelay\" (want rcvtimeo, nonblock, busypoll, rcvbuf, sndbuf, pipesize, rxcopybreak or zerocopy)"},
		{"zerocopy on recv", "conn a b\nrecv a 1 zerocopy\n", "x.trace:2:10: unexpected \"zerocopy\" after recv"},
		{"readwrite on pair", "conn a b\npair a b readwrite\n", "x.trace:2:10: unexpected \"readwrite\" after pair"},
		{"sosplice junk", "conn a b\nsosplice a b max 1 max 2\n", "x.trace:2:20: unexpected \"max\" after sosplice (want max N or idle MS, once each)"},
		{"errqueue none", "conn a b\nerrqueue a 0\n", "x.trace:2:12: errqueue reads at least 1 notification, not 0"},
		{"bad zerocopy", "conn a b\nset a zerocopy 1\n", "x.trace:2:16: want on or off, found \"1\""},
		{"bad nonblock", "conn a b\nset a nonblock yes\n", "x.trace:2:16: want on or off, found \"yes\""},
		{"bad shutdown", "conn a b\nshutdown a both\n", "x.trace:2:12: unknown shutdown \"both\" (want wr, rd or rdwr)"},
		{"junk after quote", "conn a b\nsend a \"x\"y\n", "x.trace:2:11: unexpected 'y' after closing quote"},
		{"literal as op", "\"x\"\n", "x.trace:1:1: expected an op, found a literal"},
		{"literal as socket", "conn a b\nsend \"a\" 1\n", "x.trace:2:6: expected socket name, found a literal"},
		{"uppercase name", "conn A b\n", "x.trace:1:6: bad socket name \"A\" (want a letter a-z, then letters a-z, digits 0-9 or _, like a1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.trace", []byte(c.src))
			if err == nil {
				t.Fatalf("no error for %q", c.src)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestCommentsAndBlankLines(t *testing.T) {
	src := "  # leading comment\n\nconn a b # trailing\n\t\nsend a \"#x\" # c\n#\n"
	tr, err := Parse("c.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Ops) != 2 || string(tr.Ops[1].Data) != "#x" || tr.Ops[1].Pos.Line != 5 {
		t.Fatalf("ops %+v", tr.Ops)
	}
}

func TestProfiles(t *testing.T) {
	for in, want := range map[string]string{
		"linux-6.1":                       "linux-6.1",
		"splice-copy":                     "linux-6.18+splice-copy",
		"linux-6.1+loopback-splice":       "linux-6.1+loopback-splice",
		"loopback-splice+splice-zerocopy": "linux-6.18+loopback-splice+splice-zerocopy",
	} {
		p, err := ParseProfile(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseProfile(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "linux-5.4", "splice-copy+linux-6.1", "splice-copy+splice-copy", "linux-6.1+linux-6.18"} {
		if _, err := ParseProfile(bad); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("ParseProfile(%q) err = %v", bad, err)
		}
	}
}
