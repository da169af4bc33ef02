package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

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
