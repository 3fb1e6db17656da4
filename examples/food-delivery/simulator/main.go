// Command simulator plays customers ordering food through a compressed day: it produces the seed's order messages
// into RocketMQ (tide's embedded broker or any Apache RocketMQ 4.x/5.x) at a rate with breakfast, lunch and dinner
// peaks, prints a progress line, and at the end the number of orders sent. With --sent-file it writes one JSON line
// per acknowledged order ({"orderId","msgId","sentAt","malformed"}) for loss accounting.
//
//	go run ./examples/food-delivery/simulator --namesrv 127.0.0.1:9876 --day-length 3m --peak-rate 200
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/tide-run/tide/demo/fooddelivery/simulator"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namesrv := fs.String("namesrv", "127.0.0.1:9876", "RocketMQ name server(s), host:port, separated by ';'")
	topic := fs.String("topic", "orders", "topic to produce the orders to")
	group := fs.String("group", "food-delivery-simulator", "producer group")
	dayLength := fs.Duration("day-length", 3*time.Minute, "wall time of one simulated day (05:00-23:00)")
	peak := fs.Float64("peak-rate", 200, "orders per second at the lunch peak")
	concurrency := fs.Int("concurrency", 8, "concurrent producers")
	duration := fs.Duration("duration", 0, "how long to run (default: one day length; longer repeats the day)")
	malformed := fs.Int("malformed-every", 0, "make every n-th order malformed, to exercise dead-lettering (0: none)")
	accessKey := fs.String("access-key", "", "RocketMQ ACL access key (or env ROCKETMQ_ACCESS_KEY)")
	secretKey := fs.String("secret-key", "", "RocketMQ ACL secret key (or env ROCKETMQ_SECRET_KEY)")
	sentFile := fs.String("sent-file", "", "write every acknowledged order as a JSON line to this file")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "simulator: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *accessKey == "" {
		*accessKey = os.Getenv("ROCKETMQ_ACCESS_KEY")
	}
	if *secretKey == "" {
		*secretKey = os.Getenv("ROCKETMQ_SECRET_KEY")
	}
	// The official client logs every heartbeat at info level to a process-global logger.
	rlog.SetLogLevel("error")
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	sender, err := simulator.NewRocketMQSender(ctx, simulator.RocketMQOptions{
		NameServers: strings.Split(*namesrv, ";"), Group: *group, AccessKey: *accessKey, SecretKey: *secretKey})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer sender.Close()
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	sim, err := simulator.New(simulator.Options{Sender: sender, Topic: *topic, DayLength: *dayLength,
		PeakRate: *peak, Concurrency: *concurrency, Duration: *duration, MalformedEvery: *malformed,
		Progress: progress, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stderr, "simulating a %v day at up to %.0f orders/s into %s on %s: %d orders\n",
		*dayLength, *peak, *topic, *namesrv, sim.Expected())
	res, runErr := sim.Run(ctx)
	if *sentFile != "" {
		if err := writeSent(*sentFile, res.Sent); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "orders sent: %d, failed: %d, in %v\n", len(res.Sent), len(res.Failed),
		res.Ended.Sub(res.Started).Round(time.Millisecond))
	if runErr != nil {
		fmt.Fprintln(stderr, runErr)
		if errors.Is(runErr, context.Canceled) {
			return 130
		}
		return 1
	}
	if len(res.Failed) > 0 {
		return 1
	}
	return 0
}

func writeSent(path string, sent []simulator.Sent) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simulator: sent file: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, s := range sent {
		if err := enc.Encode(struct {
			OrderID   string    `json:"orderId"`
			MsgID     string    `json:"msgId"`
			SentAt    time.Time `json:"sentAt"`
			Malformed bool      `json:"malformed,omitempty"`
		}{s.OrderID, s.MsgID, s.SentAt, s.Malformed}); err != nil {
			f.Close()
			return fmt.Errorf("simulator: sent file: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("simulator: sent file: %w", err)
	}
	return nil
}
