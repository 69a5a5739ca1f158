// fanin: 1000 producer goroutines send int64 values into one channel of capacity 1024; one consumer
// (the main goroutine) receives N values and sums them. Producer p sends p, p+1000, p+2000, ... below
// N, so each sends N/1000 messages when 1000 divides N, every value 0..N-1 is sent exactly once, and
// the sum must be N*(N-1)/2. Timing covers spawning the producers and consuming all N messages.
// Reported: ns per message = total/N.
package main

import (
	"fmt"
	"sync"
	"time"
)

const (
	faninProducers = 1000
	faninCapacity  = 1024
)

func runFanin(n int64) (result, error) {
	ch := make(chan int64, faninCapacity)
	var wg sync.WaitGroup
	wg.Add(faninProducers)

	start := time.Now()
	for p := int64(0); p < faninProducers; p++ {
		go func(p int64) {
			defer wg.Done()
			for v := p; v < n; v += faninProducers {
				ch <- v
			}
		}(p)
	}
	var sum int64
	for i := int64(0); i < n; i++ {
		sum += <-ch
	}
	total := time.Since(start)
	wg.Wait()

	if want := n * (n - 1) / 2; sum != want {
		return result{}, fmt.Errorf("sum = %d, want %d", sum, want)
	}
	return result{total, perOp(total, n)}, nil
}
