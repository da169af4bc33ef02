package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
	retrievalv1 "github.com/zhisou/zhisou/proto/retrieval/v1"
)

const keysUsage = `usage: zhisou keys create -name NAME -role read|write|admin -collections A,B|'*' [-store DIR | -addr HOST:PORT]
       zhisou keys list [-store DIR | -addr HOST:PORT]
       zhisou keys revoke [-store DIR | -addr HOST:PORT] ID
       zhisou keys token

API keys for the server. A key is printed once, when it is created; the store
keeps only a hash of it. Roles: read (search, read documents, collections and
lexicons), write (also write documents and lexicons), admin (also create and
delete collections, and read /metrics). -collections lists the collections the
key may reach ('*': all). Once a store has a key, its server asks every call
for one (clients send it with -api-key or ZHISOU_API_KEY). Keys are records
in the write log, like documents.

With -addr the commands ask a running server, with an admin key that reaches
every collection ('*') in -api-key or ZHISOU_API_KEY (a loopback server that
has no key yet takes the first one without). Otherwise they open the data
directory, so run them while no server holds it.

keys token prints a new key token and stores nothing: give it to every node
as serve's -admin-key (better ZHISOU_ADMIN_KEY), which makes it the first
admin key of a store that never had one. For containers and clusters, where
no one can run keys create before the servers are up.

`

func cmdKeys(ctx context.Context, env *cmdEnv, args []string) error {
	verb, err := subcommand(env, args, keysUsage, "create", "list", "revoke", "token")
	if err != nil {
		return err
	}
	if verb == "token" {
		tok, err := store.NewKeyToken()
		if err != nil {
			return fmt.Errorf("keys token: %w", err)
		}
		fmt.Fprintln(env.stdout, tok)
		return nil
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
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	if verb == "revoke" && fs.NArg() != 1 {
		return fmt.Errorf("keys revoke: want one key id (see zhisou keys list), got %d arguments", fs.NArg())
	}
	var admin keyAdmin
	if isSet(fs, "addr") {
		conn, client, err := c.dial()
		if err != nil {
			return fmt.Errorf("keys %s: %w", verb, err)
		}
		defer conn.Close()
		admin = remoteKeys{ctx: ctx, c: client}
	} else {
		st, err := env.openStore(ctx, &c, logger)
		if err != nil {
			return fmt.Errorf("keys %s: %w", verb, err)
		}
		defer st.Close()
		admin = st
	}
	switch verb {
	case "create":
		var list []string
		for _, s := range strings.Split(*colls, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		token, k, err := admin.CreateKey(*name, *role, list)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		fmt.Fprintf(env.stderr, "created key %s (%s, role %s, collections %s); it is shown only now:\n", k.ID, k.Name, k.Role, strings.Join(k.Collections, ","))
		fmt.Fprintln(env.stdout, token)
	case "list":
		keys, err := admin.Keys()
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
		k, err := admin.RevokeKey(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		fmt.Fprintf(env.stderr, "revoked key %s (%s)\n", k.ID, k.Name)
	}
	return nil
}

// keyAdmin manages keys: a local store, or a server (remoteKeys).
type keyAdmin interface {
	CreateKey(name, role string, collections []string) (string, index.APIKey, error)
	Keys() ([]index.APIKey, error)
	RevokeKey(id string) (index.APIKey, error)
}

type remoteKeys struct {
	ctx context.Context
	c   retrievalv1.RetrievalServiceClient
}

func (r remoteKeys) CreateKey(name, role string, collections []string) (string, index.APIKey, error) {
	resp, err := r.c.CreateKey(r.ctx, &retrievalv1.CreateKeyRequest{Name: name, Role: role, Collections: collections})
	if err != nil {
		return "", index.APIKey{}, err
	}
	return resp.GetToken(), keyFromProto(resp.GetKey()), nil
}

func (r remoteKeys) Keys() ([]index.APIKey, error) {
	resp, err := r.c.ListKeys(r.ctx, &retrievalv1.ListKeysRequest{})
	if err != nil {
		return nil, err
	}
	var out []index.APIKey
	for _, k := range resp.GetKeys() {
		out = append(out, keyFromProto(k))
	}
	return out, nil
}

func (r remoteKeys) RevokeKey(id string) (index.APIKey, error) {
	resp, err := r.c.RevokeKey(r.ctx, &retrievalv1.RevokeKeyRequest{KeyId: id})
	if err != nil {
		return index.APIKey{}, err
	}
	return keyFromProto(resp.GetKey()), nil
}

func keyFromProto(k *retrievalv1.ApiKey) index.APIKey {
	out := index.APIKey{ID: k.GetId(), Name: k.GetName(), Role: k.GetRole(), Collections: k.GetCollections()}
	out.Created, _ = time.Parse(time.RFC3339, k.GetCreateTime()) // the server writes RFC 3339
	if t, err := time.Parse(time.RFC3339, k.GetRevokeTime()); err == nil {
		out.Revoked = &t
	}
	return out
}
