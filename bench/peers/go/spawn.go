// spawn: start N trivial goroutines (each only signals a sync.WaitGroup), all of them first, then
// wait for all of them. Reported: ns per goroutine = total/N, where total covers spawning and waiting.
// Validation: Wait returns only after exactly N Done calls (one per goroutine; an extra one panics).
package main

import (
	"sync"
	"time"
)

func runSpawn(n int64) (result, error) {
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	total := time.Since(start)

	return result{total, perOp(total, n)}, nil
}
