package ingest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhisou/zhisou/index"
)

func TestProbeAny(t *testing.T) {
	for _, f := range filepath.SplitList(os.Getenv("F")) {
		ins, err := readFile(filepath.Dir(f), f, 1<<30)
		if err != nil {
			fmt.Println(f, err)
			continue
		}
		d, err := Build(ins[0], ChunkOptions{})
		fmt.Println("==", f, "title:", d.Title, err, len(d.Chunks))
		for _, c := range d.Chunks {
			r := []rune(c.Text)
			fmt.Printf("  [%s] %s\n", index.HeadingString(c.HeadingPath), string(r[:min(len(r), 30)]))
		}
	}
}
