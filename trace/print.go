package trace

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// String renders the op in canonical form, with its `@T ` prefix when it
// runs outside thread main. Observations use this text.
func (o *Op) String() string {
	var b strings.Builder
	b.Grow(48) // most ops: one allocation
	if o.Thread != "" {
		b.WriteString("@" + o.Thread + " ")
	}
	b.WriteString(o.Kind.String())
	// w writes each argument after a space, as %v would (observations
	// render every op, so this avoids fmt on the model's hot path).
	w := func(args ...any) {
		for _, a := range args {
			b.WriteByte(' ')
			switch a := a.(type) {
			case string:
				b.WriteString(a)
			case int64:
				b.WriteString(strconv.FormatInt(a, 10))
			case fmt.Stringer:
				b.WriteString(a.String())
			default:
				fmt.Fprint(&b, a)
			}
		}
	}
	switch o.Kind {
	case OpConn, OpPair, OpIOCopy:
		w(o.A, o.B)
	case OpMap:
		w(o.Map, o.MapType, o.Size)
	case OpProg:
		w(o.Map)
		writeProg(&b, o.Prog)
	case OpInsert:
		w(o.Map, o.Key, o.A)
	case OpDelete:
		w(o.Map, o.Key)
	case OpSend:
		w(o.A)
		switch o.Form {
		case DataText:
			b.WriteString(" " + strconv.Quote(string(o.Data)))
		case DataHex:
			fmt.Fprintf(&b, ` x"%x"`, o.Data)
		default:
			w(o.Size)
		}
	case OpRecv, OpSplice, OpPipe:
		w(o.A, o.Size)
	case OpFIONREAD, OpPoll, OpState, OpClose:
		w(o.A)
	case OpSosplice:
		w(o.A, o.B)
		if o.Size != 0 {
			b.WriteString(" max")
			w(o.Size)
		}
		if o.Key != 0 {
			b.WriteString(" idle")
			w(o.Key)
		}
	case OpUnsplice, OpGetsplice:
		w(o.A)
	case OpErrqueue:
		w(o.A)
		if o.Size != 1 {
			w(o.Size)
		}
	case OpShutdown:
		w(o.A, o.How)
	case OpSet:
		w(o.A, o.Opt)
		if o.Opt == OptNonblock || o.Opt == OptZerocopy {
			w(map[bool]string{true: "on", false: "off"}[o.Size != 0])
		} else {
			w(o.Size)
		}
	case OpSleep:
		w(o.Size)
	case OpJoin:
		w(o.Target)
	}
	for _, fw := range flagWords {
		if o.Flags&fw.f != 0 {
			b.WriteString(" " + fw.word)
		}
	}
	return b.String()
}

func writeProg(b *strings.Builder, p *Prog) {
	fmt.Fprintf(b, " %s", p.Type)
	switch p.Verdict {
	case VerdictPass:
		b.WriteString(" pass")
	case VerdictDrop:
		b.WriteString(" drop")
	case VerdictRedirect:
		dir := "egress"
		if p.Ingress {
			dir = "ingress"
		}
		fmt.Fprintf(b, " redirect %d %s", p.Key, dir)
	}
	if p.HasApply {
		fmt.Fprintf(b, " apply %d", p.Apply)
	}
	if p.HasCork {
		fmt.Fprintf(b, " cork %d", p.Cork)
	}
	switch {
	case p.Parser == ParserAll:
		b.WriteString(" parser all")
	case p.Parser > 0:
		fmt.Fprintf(b, " parser %d", p.Parser)
	}
}

// Format renders the whole trace canonically: header directives, then one op
// per line. Comments and blank lines are not kept, so positions change, but
// Parse(Format(t)) equals t up to positions (see Equal).
func (t *Trace) Format() string {
	var b strings.Builder
	if t.Profile != "" {
		fmt.Fprintf(&b, "profile %s\n", t.Profile)
	}
	if s := t.Schedule; s != nil {
		switch {
		case s.Strategy == StrategyRandom:
			fmt.Fprintf(&b, "schedule random %d\n", s.Seed)
		case s.Strategy == StrategyPCT:
			fmt.Fprintf(&b, "schedule pct %d %d\n", s.Depth, s.Seed)
		case s.Strategy == StrategyPicks:
			b.WriteString("schedule picks")
			for _, v := range s.Picks {
				fmt.Fprintf(&b, " %d", v)
			}
			b.WriteByte('\n')
		case s.HasSeed:
			fmt.Fprintf(&b, "schedule %d\n", s.Seed)
		default:
			fmt.Fprintf(&b, "schedule %s\n", strings.Join(s.Threads, " "))
		}
	}
	for i := range t.Ops {
		b.WriteString(t.Ops[i].String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Equal reports whether two traces have the same directives and ops,
// ignoring file names and positions.
func Equal(a, b *Trace) bool {
	if a.Profile != b.Profile || len(a.Ops) != len(b.Ops) {
		return false
	}
	if (a.Schedule == nil) != (b.Schedule == nil) {
		return false
	}
	if a.Schedule != nil {
		sa, sb := a.Schedule, b.Schedule
		if sa.HasSeed != sb.HasSeed || sa.Seed != sb.Seed || strings.Join(sa.Threads, " ") != strings.Join(sb.Threads, " ") ||
			sa.Strategy != sb.Strategy || sa.Depth != sb.Depth || fmt.Sprint(sa.Picks) != fmt.Sprint(sb.Picks) {
			return false
		}
	}
	for i := range a.Ops {
		if !opEqual(&a.Ops[i], &b.Ops[i]) {
			return false
		}
	}
	return true
}

func opEqual(a, b *Op) bool {
	x, y := *a, *b
	x.Pos, y.Pos = Pos{}, Pos{}
	return reflect.DeepEqual(x, y)
}
