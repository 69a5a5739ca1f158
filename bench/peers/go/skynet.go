// skynet: a 10-ary tree of goroutines with N leaves (the classic skynet, N = 1,000,000). A node
// covering the numbers [num, num+size) spawns up to 10 children splitting that range (equal parts
// when size is a multiple of 10, as for any power of 10), receives their sums from one unbuffered
// channel and sends its own sum to its parent; a leaf (size 1) sends num. The root's sum must be
// N*(N-1)/2 (499999500000 for N = 1,000,000). For N = 10^6 the tree has 1,111,111 goroutines.
// Reported: ns per leaf = total/N; the total in ms is total_seconds*1000.
package main

import (
	"fmt"
	"time"
)

const skynetFanout = 10

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64) // unbuffered, as in the classic Go skynet
	children := int64(0)
	part, extra := size/skynetFanout, size%skynetFanout
	sub := num
	for i := int64(0); i < skynetFanout; i++ {
		s := part
		if i < extra {
			s++
		}
		if s == 0 {
			continue
		}
		go skynet(rc, sub, s)
		sub += s
		children++
	}
	var sum int64
	for i := int64(0); i < children; i++ {
		sum += <-rc
	}
	out <- sum
}

func runSkynet(n int64) (result, error) {
	out := make(chan int64)

	start := time.Now()
	go skynet(out, 0, n)
	sum := <-out
	total := time.Since(start)

	if want := n * (n - 1) / 2; sum != want {
		return result{}, fmt.Errorf("sum = %d, want %d", sum, want)
	}
	return result{total, perOp(total, n)}, nil
}
