// Command mirrorgen writes model/internal/linux/coverage_table.go: the
// registry of the model functions that mirror kernel functions (see
// package mirrors for the rule), one Fn constant each, with its Go name,
// kernel name and file. Run it with `go generate ./model/internal/linux`
// after adding, removing or renaming a mirrored function; then put the reach call the registry
// test asks for as the function's first statement (-fix inserts it).
//
//	mirrorgen [-list] [-fix] [-o FILE] [DIR]
package main

import (
	"flag"
	"fmt"
	"go/token"
	"log"
	"os"

	"github.com/splicecheck/splicecheck/model/internal/mirrors"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("mirrorgen: ")
	list := flag.Bool("list", false, "print the mirrored functions instead of writing the table")
	fixCalls := flag.Bool("fix", false, "also insert the missing reach calls into DIR's mirrored functions")
	out := flag.String("o", "coverage_table.go", "output file")
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	fset := token.NewFileSet()
	fns, err := mirrors.Scan(fset, dir)
	if err != nil {
		log.Fatal(err)
	}
	if *list {
		for _, f := range fns {
			fmt.Printf("%-20s %-36s %-32s %s\n", f.File, f.Qual(), f.Kernel, f.Const())
		}
		return
	}
	src, err := mirrors.Table(fns)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	if *fixCalls {
		if err := fix(fset, dir, fns); err != nil {
			log.Fatal(err)
		}
	}
}
