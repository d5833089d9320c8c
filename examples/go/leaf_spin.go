// leaf_spin: a Go workload for --call-graph dwarf. main.outer calls
// main.spin, a leaf that Go compiles without a frame pointer (a frameless
// leaf): a frame-pointer walk from a sample in spin skips straight to
// main.main, so main.outer vanishes. Go binaries carry .debug_frame (not
// .eh_frame), compressed; an unwinder that reads it finds main.outer.
// Runs about SECONDS (first argument, default 2) of CPU, nearly all in
// main.spin.
package main

import (
	"os"
	"strconv"
	"time"
)

//go:noinline
func spin(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i % 7
	}
	return s
}

//go:noinline
func outer(deadline time.Time) int {
	t := 0
	for time.Now().Before(deadline) {
		t += spin(200000)
	}
	return t
}

func main() {
	seconds := 2.0
	if len(os.Args) > 1 {
		if s, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			seconds = s
		}
	}
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	if outer(deadline) == 42 {
		println("unlikely")
	}
}
