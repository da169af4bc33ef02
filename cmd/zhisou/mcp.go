package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zhisou/zhisou/index/analysis"
	"github.com/zhisou/zhisou/internal/mcpapi"
)

const mcpUsage = `usage: zhisou mcp [-addr HOST:PORT] [-api-key KEY]

Serves zhisou's tools to an agent over MCP (Model Context Protocol) on
stdin/stdout: list_collections, search (hits with their evidence),
get_outline (a document's headings) and read_section (the text under a
heading). The tools ask the server at -addr, with the API key in -api-key or
ZHISOU_API_KEY when it needs one. Configure your agent to run this command;
for example, in a client's MCP settings:

  {"command": "/path/to/zhisou", "args": ["mcp", "-addr", "127.0.0.1:7700"]}

A running 'zhisou serve' also serves the same tools over MCP's streamable
HTTP transport at http://HOST:7701/mcp (its -http-addr).

`

func cmdMCP(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou mcp", flag.ContinueOnError)
	var c common
	c.register(fs)
	fs.Usage = func() { fmt.Fprint(env.stderr, mcpUsage); fs.PrintDefaults() }
	if err := env.parse(fs, args); err != nil {
		return err
	}
	conn, client, err := c.dial()
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	defer conn.Close()
	s := mcpapi.NewServer(mcpapi.Client(client), nil, version())
	if err := s.Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		return fmt.Errorf("mcp: %w", err)
	}
	return nil
}

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
