package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *Report) peer(name string) *PeerResult {
	for i := range r.Peers {
		if r.Peers[i].Name == name {
			return &r.Peers[i]
		}
	}
	return nil
}

// WriteText prints the report as tables plus the comparison against the targets.
func (r *Report) WriteText(w io.Writer) error {
	o := r.Options
	m := r.Machine
	flush := "async (fsync every 500 ms: tide's default; JetStream sync_interval 500ms)"
	if o.Sync {
		flush = "sync (answer after fsync: tide --flush sync; JetStream sync_always)"
	}
	size := fmt.Sprintf("peak phase %v, half-load phases %v each", o.Duration, o.Duration)
	if o.Messages > 0 {
		size = fmt.Sprintf("peak phase %d messages, half-load phases %d each", o.Messages, o.Messages/2)
	}
	peerDesc := map[string]string{
		PeerRocketMQ:     "rocketmq: tide's embedded broker, official Go client v2.1.2",
		PeerJetStream:    "jetstream: embedded nats-server, file storage",
		PeerRemoting:     "rocketmq-remoting: tide's broker, tide's own remoting client",
		PeerNull:         "rocketmq-null: official Go client against a responder that stores nothing",
		PeerApache:       "apache: Apache RocketMQ 5.5.0 (name server + proxy in local mode, 1 GiB heap), official Go client v2.1.2, flushDiskType to match",
		PeerRocketMQJava: "rocketmq-java: tide's embedded broker, official Java client rocketmq-client 5.5.0 (mq/bench/java/Load.java, 1 GiB heap, 10 s client warm-up)",
		PeerApacheJava:   "apache-java: Apache RocketMQ 5.5.0 as apache, official Java client rocketmq-client 5.5.0 (as rocketmq-java)",
		PeerRocketMQ5:    "rocketmq5: tide's embedded broker through its gRPC endpoint, official Go 5.x client rocketmq-clients/golang v5.1.4 (push consumer)",
		PeerApache5:      "apache5: Apache RocketMQ 5.5.0 as apache, through its proxy's gRPC endpoint, official Go 5.x client v5.1.4 (as rocketmq5)",
	}
	for _, p := range o.Peers {
		fmt.Fprintf(w, "%s\n", peerDesc[p])
	}
	fmt.Fprintf(w, "run %s; machine: %d CPUs, %s, %s RAM, %s; load average at start %s, at end %s\n",
		r.Started.Format(time.RFC3339), m.CPUs, m.CPUModel, m.MemTotal, m.GoVersion, m.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "%d-byte bodies, %d concurrent synchronous senders over %d client connection(s) per peer, %s; flush %s\n", o.BodySize, o.Senders, o.Connections, size, flush)
	fmt.Fprintf(w, "%d round(s), peers interleaved; every figure is the median over the rounds (errors and missing are sums)\n\n", o.Rounds)

	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "PEAK\tMSGS/S\tSEND P50\tSEND P99\tSEND P99.9\tERRORS\tMSGS/S PER ROUND")
	for _, p := range r.Peers {
		rounds := ""
		for i, x := range p.PeakRates {
			if i > 0 {
				rounds += " "
			}
			rounds += fmt.Sprintf("%.0f", x)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.PeakRate, ms(p.PeakSend.P50), ms(p.PeakSend.P99), ms(p.PeakSend.P999), p.PeakErrors, rounds)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "HALF LOAD, PRODUCERS ONLY\tTARGET/S\tACHIEVED/S\tSEND P50\tSEND P99\tSEND P99.9\tERRORS")
	for _, p := range r.Peers {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%d\n", p.Name, p.HalfTarget, p.SendOnlyRate, ms(p.SendOnlySend.P50),
			ms(p.SendOnlySend.P99), ms(p.SendOnlySend.P999), p.SendOnlyErrors)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "HALF LOAD + CONSUMER\tTARGET/S\tACHIEVED/S\tSEND P50\tSEND P99\tSEND P99.9\tE2E P50\tE2E P99\tE2E P99.9\tMISSING")
	for _, p := range r.Peers {
		if p.Name == PeerNull {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", p.Name, p.HalfTarget, p.HalfRate, ms(p.HalfSend.P50), ms(p.HalfSend.P99),
			ms(p.HalfSend.P999), ms(p.E2E.P50), ms(p.E2E.P99), ms(p.E2E.P999), p.Missing)
	}
	tw.Flush()
	fmt.Fprintln(w)
	rq, js := r.peer(PeerRocketMQ), r.peer(PeerJetStream)
	for _, name := range []string{PeerRocketMQ, PeerRemoting} {
		p := r.peer(name)
		if p == nil || js == nil || js.PeakRate == 0 {
			continue
		}
		ratio := p.PeakRate / js.PeakRate
		verdict := "below JetStream"
		switch {
		case ratio >= 1.2:
			verdict = "meets the 1.2x aim"
		case ratio >= 1:
			verdict = "at least JetStream, short of the 1.2x aim"
		}
		fmt.Fprintf(w, "throughput ratio %s/jetstream: %.2fx (%s)\n", name, ratio, verdict)
		fmt.Fprintf(w, "send p99 ratio %s/jetstream at peak: %.2fx; at half load: %.2fx producers only, %.2fx with a consumer\n", name,
			float64(p.PeakSend.P99)/float64(max(js.PeakSend.P99, 1)), float64(p.SendOnlySend.P99)/float64(max(js.SendOnlySend.P99, 1)),
			float64(p.HalfSend.P99)/float64(max(js.HalfSend.P99, 1)))
	}
	if ap := r.peer(PeerApache); ap != nil && rq != nil && ap.PeakRate > 0 {
		fmt.Fprintf(w, "tide/apache with the official Go client: throughput %.2fx; send p99 at peak %.2fx, at half load %.2fx producers only; produce-to-consume p99 %.2fx\n",
			rq.PeakRate/ap.PeakRate, float64(rq.PeakSend.P99)/float64(max(ap.PeakSend.P99, 1)),
			float64(rq.SendOnlySend.P99)/float64(max(ap.SendOnlySend.P99, 1)), float64(rq.E2E.P99)/float64(max(ap.E2E.P99, 1)))
	}
	if ap, rq := r.peer(PeerApacheJava), r.peer(PeerRocketMQJava); ap != nil && rq != nil && ap.PeakRate > 0 {
		fmt.Fprintf(w, "tide/apache with the official Java client: throughput %.2fx; send p99 at peak %.2fx, at half load %.2fx producers only; produce-to-consume p99 %.2fx\n",
			rq.PeakRate/ap.PeakRate, float64(rq.PeakSend.P99)/float64(max(ap.PeakSend.P99, 1)),
			float64(rq.SendOnlySend.P99)/float64(max(ap.SendOnlySend.P99, 1)), float64(rq.E2E.P99)/float64(max(ap.E2E.P99, 1)))
	}
	if ap, rq := r.peer(PeerApache5), r.peer(PeerRocketMQ5); ap != nil && rq != nil && ap.PeakRate > 0 {
		fmt.Fprintf(w, "tide/apache with the official Go 5.x client (gRPC): throughput %.2fx; send p99 at peak %.2fx, at half load %.2fx producers only; produce-to-consume p99 %.2fx\n",
			rq.PeakRate/ap.PeakRate, float64(rq.PeakSend.P99)/float64(max(ap.PeakSend.P99, 1)),
			float64(rq.SendOnlySend.P99)/float64(max(ap.SendOnlySend.P99, 1)), float64(rq.E2E.P99)/float64(max(ap.E2E.P99, 1)))
	}
	if g, rq := r.peer(PeerRocketMQ5), r.peer(PeerRocketMQ); g != nil && rq != nil && rq.PeakRate > 0 {
		fmt.Fprintf(w, "tide, Go 5.x client (gRPC) / Go 4.x client (remoting): throughput %.2fx; send p99 at peak %.2fx; produce-to-consume p99 %.2fx\n",
			g.PeakRate/rq.PeakRate, float64(g.PeakSend.P99)/float64(max(rq.PeakSend.P99, 1)), float64(g.E2E.P99)/float64(max(rq.E2E.P99, 1)))
	}
	for _, p := range r.Peers {
		if p.Ready == 0 {
			continue
		}
		fmt.Fprintf(w, "%s: ready (exec of test/apache/rocketmq run to the broker registered with its name server) in %.1f s; JVMs' RSS %.0f MiB idle after %v, %.0f MiB after the phases\n",
			p.Name, p.Ready.Seconds(), float64(p.IdleRSS)/(1<<20), o.IdleWait, float64(p.LoadRSS)/(1<<20))
		if s := r.Startup; s != nil && s.ReadyMed > 0 && s.IdleRSS > 0 {
			fmt.Fprintf(w, "tide broker / %s: ready time %.3fx (1/%.0f), idle RSS %.3fx (1/%.0f)\n", p.Name,
				float64(s.ReadyMed)/float64(p.Ready), float64(p.Ready)/float64(s.ReadyMed),
				float64(s.IdleRSS)/float64(p.IdleRSS), float64(p.IdleRSS)/float64(s.IdleRSS))
		}
	}
	if null := r.peer(PeerNull); null != nil && null.PeakRate > 0 {
		if js != nil {
			fmt.Fprintf(w, "official client's ceiling (%s, a broker that stores nothing) / jetstream: %.2fx\n", PeerNull, null.PeakRate/max(js.PeakRate, 1))
		}
		if rq != nil {
			fmt.Fprintf(w, "rocketmq reaches %.0f%% of the official client's ceiling\n", 100*rq.PeakRate/null.PeakRate)
		}
	}
	if rq != nil && r.Options.HalfRate > 0 {
		fmt.Fprintf(w, "rocketmq send p99 at %.0f msgs/s (--half-rate): %s producers only, %s with a consumer\n", r.Options.HalfRate,
			ms(rq.SendOnlySend.P99), ms(rq.HalfSend.P99))
	} else if rq != nil {
		ok := "meets"
		if rq.SendOnlySend.P99 >= 2*time.Millisecond {
			ok = "misses"
		}
		fmt.Fprintf(w, "rocketmq send p99 at half of peak: %s producers only (%s the < 2 ms target); %s with a push consumer attached\n",
			ms(rq.SendOnlySend.P99), ok, ms(rq.HalfSend.P99))
	}
	if s := r.Startup; s != nil {
		okR, okM := "meets", "meets"
		if s.ReadyMed >= 200*time.Millisecond {
			okR = "misses"
		}
		if s.IdleRSS >= 40<<20 {
			okM = "misses"
		}
		fmt.Fprintf(w, "tide broker ready (exec to accepting connections): median %s, max %s over %d runs (%s the < 200 ms target)\n",
			ms(s.ReadyMed), ms(s.ReadyMax), len(s.Ready), okR)
		fmt.Fprintf(w, "tide broker idle RSS after %v: %.1f MiB = %.1f MiB anonymous + %.1f MiB file-backed executable pages (%s the < 40 MB target)\n",
			o.IdleWait, float64(s.IdleRSS)/(1<<20), float64(s.IdleAnon)/(1<<20), float64(s.IdleFile)/(1<<20), okM)
		if l := s.Load; l != nil {
			fmt.Fprintf(w, "tide broker RSS after %d sends (%.0f msgs/s, %d failed) and their consumption (%d missing): %.1f MiB = %.1f MiB anonymous + %.1f MiB file-backed (%+.1f MiB file-backed over idle)\n",
				l.Messages, l.Rate, l.Errors, l.Missing, float64(l.RSS)/(1<<20), float64(l.Anon)/(1<<20), float64(l.File)/(1<<20),
				float64(l.File-s.IdleFile)/(1<<20))
		}
	}
	return nil
}
