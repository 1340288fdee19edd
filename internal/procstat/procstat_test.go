package procstat

import "testing"

func TestParse(t *testing.T) {
	l, ok := Parse([]byte("62 (kworker/0:1 (x) y) R 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 4411"))
	if !ok || string(l.Comm) != "kworker/0:1 (x) y" || l.State() != 'R' || string(l.Field(4)) != "2" || string(l.Field(22)) != "4411" || l.Field(23) != nil {
		t.Errorf("Parse = %q %q %q %q %q, %v", l.Comm, l.State(), l.Field(4), l.Field(22), l.Field(23), ok)
	}
	if _, ok := Parse([]byte("bad")); ok {
		t.Error("a line without a command name parsed")
	}
	if l, _ := Parse([]byte("17 (kworker/0:1)")); l.State() != 0 || l.Field(3) != nil {
		t.Errorf("a line without fields: state %q, field 3 %q", l.State(), l.Field(3))
	}
}
