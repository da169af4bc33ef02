package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/zhisou/zhisou/index"
	"github.com/zhisou/zhisou/index/store"
)

const verifyUsage = `usage: zhisou verify [-store DIR] [-collection NAME] [-repair]

Checks a data directory while no server holds it: opening it checks Badger's
table files, the write log's end and the state file (a damaged directory is
refused with exit status 3); then it reads the whole write log, checking
every record's checksum; then, for each collection (or -collection), that its bleve index
holds exactly the chunks Badger holds, that the statistics, the keyword graph
and every chunk's analysis agree with the stored documents; and it lists the
log records set aside because they could not be applied. Exit status 0 when
all is well, 3 when something differs.

-repair rebuilds the bleve index of each collection that differs from Badger
(Badger is the truth; the index is derived from it) and verifies it again.

`

func cmdVerify(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou verify", flag.ContinueOnError)
	var c common
	c.register(fs)
	repair := fs.Bool("repair", false, "rebuild the bleve index of each collection that differs from Badger")
	fs.Usage = func() {
		fmt.Fprint(env.stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := env.parse(fs, args); err != nil {
		return err
	}
	only := ""
	if isSet(fs, "collection") {
		only = c.collection
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	st, err := env.openStore(ctx, &c, logger)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if info, err := st.CheckLog(); err != nil {
		fmt.Fprintf(env.stdout, "FAIL write log %s: %v\n", info.Dir, err)
		return errors.Join(fmt.Errorf("verify: %w", err), st.Close())
	} else {
		fmt.Fprintf(env.stdout, "ok   write log %s: records %d to %d, %d segments, %.1f MiB\n",
			info.Dir, info.First, info.Last, info.Segments, float64(info.Bytes)/(1<<20))
	}
	bad, err := verifyStore(ctx, env, st, only)
	if err == nil && len(bad) > 0 && *repair {
		if err = st.Close(); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		for _, name := range bad {
			fmt.Fprintf(env.stdout, "repair %s: rebuilding its bleve index from Badger\n", name)
			if err := os.RemoveAll(filepath.Join(c.store, "bleve", name)); err != nil {
				return fmt.Errorf("verify: repair %s: %w", name, err)
			}
		}
		if st, err = env.openStore(ctx, &c, logger); err != nil { // rebuilds the removed indexes
			return fmt.Errorf("verify: %w", err)
		}
		bad, err = verifyStore(ctx, env, st, only)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: verify: collections that differ: %v (zhisou verify -repair rebuilds their bleve indexes)", index.ErrDamaged, bad)
	}
	return nil
}

// verifyStore verifies the collections (only one when only is not "") and
// prints a line for each and for each quarantined record; it returns the
// collections that failed.
func verifyStore(ctx context.Context, env *cmdEnv, st *store.Store, only string) ([]string, error) {
	var bad []string
	for _, info := range st.Collections() {
		if only != "" && info.Name != only {
			continue
		}
		if err := st.Verify(ctx, info.Name); err != nil {
			fmt.Fprintf(env.stdout, "FAIL %s: %v\n", info.Name, err)
			bad = append(bad, info.Name)
			continue
		}
		fmt.Fprintf(env.stdout, "ok   %s: %d documents, %d chunks\n", info.Name, info.Stats.Docs, info.Stats.Chunks)
	}
	if only != "" && !slices.ContainsFunc(st.Collections(), func(i store.CollectionInfo) bool { return i.Name == only }) {
		return nil, fmt.Errorf("collection %q: %w", only, index.ErrNotFound)
	}
	q, err := st.Quarantined()
	if err != nil {
		return nil, err
	}
	for _, r := range q {
		fmt.Fprintf(env.stdout, "quarantined log record %d (%s %s %s, at %s): %s\n", r.Seq, r.Op, r.Collection, r.DocID, r.At.Format("2006-01-02 15:04:05"), r.Error)
	}
	return bad, nil
}

const repairUsage = `usage: zhisou repair -store DIR [-backup FILE]

Rebuilds a data directory whose Badger files are damaged (zhisou serve or
verify refused it with exit status 3), while no server holds it. The write
log has files of its own, checksummed, and keeps every record no backup
holds: repair moves the damaged badger/ and bleve/ directories aside (into
DIR/damaged-<time>/, kept for you to inspect and delete), restores -backup
FILE when given, replays every log record after the backup's position, and
rebuilds the bleve indexes. Without -backup the log must still start at its
first record (it does until a backup is taken). Check the result with
zhisou verify.

`

func cmdRepair(ctx context.Context, env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("zhisou repair", flag.ContinueOnError)
	var c common
	c.register(fs)
	backup := fs.String("backup", "", "the newest backup of this store (needed once the log was shortened by a backup)")
	fs.Usage = func() { fmt.Fprint(env.stderr, repairUsage); fs.PrintDefaults() }
	if err := env.parse(fs, args); err != nil {
		return err
	}
	if !isSet(fs, "store") {
		return errors.New("repair: -store DIR is required")
	}
	logger, err := env.logger(&c)
	if err != nil {
		return err
	}
	an, err := env.loadAnalyzer(&c, logger)
	if err != nil {
		return err
	}
	info, err := store.Repair(ctx, c.store, *backup, an, store.Options{Logger: logger})
	if err != nil {
		return err
	}
	if info.BackupPos > 0 {
		fmt.Fprintf(env.stdout, "restored the backup %s (position %d)\n", *backup, info.BackupPos)
	}
	fmt.Fprintf(env.stdout, "replayed the write log (records %d to %d); the store is at position %d\n", info.LogFirst, info.LogLast, info.Pos)
	for _, ci := range info.Collections {
		fmt.Fprintf(env.stdout, "  %s: %d documents, %d chunks\n", ci.Name, ci.Stats.Docs, ci.Stats.Chunks)
	}
	fmt.Fprintf(env.stdout, "the damaged files are in %s; check the store with zhisou verify, then delete them\n", info.Aside)
	return nil
}
