package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/zhisou/zhisou/index/analysis"
)

// version is the module version the binary was built from ("devel" for a
// build from a checkout), with its VCS revision when Go recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version // a pseudo-version with the commit when Go stamped one
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && !strings.Contains(v, s.Value[:12]) {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

func cmdVersion(_ context.Context, env *cmdEnv, _ []string) error {
	dict := analysis.DictionaryHash()
	if dict == "" {
		dict = "gse's own loader"
	}
	fmt.Fprintf(env.stdout, "zhisou %s (%s, %s/%s)\ngse %s, dictionary sha256:%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, analysis.GseVersion, dict)
	return nil
}
