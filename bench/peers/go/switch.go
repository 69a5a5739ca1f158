// switch: two goroutines alternately yield with runtime.Gosched; N is the total number of yields
// (the first goroutine makes ceil(N/2), the second floor(N/2)). Reported: ns per switch = total/N.
//
// The contract runs it at 1 worker (GOMAXPROCS=1), where each Gosched hands the only P to the other
// goroutine, so every yield is one context switch. At more workers the goroutines may yield on
// different Ps and the number no longer measures a switch.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func runSwitch(n int64) (result, error) {
	counts := [2]int64{}
	quota := [2]int64{(n + 1) / 2, n / 2}
	var wg sync.WaitGroup
	wg.Add(2)

	start := time.Now()
	for g := 0; g < 2; g++ {
		go func(g int) {
			defer wg.Done()
			for i := int64(0); i < quota[g]; i++ {
				runtime.Gosched()
				counts[g]++ // each goroutine writes only its own slot
			}
		}(g)
	}
	wg.Wait()
	total := time.Since(start)

	if got := counts[0] + counts[1]; got != n {
		return result{}, fmt.Errorf("yields = %d, want %d", got, n)
	}
	return result{total, perOp(total, n)}, nil
}
