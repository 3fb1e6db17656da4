// Package namesrv is the RocketMQ name server: it answers topic routes (GET_ROUTEINFO_BY_TOPIC), the cluster view
// and the topic list for the brokers registered with it. tide's brokers run in the same process and register
// themselves in-process (Register), so a route always reflects the broker's live topic table.
//
// Route bodies are compact JSON with brokerAddrs keyed "0" (the master): the Go client slices that object as a
// string and breaks on whitespace.
package namesrv
