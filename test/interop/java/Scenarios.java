// Scenarios runs the interop matrix's scenarios with Apache RocketMQ's official Java remoting client
// (org.apache.rocketmq:rocketmq-client, the API most Java applications use) against one target, and prints one line
// per scenario: "RESULT <name>\t<outcome>". The outcomes are worded exactly as test/interop/matrix_test.go words the
// Go client's, so the Go test can hold them against each other and against Apache's.
//
// Usage: java -cp <apache jars>:<classes> Scenarios NAMESRV ID SCENARIO=TOPIC...
// (the Go test creates the topics; groups are derived from ID and the scenario's name.)

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.heartbeat.MessageModel;

public class Scenarios {
    static String namesrv;
    static String id;
    static final long TX_CHECK_MS = 3000;

    public static void main(String[] args) throws Exception {
        namesrv = args[0];
        id = args[1];
        if (args.length == 3 && args[2].startsWith("restart=")) {
            restart(args[2].substring("restart=".length()));
            System.exit(0);
        }
        ExecutorService pool = Executors.newCachedThreadPool();
        List<Future<String>> results = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            String name = kv[0], topic = kv[1];
            results.add(pool.submit(() -> {
                String out;
                try {
                    out = run(name, topic);
                } catch (Throwable e) {
                    out = "error: " + e;
                }
                return "RESULT " + name + "\t" + out;
            }));
        }
        for (Future<String> f : results) {
            System.out.println(f.get(5, TimeUnit.MINUTES));
        }
        System.out.flush();
        System.exit(0); // client threads are not daemons
    }

    static final int RESTART_N = 40;

    /**
     * restart is the broker-restart scenario's Java side (test/interop/restart_test.go runs it beside the Go
     * client's): a push consumer reads topic; RESTART_N/2 messages are sent; once they are consumed it prints HALF
     * and waits for a line on stdin (the test restarts the broker then); it sends the rest across the restart,
     * retrying each until the broker takes it, waits until every body arrived, has a new group read the topic from
     * its start, and prints the outcome worded as the Go side's.
     */
    static void restart(String topic) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Set<String> got = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c = consumer(group("jr", "restart"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) got.add(new String(m.getBody(), StandardCharsets.UTF_8));
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        DefaultMQProducer p = new DefaultMQProducer(group("jrp", "restart"));
        p.setNamesrvAddr(namesrv);
        p.setInstanceName(group("jri", "restart"));
        p.setSendMsgTimeout(10_000);
        p.start();
        int sent = 0;
        for (int i = 0; i < RESTART_N / 2; i++) sent += sendUntilTaken(p, topic, i);
        long deadline = System.currentTimeMillis() + 90_000;
        while (got.size() < RESTART_N / 2 && System.currentTimeMillis() < deadline) Thread.sleep(50);
        if (got.size() < RESTART_N / 2) {
            System.out.println("RESULT broker restart\terror: " + got.size() + " of the first " + RESTART_N / 2 + " consumed before the restart");
            System.out.println("HALF");
            System.out.flush();
            return;
        }
        System.out.println("HALF");
        System.out.flush();
        in.readLine(); // the restart has begun
        for (int i = RESTART_N / 2; i < RESTART_N; i++) {
            sent += sendUntilTaken(p, topic, i);
            Thread.sleep(20);
        }
        deadline = System.currentTimeMillis() + 180_000;
        while (got.size() < RESTART_N && System.currentTimeMillis() < deadline) Thread.sleep(50);
        int received = got.size();
        c.shutdown();
        p.shutdown();
        Set<String> reread = consumeAll(group("jn", "restart"), topic, null, null, RESTART_N, null, null);
        System.out.println("RESULT broker restart\t" + sent + " sent, " + received + " received at least once, a new group reads " + reread.size());
        System.out.flush();
    }

    /** sendUntilTaken retries one message for up to 3 minutes: a restarting broker refuses sends for a while. */
    static int sendUntilTaken(DefaultMQProducer p, String topic, int i) throws Exception {
        long deadline = System.currentTimeMillis() + 180_000;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (p.send(msg(topic, String.format("r%02d", i))).getSendStatus() == SendStatus.SEND_OK) return 1;
            } catch (Exception e) {
                // the broker is away: try again
            }
            Thread.sleep(100);
        }
        return 0;
    }

    static String group(String prefix, String name) {
        return prefix + "-" + name.replace(' ', '-') + "-" + id;
    }

    static DefaultMQProducer producer(String name) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group("jp", name));
        p.setNamesrvAddr(namesrv);
        p.setInstanceName(group("ji", name));
        p.setRetryTimesWhenSendFailed(2);
        // Semantics, not latency, are compared: a loaded 2-core machine must not turn a slow send into a lost one.
        p.setSendMsgTimeout(30_000);
        p.start();
        return p;
    }

    static Message msg(String topic, String body) {
        return new Message(topic, body.getBytes(StandardCharsets.UTF_8));
    }

    static Message keyed(String topic, String body, String keys) {
        Message m = msg(topic, body);
        m.setKeys(keys);
        return m;
    }

    static DefaultMQPushConsumer consumer(String group) {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
        c.setNamesrvAddr(namesrv);
        c.setInstanceName("ji-" + group);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setPollNameServerInterval(1000); // see routes created after start (the dead-letter topic) within a second
        return c;
    }

    /** consumeAll reads topic with a fresh group until it has n distinct bodies, then waits a moment for extras. */
    static Set<String> consumeAll(String group, String topic, MessageSelector sel, String tagExpr, int n,
                                  Consumer<MessageExt> each, java.util.function.BiConsumer<DefaultMQPushConsumer, Set<String>> tune) throws Exception {
        Set<String> got = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c = consumer(group);
        if (tune != null) tune.accept(c, got);
        if (sel != null) c.subscribe(topic, sel); else c.subscribe(topic, tagExpr == null ? "*" : tagExpr);
        if (c.getMessageListener() == null) {
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                for (MessageExt m : msgs) {
                    got.add(new String(m.getBody(), StandardCharsets.UTF_8));
                    if (each != null) each.accept(m);
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        }
        c.start();
        try {
            long deadline = System.currentTimeMillis() + 90_000;
            while (got.size() < n && System.currentTimeMillis() < deadline) Thread.sleep(50);
            Thread.sleep(500);
            return new TreeSet<>(got);
        } finally {
            c.shutdown();
        }
    }

    static String list(Set<String> s) {
        return "[" + String.join(" ", new TreeSet<>(s)) + "]";
    }

    static String status(SendStatus s) {
        return s.name();
    }

    static String run(String name, String topic) throws Exception {
        switch (name) {
            case "sync send": {
                DefaultMQProducer p = producer(name);
                int sent = 0;
                for (int i = 0; i < 20; i++) {
                    if (p.send(msg(topic, "m" + i)).getSendStatus() == SendStatus.SEND_OK) sent++;
                }
                p.shutdown();
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 20, null, null);
                return sent + " sent, " + got.size() + " received";
            }
            case "async send": {
                DefaultMQProducer p = producer(name);
                AtomicInteger acked = new AtomicInteger();
                CountDownLatch done = new CountDownLatch(20);
                for (int i = 0; i < 20; i++) {
                    p.send(msg(topic, "m" + i), new SendCallback() {
                        public void onSuccess(SendResult r) {
                            if (r.getSendStatus() == SendStatus.SEND_OK) acked.incrementAndGet();
                            done.countDown();
                        }

                        public void onException(Throwable e) {
                            done.countDown();
                        }
                    });
                }
                done.await(60, TimeUnit.SECONDS);
                p.shutdown();
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 20, null, null);
                return acked.get() + " acknowledged, " + got.size() + " received";
            }
            case "oneway send": {
                DefaultMQProducer p = producer(name);
                for (int i = 0; i < 20; i++) p.sendOneway(msg(topic, "m" + i));
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 20, null, null);
                p.shutdown();
                return got.size() + " received";
            }
            case "batch send": {
                DefaultMQProducer p = producer(name);
                List<Message> batch = new ArrayList<>();
                for (int i = 0; i < 10; i++) batch.add(msg(topic, "b" + i));
                String st;
                try {
                    st = status(p.send(batch).getSendStatus());
                } catch (Exception e) {
                    st = "error: " + e.getMessage();
                }
                p.shutdown();
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 10, null, null);
                String intact = "bodies intact";
                for (int i = 0; i < 10; i++) if (!got.contains("b" + i)) intact = "bodies lost";
                return "batch of 10: " + st + ", " + got.size() + " received, " + intact;
            }
            case "tags": {
                DefaultMQProducer p = producer(name);
                for (String tag : new String[]{"A", "B", "C"}) {
                    Message m = msg(topic, tag.toLowerCase() + "1");
                    m.setTags(tag);
                    p.send(m);
                }
                p.shutdown();
                return "received " + list(consumeAll(group("jc", name), topic, null, "A || B", 2, null, null));
            }
            case "sql92": {
                DefaultMQProducer p = producer(name);
                for (int i = 0; i < 10; i++) {
                    Message m = msg(topic, "v" + i);
                    m.putUserProperty("a", String.valueOf(i));
                    p.send(m);
                }
                p.shutdown();
                return "received " + list(consumeAll(group("jc", name), topic, MessageSelector.bySql("a > 5"), null, 4, null, null));
            }
            case "keys and properties": {
                DefaultMQProducer p = producer(name);
                Message m = msg(topic, "body");
                m.setKeys(Arrays.asList("k1", "k2"));
                m.putUserProperty("x", "y");
                m.setTags("T");
                p.send(m);
                p.shutdown();
                MessageExt[] got = new MessageExt[1];
                consumeAll(group("jc", name), topic, null, null, 1, e -> got[0] = e, null);
                return "keys " + got[0].getKeys() + ", property x=" + got[0].getUserProperty("x") + ", tag " + got[0].getTags();
            }
            case "delay level 2": {
                DefaultMQProducer p = producer(name);
                Message m = msg(topic, "later");
                m.setDelayTimeLevel(2);
                long start = System.currentTimeMillis();
                p.send(m);
                p.shutdown();
                long[] at = new long[1];
                consumeAll(group("jc", name), topic, null, null, 1, e -> at[0] = System.currentTimeMillis(), null);
                long d = at[0] - start;
                if (d < 4500) return "delivered after " + Math.round(d / 1000.0) + "s (before the 5s level)";
                return "delivered after the 5s level";
            }
            case "timer": {
                // The topic's message.type is DELAY (the Go test set it). Message.setDelayTimeSec / setDelayTimeMs /
                // setDeliverTimeMs are RocketMQ 5's timer properties; the broker refuses more than 3 days ahead.
                DefaultMQProducer p = producer(name);
                Message far = msg(topic, "far");
                far.setDelayTimeSec(3L * 24 * 3600 + 1);
                String refused;
                try {
                    p.send(far);
                    refused = "accepted";
                } catch (Exception e) {
                    refused = String.valueOf(e).contains("max delay 259200000ms") ? "refused (max delay 259200000ms)" : "error: " + e;
                }
                String normal = status(p.send(msg(topic, "now")).getSendStatus());
                Map<String, Long> due = new ConcurrentHashMap<>();
                long before = System.currentTimeMillis();
                Message sec = msg(topic, "sec");
                sec.setDelayTimeSec(1);
                due.put("sec", before + 1000);
                p.send(sec);
                before = System.currentTimeMillis();
                Message ms = msg(topic, "ms");
                ms.setDelayTimeMs(1500);
                due.put("ms", before + 1500);
                p.send(ms);
                before = System.currentTimeMillis();
                Message abs = msg(topic, "abs");
                abs.setDeliverTimeMs(before + 2000);
                due.put("abs", before + 2000);
                p.send(abs);
                p.shutdown();
                List<String> early = Collections.synchronizedList(new ArrayList<>());
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 4, e -> {
                    String b = new String(e.getBody(), StandardCharsets.UTF_8);
                    Long at = due.get(b);
                    long now = System.currentTimeMillis();
                    if (at != null && now < at) early.add(b + " " + (at - now) + "ms early");
                }, null);
                int timers = 0;
                for (String b : due.keySet()) if (got.contains(b)) timers++;
                String verdict = early.isEmpty() ? "none before its time" : "delivered early: " + String.join(", ", early);
                if (got.contains("far")) verdict += "; the refused one arrived";
                return "beyond 3 days: " + refused + "; a normal message on a DELAY topic: " + normal + "; " + timers
                    + " timer messages received, " + verdict;
            }
            case "retry then dead letter": {
                DefaultMQProducer p = producer(name);
                p.send(msg(topic, "poison"));
                String g = group("jg", name);
                String before = "no %DLQ% route before the first dead letter; ";
                try {
                    if (!p.fetchPublishMessageQueues("%DLQ%" + g).isEmpty()) before = "a %DLQ% route before the first dead letter; ";
                } catch (Exception e) {
                    // no route: what both brokers should answer
                }
                p.shutdown();
                List<Integer> attempts = Collections.synchronizedList(new ArrayList<>());
                DefaultMQPushConsumer c = consumer(g);
                c.setMaxReconsumeTimes(1);
                c.subscribe(topic, "*");
                c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                    for (MessageExt m : msgs) attempts.add(m.getReconsumeTimes());
                    return ConsumeConcurrentlyStatus.RECONSUME_LATER;
                });
                c.start();
                MessageExt[] dead = new MessageExt[1];
                try {
                    consumeAll(group("jd", name), "%DLQ%" + g, null, null, 1, e -> dead[0] = e, null);
                } finally {
                    c.shutdown();
                }
                if (dead[0] == null) return before + "attempts " + attempts + ", no dead letter";
                String rt = "RETRY_TOPIC is " + dead[0].getProperty("RETRY_TOPIC");
                if (topic.equals(dead[0].getProperty("RETRY_TOPIC"))) rt = "RETRY_TOPIC = the topic";
                return before + "attempts " + attempts.toString().replace(",", "") + ", dead letter: body "
                        + new String(dead[0].getBody(), StandardCharsets.UTF_8) + ", " + rt;
            }
            case "transaction commit rollback and check": {
                TransactionMQProducer p = new TransactionMQProducer(group("jtx", name));
                p.setNamesrvAddr(namesrv);
                p.setInstanceName(group("ji", name));
                p.setSendMsgTimeout(30_000);
                p.setTransactionListener(new TransactionListener() {
                    public LocalTransactionState executeLocalTransaction(Message m, Object arg) {
                        String b = new String(m.getBody(), StandardCharsets.UTF_8);
                        if (b.equals("commit")) return LocalTransactionState.COMMIT_MESSAGE;
                        if (b.equals("rollback")) return LocalTransactionState.ROLLBACK_MESSAGE;
                        return LocalTransactionState.UNKNOW;
                    }

                    public LocalTransactionState checkLocalTransaction(MessageExt m) {
                        String b = new String(m.getBody(), StandardCharsets.UTF_8);
                        return b.equals("checked-commit") ? LocalTransactionState.COMMIT_MESSAGE : LocalTransactionState.ROLLBACK_MESSAGE;
                    }
                });
                p.start();
                for (String b : new String[]{"commit", "rollback", "checked-commit", "checked-rollback"}) {
                    p.sendMessageInTransaction(msg(topic, b), null);
                }
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 2, null, null);
                Thread.sleep(2 * TX_CHECK_MS);
                p.shutdown();
                return "received " + list(got);
            }
            case "ordered by key": {
                DefaultMQProducer p = producer(name);
                for (int i = 0; i < 10; i++) {
                    for (String k : new String[]{"a", "b", "c"}) {
                        p.send(msg(topic, String.format("%s-%02d", k, i)),
                                (mqs, m, arg) -> mqs.get(Math.abs(arg.hashCode()) % mqs.size()), k);
                    }
                }
                p.shutdown();
                Map<String, String> last = new ConcurrentHashMap<>();
                AtomicBoolean kept = new AtomicBoolean(true);
                Set<String> got = consumeAll(group("jc", name), topic, null, null, 30, null, (c, seen) ->
                        c.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
                            for (MessageExt m : msgs) {
                                String b = new String(m.getBody(), StandardCharsets.UTF_8);
                                String k = b.substring(0, 1);
                                String prev = last.get(k);
                                if (prev != null && b.compareTo(prev) < 0) kept.set(false);
                                last.put(k, b);
                                seen.add(b);
                            }
                            return ConsumeOrderlyStatus.SUCCESS;
                        }));
                int n = got.size();
                return n + " received, " + (kept.get() ? "order kept for every key" : "order broken");
            }
            case "broadcasting": {
                String g = group("jb", name);
                List<Set<String>> counts = new ArrayList<>();
                List<DefaultMQPushConsumer> cs = new ArrayList<>();
                for (int i = 0; i < 2; i++) {
                    Set<String> s = ConcurrentHashMap.newKeySet();
                    counts.add(s);
                    DefaultMQPushConsumer c = consumer(g);
                    c.setInstanceName("ji" + i + "-" + g);
                    c.setMessageModel(MessageModel.BROADCASTING);
                    c.subscribe(topic, "*");
                    c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                        for (MessageExt m : msgs) s.add(new String(m.getBody(), StandardCharsets.UTF_8));
                        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                    });
                    c.start();
                    cs.add(c);
                }
                Thread.sleep(3000);
                DefaultMQProducer p = producer(name);
                for (int i = 0; i < 10; i++) p.send(msg(topic, "m" + i));
                p.shutdown();
                long deadline = System.currentTimeMillis() + 60_000;
                while ((counts.get(0).size() < 10 || counts.get(1).size() < 10) && System.currentTimeMillis() < deadline) Thread.sleep(50);
                for (DefaultMQPushConsumer c : cs) c.shutdown();
                return "consumer 1: " + counts.get(0).size() + ", consumer 2: " + counts.get(1).size();
            }
            case "consume from timestamp": {
                DefaultMQProducer p = producer(name);
                for (int i = 0; i < 3; i++) p.send(msg(topic, "early" + i));
                Thread.sleep(1100);
                Date from = new Date(System.currentTimeMillis() + 100);
                Thread.sleep(1100);
                for (int i = 0; i < 3; i++) p.send(msg(topic, "late" + i));
                p.shutdown();
                String ts = new SimpleDateFormat("yyyyMMddHHmmss").format(from);
                return "received " + list(consumeAll(group("jc", name), topic, null, null, 3, null, (c, seen) -> {
                    c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_TIMESTAMP);
                    c.setConsumeTimestamp(ts);
                }));
            }
            case "request-reply": {
                DefaultMQProducer replier = producer(name + " replier");
                DefaultMQPushConsumer c = consumer(group("jg", name));
                c.subscribe(topic, "*");
                c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                    for (MessageExt m : msgs) {
                        try {
                            Message reply = org.apache.rocketmq.client.utils.MessageUtil.createReplyMessage(m,
                                    ("pong:" + new String(m.getBody(), StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8));
                            replier.send(reply);
                        } catch (Exception e) {
                            // the requester times out and says so
                        }
                    }
                    return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                });
                c.start();
                DefaultMQProducer requester = producer(name + " requester");
                try {
                    Message resp = requester.request(msg(topic, "ping"), 20_000);
                    return "reply " + new String(resp.getBody(), StandardCharsets.UTF_8);
                } catch (Exception e) {
                    return "request failed: " + e.getMessage();
                } finally {
                    requester.shutdown();
                    c.shutdown();
                    replier.shutdown();
                }
            }
            case "message trace": {
                DefaultMQProducer p = new DefaultMQProducer(group("jp", name), true, null);
                p.setNamesrvAddr(namesrv);
                p.setInstanceName(group("ji", name));
                p.setSendMsgTimeout(30_000);
                p.start();
                Message m = msg(topic, "traced");
                m.setKeys("tk-" + id);
                String msgId = p.send(m).getMsgId();
                String[] found = new String[1];
                long deadline = System.currentTimeMillis() + 60_000;
                DefaultMQPushConsumer c = consumer(group("jtr", name));
                c.subscribe("RMQ_SYS_TRACE_TOPIC", "*");
                c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                    for (MessageExt e : msgs) {
                        String b = new String(e.getBody(), StandardCharsets.UTF_8);
                        if (b.contains(msgId) && b.contains(topic)) found[0] = b.split("\u0001", 2)[0];
                    }
                    return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                });
                c.start();
                while (found[0] == null && System.currentTimeMillis() < deadline) Thread.sleep(100);
                c.shutdown();
                p.shutdown();
                return found[0] == null ? "no trace record names the message" : "a " + found[0] + " trace record names the message";
            }
            case "traced produce and consume": {
                // Both clients with enableMsgTrace, as the Java client's trace examples set them: the producer's Pub
                // record and the consumer's SubBefore and SubAfter must reach RMQ_SYS_TRACE_TOPIC. The consumer's
                // hook takes the region from the stored message (the broker's MSG_REGION property) and its
                // dispatcher drops records without one.
                DefaultMQProducer p = new DefaultMQProducer(group("jp", name), true, null);
                p.setNamesrvAddr(namesrv);
                p.setInstanceName(group("ji", name));
                p.setSendMsgTimeout(30_000);
                p.start();
                DefaultMQPushConsumer c = new DefaultMQPushConsumer(group("jc", name), true, null);
                c.setNamesrvAddr(namesrv);
                c.setInstanceName(group("jci", name));
                c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
                c.subscribe(topic, "*");
                c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
                c.start();
                String msgId = p.send(keyed(topic, "traced", "jtk-" + id)).getMsgId();
                // The consumer stays up while the records are read back: its dispatcher sends them seconds later.
                Set<String> types = ConcurrentHashMap.newKeySet();
                DefaultMQPushConsumer tr = consumer(group("jtc", name));
                tr.subscribe("RMQ_SYS_TRACE_TOPIC", "*");
                tr.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                    for (MessageExt e : msgs) {
                        for (String rec : new String(e.getBody(), StandardCharsets.UTF_8).split("\u0002")) {
                            String[] f = rec.split("\u0001");
                            if (Arrays.asList(f).contains(msgId)) types.add(f[0]);
                        }
                    }
                    return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                });
                tr.start();
                long deadline = System.currentTimeMillis() + 60_000;
                while (types.size() < 3 && System.currentTimeMillis() < deadline) Thread.sleep(100);
                tr.shutdown();
                c.shutdown();
                p.shutdown();
                return "records naming the message: " + list(types);
            }
            case "query by key": {
                // DefaultMQProducer.queryMessage: QUERY_MESSAGE to the topic's brokers, filtered by key on the client.
                DefaultMQProducer p = producer(name);
                p.send(keyed(topic, "q1", "qk"));
                p.send(keyed(topic, "q2", "x qk"));
                p.send(keyed(topic, "q3", "qkk"));
                Set<String> got = new TreeSet<>();
                long deadline = System.currentTimeMillis() + 10_000;
                while (got.size() < 2 && System.currentTimeMillis() < deadline) {
                    try {
                        for (MessageExt e : p.queryMessage(topic, "qk", 32, 0, Long.MAX_VALUE).getMessageList()) {
                            got.add(new String(e.getBody(), StandardCharsets.UTF_8));
                        }
                    } catch (Exception e) {
                        Thread.sleep(100); // not indexed yet: "query message by key finished, but no message"
                    }
                }
                String nope;
                try {
                    nope = "found " + p.queryMessage(topic, "nope", 32, 0, Long.MAX_VALUE).getMessageList().size();
                } catch (Exception e) {
                    nope = "none";
                }
                p.shutdown();
                return "by key qk: " + list(got) + ", by key nope: " + nope;
            }
            case "view by id": {
                // DefaultMQProducer.viewMessage: VIEW_MESSAGE_BY_ID for an offset message id; for the producer's
                // message id (UNIQ_KEY) it falls back to QUERY_MESSAGE with _UNIQUE_KEY_QUERY=true.
                DefaultMQProducer p = producer(name);
                SendResult r = p.send(msg(topic, "v1"));
                MessageExt byOff = p.viewMessage(topic, r.getOffsetMsgId());
                String byOffset = new String(byOff.getBody(), StandardCharsets.UTF_8) + (topic.equals(byOff.getTopic()) ? " in the topic" : " in " + byOff.getTopic());
                String byId = "nothing";
                long deadline = System.currentTimeMillis() + 10_000;
                while (byId.equals("nothing") && System.currentTimeMillis() < deadline) {
                    try {
                        MessageExt m = p.viewMessage(topic, r.getMsgId());
                        if (m != null) byId = new String(m.getBody(), StandardCharsets.UTF_8);
                    } catch (Exception e) {
                        // not indexed yet
                    }
                    if (byId.equals("nothing")) Thread.sleep(100);
                }
                p.shutdown();
                return "by offset id: " + byOffset + ", by message id: " + byId;
            }
            default:
                return "unknown scenario";
        }
    }
}
