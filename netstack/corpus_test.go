package netstack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/netstack"
	"github.com/splicecheck/splicecheck/trace"
)

func TestCorpusExplore(t *testing.T) {
	files, _ := filepath.Glob("../testdata/traces/kernel/*.trace")
	b, err := model.NewWithConfig(model.Config{Name: "netstack", Transport: netstack.TransportFactory(netstack.TransportOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	only := os.Getenv("ONLY")
	agree := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".trace")
		if only != "" && !strings.Contains(name, only) {
			continue
		}
		src, _ := os.ReadFile(f)
		tr, err := trace.Parse(f, src)
		if err != nil {
			t.Fatal(err)
		}
		g, err := trace.ReadGolden(filepath.Join("../testdata/golden/linux-6.18", name+".out"))
		if err != nil {
			t.Fatal(err)
		}
		obs, err := trace.Run(context.Background(), b, tr, trace.Options{Profile: "linux-6.18"})
		if err != nil {
			t.Logf("%s: ERROR %v", name, err)
			continue
		}
		d := trace.DiffGolden(obs, g)
		if len(d) == 0 {
			agree++
			t.Logf("%s: agree", name)
			continue
		}
		var s []string
		for _, x := range d {
			s = append(s, x.String())
		}
		t.Logf("%s: DIVERGE\n%s", name, strings.Join(s, "\n"))
	}
	t.Logf("agree %d", agree)
}
