package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zhisou/zhisou/index"
)

// writeDepth is how many batches Run writes at once.
const writeDepth = 2

// batchWriter sends batches to a sink, up to depth of them at once: a store
// analyses a batch outside its write lock, so the next batch is segmented
// (and the next files read) while this one is written. Batches in flight
// together hold different documents: a batch that shares a document id with
// one in flight waits for it, so the later write of a document still wins.
type batchWriter struct {
	ctx        context.Context
	sink       Sink
	collection string
	slots      chan struct{}
	wg         sync.WaitGroup

	flights []flight // used by the sending goroutine only

	mu  sync.Mutex
	res Report // outcomes and failed inputs (Added … Stale, Failed)
	err error  // the first failure of the sink itself
}

type flight struct {
	ids  map[string]bool
	done chan struct{}
}

func newBatchWriter(ctx context.Context, sink Sink, collection string, depth int) *batchWriter {
	return &batchWriter{ctx: ctx, sink: sink, collection: collection, slots: make(chan struct{}, max(depth, 1))}
}

// send writes batch, in the background once a slot is free. It returns the
// sink's failure, once one of the earlier batches has met one.
func (w *batchWriter) send(batch []Input) error {
	if len(batch) == 0 {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	if err := w.failure(); err != nil {
		<-w.slots
		return err
	}
	live := w.flights[:0]
	for _, f := range w.flights {
		select {
		case <-f.done:
			continue
		default:
		}
		for i := range batch {
			if f.ids[batch[i].ID] {
				<-f.done
				break
			}
		}
		live = append(live, f)
	}
	f := flight{ids: make(map[string]bool, len(batch)), done: make(chan struct{})}
	for i := range batch {
		f.ids[batch[i].ID] = true
	}
	w.flights = append(live, f)
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		defer close(f.done)
		w.write(batch)
	})
	return nil
}

// busyWaits are the pauses before Run resends a batch that a busy sink
// refused (ErrSinkBusy); after the last, the run stops.
var busyWaits = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// upsert sends a batch, again after each of busyWaits while the sink is busy.
func (w *batchWriter) upsert(batch []Input) ([]index.Outcome, error) {
	for i := 0; ; i++ {
		outs, err := w.sink.Upsert(w.ctx, w.collection, batch)
		if !errors.Is(err, ErrSinkBusy) || i == len(busyWaits) {
			return outs, err
		}
		select {
		case <-time.After(busyWaits[i]):
		case <-w.ctx.Done():
			return nil, w.ctx.Err()
		}
	}
}

// write sends one batch; when the sink refuses it for a bad input it cannot
// name, the inputs are sent one by one to find it.
func (w *batchWriter) write(batch []Input) {
	outs, err := w.upsert(batch)
	var failed []FileError
	if err != nil && len(batch) > 1 && !isSinkFailure(err) {
		outs, err = nil, nil
		for _, in := range batch {
			o, err1 := w.upsert([]Input{in})
			if err1 != nil {
				if isSinkFailure(err1) {
					err = err1
					break
				}
				failed = append(failed, FileError{in.Source, err1})
				continue
			}
			outs = append(outs, o...)
		}
	} else if err != nil && !isSinkFailure(err) {
		failed = append(failed, FileError{batch[0].Source, err})
		err = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	w.res.Failed = append(w.res.Failed, failed...)
	for _, o := range outs {
		switch o {
		case index.Added:
			w.res.Added++
		case index.Updated:
			w.res.Updated++
		case index.Unchanged:
			w.res.Unchanged++
		case index.Stale:
			w.res.Stale++
		}
	}
}

func (w *batchWriter) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait waits for every batch, adds their outcomes to rep, and returns the
// sink's failure, if any.
func (w *batchWriter) wait(rep *Report) error {
	w.wg.Wait()
	rep.Added += w.res.Added
	rep.Updated += w.res.Updated
	rep.Unchanged += w.res.Unchanged
	rep.Stale += w.res.Stale
	rep.Failed = append(rep.Failed, w.res.Failed...)
	return w.err
}
