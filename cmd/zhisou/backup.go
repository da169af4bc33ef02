package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/zhisou/zhisou/index/store"
	"github.com/zhisou/zhisou/internal/service"
)

const backupUsage = `usage: zhisou backup -out FILE [-store DIR | -from http://ADMIN-ADDR]
       zhisou restore -in FILE -store NEWDIR

backup writes a consistent copy of a data directory's Badger (documents,
chunks, lexicons, API keys, the write log and its position) with a checksum.
With -store it opens the directory (no server may hold it); with -from it asks
a running server, at its -metrics-addr, for one (an admin key when the server
has keys: -api-key or ZHISOU_API_KEY). restore loads a backup into a new, empty
directory; the server started on it rebuilds the bleve indexes. A backup that
is cut short or damaged is refused.

`

func cmdBackup(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou backup", flag.ContinueOnError)
	var c common
	c.register(fs)
	out := fs.String("out", "", "file to write the backup to")
	from := fs.String("from", "", "a running server's metrics/admin address (http://HOST:PORT) to take the backup from")
	fs.Usage = func() { fmt.Fprint(env.stderr, backupUsage); fs.PrintDefaults() }
	if err := env.parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: -out FILE is required")
	}
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var pos uint64
	if *from != "" {
		pos, err = backupFrom(ctx, *from, c.apiKey, f)
	} else {
		pos, err = backupLocal(ctx, env, &c, f)
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(env.stderr, "backup of log position %d written to %s\n", pos, *out)
	return nil
}

func backupLocal(ctx context.Context, env *cmdEnv, c *common, w io.Writer) (uint64, error) {
	logger, err := env.logger(c)
	if err != nil {
		return 0, err
	}
	st, err := env.openStore(ctx, c, logger)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	info, err := st.Backup(w)
	return info.Pos, err
}

func backupFrom(ctx context.Context, base, apiKey string, w io.Writer) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/backup", nil)
	if err != nil {
		return 0, err
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return 0, fmt.Errorf("%s/backup: %s: %s", base, resp.Status, msg)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, err
	}
	return strconv.ParseUint(resp.Header.Get("Zhisou-Position"), 10, 64)
}

func cmdRestore(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou restore", flag.ContinueOnError)
	var c common
	c.register(fs)
	in := fs.String("in", "", "the backup file")
	fs.Usage = func() { fmt.Fprint(env.stderr, backupUsage); fs.PrintDefaults() }
	if err := env.parse(fs, args); err != nil {
		return err
	}
	if *in == "" || !isSet(fs, "store") {
		return errors.New("restore: -in FILE and -store NEWDIR are required")
	}
	if err := store.Restore(c.store, *in); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "restored %s into %s; start the server on it (it rebuilds the bleve indexes), then check with zhisou verify\n", *in, c.store)
	return nil
}

// backupHandler streams a backup to an admin (see adminOnly). Without API
// keys it serves loopback callers only: a backup holds every document.
func backupHandler(st *store.Store, svc *service.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !svc.AuthRequired() {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				http.Error(w, "backups are served to loopback callers only while the store has no API keys", http.StatusForbidden)
				return
			}
		}
		// The position header goes first; the backup follows it.
		s, ok := st.Position()
		if !ok {
			http.Error(w, "store closed", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Zhisou-Position", strconv.FormatUint(s, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := st.Backup(w); err != nil {
			panic(http.ErrAbortHandler) // the client sees a cut stream, which restore refuses
		}
	})
}
