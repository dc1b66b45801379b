package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/tcxgo/tcx/topology"
)

// serveTimers fires the bpf_timers of every loaded object when they come
// due while the datapath runs: at the end of the run that finds one due
// (between frames), or from the object's timer goroutine when no frame
// comes. The returned stop ends the goroutines and waits for them.
func serveTimers(ctx context.Context, built *topology.Built, stderr io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, coll := range built.Objects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = coll.ServeTimers(ctx, 0, func(err error) { // it ends with ctx
				mu.Lock()
				fmt.Fprintf(stderr, "tcx: object %s: %v\n", name, err)
				mu.Unlock()
			})
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
