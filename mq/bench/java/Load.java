// Load is tide-bench's load program on Apache's official Java client (rocketmq-client, the 4.x-style remoting API
// most Java applications use): the same phases as the Go driver in mq/bench, run inside one JVM so that send and
// produce-to-consume latencies are measured on the JVM's own clock. mq/bench drives it over stdin/stdout, one
// command per line, one answer line per command:
//
//   one TOPIC                          send one unmeasured message; answers "OK" or "ERR <why>"
//   phase TOPIC COUNT MILLIS RATE      run the senders until COUNT messages (when > 0) or MILLIS elapsed; RATE > 0
//                                      paces them (open loop); answers "PHASE <acked> <errors> <seconds> <lat µs,...> <first error>"
//   subscribe TOPIC GROUP              start a push consumer on TOPIC (from its first offset); answers "OK"
//   warm TOPIC                         send unmeasured messages until the consumer received one; answers "OK"/"ERR"
//   collect MILLIS                     wait until every message acknowledged by the last phase was consumed (or
//                                      MILLIS passed); answers "COLLECT <missing> <e2e µs,...>"
//   quit
//
// Bodies carry System.nanoTime() at the send's start, a measured flag and a sequence number, as the Go driver's do.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

public class Load {
    static String namesrv;
    static int senders, bodySize;
    static DefaultMQProducer[] producers;
    static DefaultMQPushConsumer consumer;
    static final AtomicLong seq = new AtomicLong();
    static final AtomicBoolean warmed = new AtomicBoolean();
    // consumed: measured sequence number -> produce-to-consume latency (µs), first delivery only.
    static final ConcurrentHashMap<Long, Long> consumed = new ConcurrentHashMap<>();
    static long[] lastAcked = new long[0];

    public static void main(String[] args) throws Exception {
        namesrv = args[0];
        int conns = Integer.parseInt(args[1]);
        senders = Integer.parseInt(args[2]);
        bodySize = Integer.parseInt(args[3]);
        String id = args[4];
        producers = new DefaultMQProducer[conns];
        for (int i = 0; i < conns; i++) {
            // One instance name per producer: the client shares one connection per instance name, as the Go driver's do.
            DefaultMQProducer p = new DefaultMQProducer("bench-java-" + id + "-" + i);
            p.setNamesrvAddr(namesrv);
            p.setInstanceName("bench-java-" + id + "-" + i);
            p.setRetryTimesWhenSendFailed(0);
            p.setSendMsgTimeout(10_000);
            p.start();
            producers[i] = p;
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        System.out.println("READY");
        System.out.flush();
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split(" ");
            String out;
            try {
                switch (f[0]) {
                    case "one": out = one(f[1]); break;
                    case "phase": out = phase(f[1], Long.parseLong(f[2]), Long.parseLong(f[3]), Double.parseDouble(f[4])); break;
                    case "subscribe": out = subscribe(f[1], f[2]); break;
                    case "warm": out = warm(f[1]); break;
                    case "collect": out = collect(Long.parseLong(f[1])); break;
                    case "quit": out = null; break;
                    default: out = "ERR unknown command " + f[0];
                }
            } catch (Exception e) {
                out = "ERR " + oneLine(e.toString());
            }
            if (out == null) break;
            System.out.println(out);
            System.out.flush();
        }
        if (consumer != null) consumer.shutdown();
        for (DefaultMQProducer p : producers) p.shutdown();
        System.exit(0); // client threads are not daemons
    }

    static String oneLine(String s) {
        return s.replace('\n', ' ').replace('\r', ' ');
    }

    static byte[] body(long t0, boolean measured, long n) {
        byte[] b = new byte[bodySize];
        ByteBuffer.wrap(b).putLong(t0).put((byte) (measured ? 1 : 0)).putLong(n);
        return b;
    }

    static String send(DefaultMQProducer p, String topic, byte[] body) throws Exception {
        SendResult r = p.send(new Message(topic, body));
        return r.getSendStatus() == SendStatus.SEND_OK ? null : "send status " + r.getSendStatus();
    }

    static String one(String topic) throws Exception {
        String why = send(producers[0], topic, body(System.nanoTime(), false, 0));
        return why == null ? "OK" : "ERR " + why;
    }

    static String phase(String topic, long count, long millis, double rate) throws Exception {
        long start = System.nanoTime();
        long deadline = start + millis * 1_000_000L;
        AtomicLong phaseSeq = new AtomicLong();
        long base = seq.get();
        long[] errors = new long[senders];
        String[] firstErr = new String[senders];
        Thread[] ts = new Thread[senders];
        long[][] latPer = new long[senders][];
        long[][] ackPer = new long[senders][];
        for (int w = 0; w < senders; w++) {
            final int ww = w;
            ts[w] = new Thread(() -> {
                long[] lat = new long[1024];
                long[] acked = new long[1024];
                int k = 0;
                DefaultMQProducer p = producers[ww % producers.length];
                while (true) {
                    long i = phaseSeq.incrementAndGet();
                    if ((count > 0 && i > count) || (count == 0 && System.nanoTime() > deadline)) break;
                    long n = base + i;
                    if (rate > 0) {
                        long due = start + (long) ((i - 1) / rate * 1e9);
                        long wait = due - System.nanoTime();
                        if (wait > 0) {
                            try {
                                Thread.sleep(wait / 1_000_000L, (int) (wait % 1_000_000L));
                            } catch (InterruptedException e) {
                                return;
                            }
                        }
                    }
                    long t0 = System.nanoTime();
                    String why;
                    try {
                        why = send(p, topic, body(t0, true, n));
                    } catch (Exception e) {
                        why = oneLine(e.toString());
                    }
                    if (why != null) {
                        errors[ww]++;
                        if (firstErr[ww] == null) firstErr[ww] = why;
                        continue;
                    }
                    if (k == lat.length) {
                        lat = Arrays.copyOf(lat, k * 2);
                        acked = Arrays.copyOf(acked, k * 2);
                    }
                    lat[k] = (System.nanoTime() - t0) / 1000;
                    acked[k] = n;
                    k++;
                }
                latPer[ww] = Arrays.copyOf(lat, k);
                ackPer[ww] = Arrays.copyOf(acked, k);
            });
            ts[w].start();
        }
        for (Thread t : ts) t.join();
        double secs = (System.nanoTime() - start) / 1e9;
        seq.addAndGet(phaseSeq.get());
        StringBuilder sb = new StringBuilder();
        long acked = 0, errs = 0;
        String first = "-";
        int total = 0;
        for (long[] a : ackPer) total += a.length;
        lastAcked = new long[total];
        int j = 0;
        for (int w = 0; w < senders; w++) {
            for (long v : latPer[w]) {
                if (sb.length() > 0) sb.append(',');
                sb.append(v);
            }
            for (long v : ackPer[w]) lastAcked[j++] = v;
            acked += ackPer[w].length;
            errs += errors[w];
            if (first.equals("-") && firstErr[w] != null) first = firstErr[w];
        }
        if (sb.length() == 0) sb.append('-');
        return "PHASE " + acked + " " + errs + " " + secs + " " + sb + " " + first;
    }

    static String subscribe(String topic, String group) throws Exception {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
        c.setNamesrvAddr(namesrv);
        c.setInstanceName(group);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            long now = System.nanoTime();
            for (MessageExt m : msgs) {
                ByteBuffer b = ByteBuffer.wrap(m.getBody());
                if (b.remaining() < 17) continue;
                long t0 = b.getLong();
                if (b.get() != 1) {
                    warmed.set(true);
                    continue;
                }
                consumed.putIfAbsent(b.getLong(), (now - t0) / 1000);
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        consumer = c;
        return "OK";
    }

    static String warm(String topic) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (!warmed.get()) {
            if (System.currentTimeMillis() > deadline) return "ERR the consumer received nothing within 60s";
            String why = send(producers[0], topic, body(System.nanoTime(), false, 0));
            if (why != null) return "ERR warm-up send: " + why;
            Thread.sleep(100);
        }
        return "OK";
    }

    static String collect(long millis) throws Exception {
        long deadline = System.currentTimeMillis() + millis;
        int missing;
        while (true) {
            missing = 0;
            for (long n : lastAcked) if (!consumed.containsKey(n)) missing++;
            if (missing == 0 || System.currentTimeMillis() > deadline) break;
            Thread.sleep(50);
        }
        StringBuilder sb = new StringBuilder();
        for (long n : lastAcked) {
            Long v = consumed.get(n);
            if (v == null) continue;
            if (sb.length() > 0) sb.append(',');
            sb.append(v);
        }
        if (sb.length() == 0) sb.append('-');
        return "COLLECT " + missing + " " + sb;
    }
}
