package linux

import (
	"fmt"
	"sort"
)

// Mutation is a deliberate bug planted in the model: a named re-creation
// of a real kernel bug or of a defect a property campaign must catch (the
// bug zoo). A Mutation is off unless a run selects it (Config.Mutations);
// the code it changes tests k.mutated(m) at the one place it differs.
type Mutation struct {
	Name string
	Doc  string // one line: what the bug is and where it lives
}

var mutations = map[string]*Mutation{}

// registerMutation declares a mutation. Call it from a package-level var
// in the file whose code the mutation changes; a duplicate name panics.
func registerMutation(name, doc string) *Mutation {
	if _, dup := mutations[name]; dup {
		panic("model: mutation " + name + " registered twice")
	}
	m := &Mutation{Name: name, Doc: doc}
	mutations[name] = m
	return m
}

// Mutations lists every mutation, sorted by name.
func Mutations() []Mutation {
	out := make([]Mutation, 0, len(mutations))
	for _, m := range mutations {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// lookupMutations resolves names; an unknown one wraps errMutation.
func lookupMutations(names []string) (map[*Mutation]bool, error) {
	set := map[*Mutation]bool{}
	for _, n := range names {
		m, ok := mutations[n]
		if !ok {
			return nil, fmt.Errorf("%w %q", errMutation, n)
		}
		set[m] = true
	}
	return set, nil
}

// mutated reports whether the run planted m.
func (k *kernel) mutated(m *Mutation) bool { return k.mut[m] }
