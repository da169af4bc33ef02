package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zhisou/zhisou/index"
)

const keysUsage = `usage: zhisou keys create -name NAME -role read|write|admin -collections A,B|'*' [-store DIR]
       zhisou keys list [-store DIR]
       zhisou keys revoke [-store DIR] ID

API keys for the server. A key is printed once, when it is created; the store
keeps only a hash of it. Roles: read (search, read documents, collections and
lexicons), write (also write documents and lexicons), admin (also create and
delete collections, and read /metrics). -collections lists the collections the
key may reach ('*': all). Once a store has a key, its server asks every call
for one (clients send it with -api-key or ZHISOU_API_KEY). The commands open
the data directory, so run them while no server holds it.

`

func cmdKeys(ctx context.Context, env *cmdEnv, args []string) error {
	verb, err := subcommand(env, args, keysUsage, "create", "list", "revoke")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("zhisou keys "+verb, flag.ContinueOnError)
	var c common
	c.register(fs)
	name := fs.String("name", "", "create: what the key is for (an app, a person)")
	role := fs.String("role", index.RoleRead, "create: read, write or admin")
	colls := fs.String("collections", "", "create: comma-separated collections the key may reach, or '*' for all")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, keysUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args[1:]); err != nil {
		return err
	}
	logger, err := env.logger(c.logLevel)
	if err != nil {
		return err
	}
	if verb == "revoke" && fs.NArg() != 1 {
		return fmt.Errorf("keys revoke: want one key id (see zhisou keys list), got %d arguments", fs.NArg())
	}
	st, err := env.openStore(ctx, &c, logger)
	if err != nil {
		return fmt.Errorf("keys %s: %w", verb, err)
	}
	defer st.Close()
	switch verb {
	case "create":
		var list []string
		for _, s := range strings.Split(*colls, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		token, k, err := st.CreateKey(*name, *role, list)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(env.stderr, "created key %s (%s, role %s, collections %s); it is shown only now:\n", k.ID, k.Name, k.Role, strings.Join(k.Collections, ","))
		fmt.Fprintln(env.stdout, token)
	case "list":
		keys, err := st.Keys()
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCOLLECTIONS\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.Revoked != nil {
				revoked = k.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, strings.Join(k.Collections, ","), k.Created.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		k, err := st.RevokeKey(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(env.stderr, "revoked key %s (%s)\n", k.ID, k.Name)
	}
	return nil
}
