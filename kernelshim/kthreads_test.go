package kernelshim

import "testing"

// The settle waits for the per-CPU kworkers and ksoftirqd only: other
// kernel threads, other pools and user processes that borrow the names
// do not hold it up.
func TestIsKworker(t *testing.T) {
	for stat, want := range map[string]bool{
		"62 (kworker/0:1-events) R 2 0 0":           true,
		"8895 (kworker/1:1) I 2 0 0":                true,
		"14 (ksoftirqd/0) S 2 0 0":                  true,
		"63 (kworker/0:1H-events_highpri) I 2 0 0":  false,
		"70 (kworker/u8:15-events_unbound) I 2 0 0": false,
		"71 (kworker/R-mm_percpu_wq) I 2 0 0":       false,
		"900 (kworker/0:1) R 1 900 900":             false, // a user process
		"15 (rcu_preempt) I 2 0 0":                  false,
		"16 (migration/0) S 2 0 0":                  false,
		"bad":                                       false,
		"17 (kworker/0:1)":                          false,
	} {
		if got := isKworker([]byte(stat)); got != want {
			t.Errorf("isKworker(%q) = %v, want %v", stat, got, want)
		}
	}
	if s := taskStateOf([]byte("62 (kworker/0:1 (x)) R 2 0")); s != 'R' {
		t.Errorf("taskStateOf = %q, want R", s)
	}
}
