// pipeline: S dataflow stages (default 4, --stages S) run as goroutines joined by buffered
// `chan int64` of capacity 64, one channel per pair of consecutive stages. Stage 1 (the source)
// sends the values 1..N in order and closes its channel; stages 2..S-1 each map every value they
// receive and pass it on (even-numbered stages v -> v*3, odd-numbered v -> v+1, so the default S=4
// is source, *3, +1, sink) and close their output when their input is closed; stage S (the sink)
// sums what it receives and hands the sum to the main goroutine once its input is closed. The sum
// is checked against the same maps applied to 1..N in a plain loop (for S=4: 3N(N+1)/2 + N), with
// wrapping int64 arithmetic on both sides. Timing covers starting the stages until the main
// goroutine has the sink's sum. Reported: ns per item = total/N.
package main

import (
	"fmt"
	"time"
)

const pipelineCapacity = 64

// pipelineStages is the stage count S (>= 2), set by --stages; only pipeline uses it.
var pipelineStages int64 = 4

// pipelineMap applies stage k's map (2 <= k <= S-1) to v.
func pipelineMap(k int64, v int64) int64 {
	if k%2 == 0 {
		return v * 3
	}
	return v + 1
}

func pipelineStage(k int64, in <-chan int64, out chan<- int64) {
	if k%2 == 0 {
		for v := range in {
			out <- v * 3
		}
	} else {
		for v := range in {
			out <- v + 1
		}
	}
	close(out)
}

func runPipeline(n int64) (result, error) {
	s := pipelineStages
	chans := make([]chan int64, s-1) // chans[i] joins stage i+1 to stage i+2
	for i := range chans {
		chans[i] = make(chan int64, pipelineCapacity)
	}
	sum := make(chan int64)

	start := time.Now()
	go func(out chan<- int64) {
		for v := int64(1); v <= n; v++ {
			out <- v
		}
		close(out)
	}(chans[0])
	for k := int64(2); k <= s-1; k++ {
		go pipelineStage(k, chans[k-2], chans[k-1])
	}
	go func(in <-chan int64) {
		var acc int64
		for v := range in {
			acc += v
		}
		sum <- acc
	}(chans[s-2])
	got := <-sum
	total := time.Since(start)

	var want int64
	for v := int64(1); v <= n; v++ {
		x := v
		for k := int64(2); k <= s-1; k++ {
			x = pipelineMap(k, x)
		}
		want += x
	}
	if got != want {
		return result{}, fmt.Errorf("%d stages: sum = %d, want %d", s, got, want)
	}
	return result{total, perOp(total, n)}, nil
}
