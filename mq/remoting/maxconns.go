package remoting

// defaultMaxConnsCap is the per-listener connection limit when the open-file limit allows it (RocketMQ's Java
// broker has none; 10,000 is far above what one host's clients open and far below what exhausts the process).
const defaultMaxConnsCap = 10_000

// DefaultMaxConns is ServerOptions.MaxConns's default: min(10,000, nofile/2 - 64), at least 64, where nofile is
// the process's open-file limit (RLIMIT_NOFILE, which Go raises to the hard limit at start). With a low limit the
// connections to the two listeners of one process (name server and broker) then cannot use up the descriptors the
// store needs, and a flood of connections meets a clear refusal instead of failing accepts.
func DefaultMaxConns() int {
	n, ok := openFileLimit()
	if !ok {
		return defaultMaxConnsCap
	}
	return maxConnsFor(n)
}

func maxConnsFor(nofile uint64) int {
	if nofile > 2*(defaultMaxConnsCap+64) {
		return defaultMaxConnsCap
	}
	return max(int(nofile)/2-64, 64)
}
