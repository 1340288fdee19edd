package trace

import "testing"

func TestPollWord(t *testing.T) {
	for mask, want := range map[uint32]string{
		0:                            "0",
		PollIn:                       "IN",
		PollErr | PollIn | PollOut:   "IN|OUT|ERR",
		PollRdHup | PollHup | PollIn: "IN|RDHUP|HUP",
		PollIn | PollOut | PollRdHup | PollHup | PollErr | 0x40: "IN|OUT|RDHUP|HUP|ERR",
	} {
		if got := PollWord(mask); got != want {
			t.Errorf("PollWord(%#x) = %q, want %q", mask, got, want)
		}
	}
}
