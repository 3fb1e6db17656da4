// Package mq embeds tide's RocketMQ-compatible messaging: a name server and a broker speaking RocketMQ's remoting
// protocol, so the official clients (github.com/apache/rocketmq-client-go/v2) work against it unchanged.
//
// Embedding, the way nats-server can be embedded in tests:
//
//	srv, err := mq.New(mq.Options{DataDir: t.TempDir()}) // ports 0: ephemeral
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Shutdown(context.Background())
//	p, _ := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServerAddr()}))
//
// The public parts are remoting (wire codec and server), message (message encoding), mqmeta (topic and group
// vocabulary) and admin (a Go admin client). The implementation lives under internal/, so only this package wires it:
// commitlog, consumequeue and store (durable storage), broker (request handlers), sql92 (SQL92 selectors) and
// namesrv (routes).
package mq
