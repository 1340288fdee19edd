package fuzz

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

var scratchTrace = flag.String("st", "", "")
var scratchMut = flag.String("sm", "", "")

func TestScratchJudge(t *testing.T) {
	if *scratchTrace == "" {
		t.Skip()
	}
	src, _ := os.ReadFile(*scratchTrace)
	tr, err := trace.Parse(*scratchTrace, src)
	if err != nil {
		t.Fatal(err)
	}
	var muts []string
	if *scratchMut != "" {
		muts = strings.Split(*scratchMut, ",")
	}
	sut, err := NewCampaignModel(muts)
	if err != nil {
		t.Fatal(err)
	}
	r := runOne(context.Background(), sut, nil, tr)
	for i, o := range r.Obs {
		_ = i
		fmt.Println(o.String())
	}
	for _, p := range Properties {
		if v := p.Judge(r); v != nil {
			fmt.Printf("VIOLATION %s: %s %s\n", p.Name, v.Signature(), v.Error())
		}
	}
}
