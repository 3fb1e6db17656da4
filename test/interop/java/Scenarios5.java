import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * The RocketMQ 5 scenarios with Apache's official Java 5.x client (rocketmq-client-java, gRPC): the same program runs
 * against tide's gRPC endpoint and against Apache's proxy, and prints one line per scenario,
 * "RESULT name\toutcome", worded so that equal behaviour gives equal text (no ids or times in it). The Go test
 * (java5_test.go) creates each scenario's topic (with its message.type) and groups beforehand and compares the lines.
 *
 * Usage: Scenarios5 ENDPOINT name=topic[,arg...] ...
 */
public class Scenarios5 {
    static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();
    static ClientConfiguration config;
    // Received messages stay invisible this long: long enough that a loaded machine acknowledges them in time (an ack
    // after it is refused, on both servers).
    static final Duration INVISIBLE = Duration.ofSeconds(30);
    // The shortest invisible duration both servers take on receive (Apache's minInvisibleTimeMillsForRecv): the
    // FIFO scenario waits it out once.
    static final Duration MIN_INVISIBLE = Duration.ofSeconds(10);
    static final List<AutoCloseable> CLOSE = new CopyOnWriteArrayList<>();

    interface Scenario {
        String run(String topic, String[] args) throws Exception;
    }

    public static void main(String[] argv) throws Exception {
        // TLS, as the client does by default (both servers speak TLS and plaintext on one port).
        config = ClientConfiguration.newBuilder().setEndpoints(argv[0]).setRequestTimeout(Duration.ofSeconds(10)).build();
        Map<String, Scenario> all = new LinkedHashMap<>();
        all.put("5x sync send", Scenarios5::syncSend);
        all.put("5x async send", Scenarios5::asyncSend);
        all.put("5x delivery timestamp", Scenarios5::deliveryTimestamp);
        all.put("5x fifo across redelivery", Scenarios5::fifo);
        all.put("5x transaction", Scenarios5::transaction);
        all.put("5x invisible time", Scenarios5::invisibleTime);
        all.put("5x push consumer", Scenarios5::push);
        all.put("5x fifo push consumer", Scenarios5::fifoPush);
        all.put("5x max attempts then DLQ", Scenarios5::deadLetter);
        all.put("5x tag filter", Scenarios5::tagFilter);
        all.put("5x sql92 filter", Scenarios5::sqlFilter);
        all.put("5x from 4x and back", Scenarios5::interop);
        all.put("5x plaintext", Scenarios5::plaintext);
        all.put("5x refusals", Scenarios5::refusals);

        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        warmUp(argv);
        Map<String, Future<String>> running = new LinkedHashMap<>();
        for (int i = 1; i < argv.length; i++) {
            String[] kv = argv[i].split("=", 2);
            Scenario sc = all.get(kv[0]);
            if (sc == null) {
                System.out.println("RESULT " + kv[0] + "\terror: no such scenario");
                continue;
            }
            String[] parts = kv[1].split(",");
            String[] rest = new String[parts.length - 1];
            System.arraycopy(parts, 1, rest, 0, rest.length);
            running.put(kv[0], pool.submit(() -> sc.run(parts[0], rest)));
        }
        for (Map.Entry<String, Future<String>> e : running.entrySet()) {
            String out;
            try {
                out = e.getValue().get(5, TimeUnit.MINUTES);
            } catch (java.util.concurrent.ExecutionException ex) {
                Throwable c = ex.getCause();
                c.printStackTrace();
                out = "error: " + c;
            } catch (java.util.concurrent.TimeoutException ex) {
                out = "error: no outcome within 5 minutes";
            }
            System.out.println("RESULT " + e.getKey() + "\t" + out.replace('\n', ' ').replace('\t', ' '));
            System.out.flush();
        }
        for (AutoCloseable c : CLOSE) {
            try {
                c.close();
            } catch (Exception ignored) {
                // the outcome is printed; a close that fails changes nothing
            }
        }
        System.exit(0);
    }

    /**
     * warmUp waits until the endpoint answers a producer's start (route and settings), retrying for up to 2 minutes:
     * Apache's proxy connects to its name server on the first route query, and a cold proxy on a loaded machine takes
     * longer than the client's request timeout for it, so the scenarios' clients would all fail their start at once.
     */
    static void warmUp(String[] argv) throws Exception {
        String topic = argv[1].split("=", 2)[1].split(",")[0];
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (true) {
            try {
                PROVIDER.newProducerBuilder().setClientConfiguration(config).setTopics(topic).build().close();
                return;
            } catch (Exception e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                System.err.println("warm-up: " + e);
            }
        }
    }

    static Producer producer(String topic) throws ClientException {
        Producer p = PROVIDER.newProducerBuilder().setClientConfiguration(config).setTopics(topic).build();
        CLOSE.add(p);
        return p;
    }

    static SimpleConsumer simple(String group, String topic, FilterExpression filter) throws ClientException {
        // Apache's proxy polls at least 5 s (grpcClientConsumerMinLongPollingTimeoutMillis): a shorter await would
        // leave too little of the call's deadline.
        SimpleConsumer c = PROVIDER.newSimpleConsumerBuilder().setClientConfiguration(config).setConsumerGroup(group)
            .setAwaitDuration(Duration.ofSeconds(5)).setSubscriptionExpressions(Collections.singletonMap(topic, filter)).build();
        CLOSE.add(c);
        return c;
    }

    static final FilterExpression ALL = FilterExpression.SUB_ALL;

    static Message msg(String topic, String body) {
        return PROVIDER.newMessageBuilder().setTopic(topic).setBody(body.getBytes(StandardCharsets.UTF_8)).build();
    }

    static String body(MessageView mv) {
        return StandardCharsets.UTF_8.decode(mv.getBody().duplicate()).toString();
    }

    /** receive receives (acking each when ack) until n messages arrived or within passed. */
    static List<MessageView> receive(SimpleConsumer c, int n, boolean ack, Duration within) throws ClientException {
        List<MessageView> out = new ArrayList<>();
        long deadline = System.nanoTime() + within.toNanos();
        while (out.size() < n && System.nanoTime() < deadline) {
            for (MessageView mv : c.receive(n - out.size(), INVISIBLE)) {
                if (ack) {
                    c.ack(mv);
                }
                out.add(mv);
            }
        }
        return out;
    }

    static TreeSet<String> bodies(List<MessageView> mvs) {
        TreeSet<String> s = new TreeSet<>();
        for (MessageView mv : mvs) {
            s.add(body(mv));
        }
        return s;
    }

    static String syncSend(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        int sent = 0;
        for (int i = 0; i < 20; i++) {
            SendReceipt r = p.send(msg(topic, "m" + i));
            if (r.getMessageId() != null) {
                sent++;
            }
        }
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        return sent + " sent, " + bodies(receive(c, 20, true, Duration.ofSeconds(60))).size() + " received";
    }

    static String asyncSend(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        List<CompletableFuture<SendReceipt>> fs = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            fs.add(p.sendAsync(msg(topic, "m" + i)));
        }
        int acked = 0;
        for (CompletableFuture<SendReceipt> f : fs) {
            try {
                if (f.get(60, TimeUnit.SECONDS).getMessageId() != null) {
                    acked++;
                }
            } catch (Exception e) {
                // counted as not acknowledged
            }
        }
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        return acked + " acknowledged, " + bodies(receive(c, 20, true, Duration.ofSeconds(60))).size() + " received";
    }

    /**
     * The delivery timestamp (5.x's delay and timer message) on a DELAY topic: delivered not before its time; a time
     * beyond the proxy's maximum delay (a day) is refused; a delayed message on a NORMAL topic (args[0]) is refused.
     */
    static String deliveryTimestamp(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        String far;
        try {
            p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody("far".getBytes(StandardCharsets.UTF_8))
                .setDeliveryTimestamp(System.currentTimeMillis() + Duration.ofDays(1).plusHours(1).toMillis()).build());
            far = "accepted";
        } catch (ClientException e) {
            far = "refused (" + code(e) + ")";
        }
        String normal;
        Producer pn = producer(args[0]);
        try {
            pn.send(PROVIDER.newMessageBuilder().setTopic(args[0]).setBody("x".getBytes(StandardCharsets.UTF_8))
                .setDeliveryTimestamp(System.currentTimeMillis() + 2000).build());
            normal = "accepted";
        } catch (Exception e) {
            normal = "refused";
        }
        Map<String, Long> due = new TreeMap<>();
        for (long d : new long[] {1500, 3000}) {
            long at = System.currentTimeMillis() + d;
            due.put("at" + d, at);
            p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody(("at" + d).getBytes(StandardCharsets.UTF_8))
                .setDeliveryTimestamp(at).build());
        }
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        List<MessageView> got = new ArrayList<>();
        int early = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (got.size() < 2 && System.nanoTime() < deadline) {
            for (MessageView mv : c.receive(2, INVISIBLE)) {
                long now = System.currentTimeMillis();
                Long at = due.get(body(mv));
                // Apache's timer wheel rounds to its precision (1 s by default) and may fire up to a tick early.
                if (at != null && now < at - 1000) {
                    early++;
                }
                c.ack(mv);
                got.add(mv);
            }
        }
        boolean stamped = true;
        for (MessageView mv : got) {
            if (!mv.getDeliveryTimestamp().isPresent() || !mv.getDeliveryTimestamp().get().equals(due.get(body(mv)))) {
                stamped = false;
            }
        }
        return "beyond a day: " + far + "; delayed on a NORMAL topic: " + normal + "; " + got.size() + " received, "
            + early + " before its time, delivery timestamps " + (stamped ? "intact" : "changed");
    }

    static String code(Throwable t) {
        while (t != null && !(t instanceof ClientException)) {
            t = t.getCause();
        }
        if (t == null) {
            return "no ClientException";
        }
        ClientException e = (ClientException) t;
        String s = e.getMessage();
        // The client's message is "[request-id=..., response-code=40005, ...] text": keep the code.
        int i = s == null ? -1 : s.indexOf("response-code=");
        if (i < 0) {
            return e.getClass().getSimpleName();
        }
        int j = i + "response-code=".length();
        int k = j;
        while (k < s.length() && Character.isDigit(s.charAt(k))) {
            k++;
        }
        return "code " + s.substring(j, k);
    }

    /**
     * FIFO (a FIFO topic, a group with consumeMessageOrderly): within a message group the next message comes only
     * after the previous one is acknowledged, also when the previous one comes again because its invisible time
     * lapsed.
     */
    static String fifo(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        for (int i = 0; i < 4; i++) {
            for (String g : new String[] {"a", "b"}) {
                p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody((g + i).getBytes(StandardCharsets.UTF_8))
                    .setMessageGroup(g).build());
            }
        }
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        Map<String, List<String>> seen = new TreeMap<>();
        seen.put("a", new ArrayList<>());
        seen.put("b", new ArrayList<>());
        boolean redelivered = false;
        String group = "present";
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (seen.get("a").size() + seen.get("b").size() < 8 && System.nanoTime() < deadline) {
            for (MessageView mv : c.receive(1, MIN_INVISIBLE)) {
                String b = body(mv);
                if (!mv.getMessageGroup().isPresent()) {
                    group = "missing";
                }
                if (b.equals("a1") && mv.getDeliveryAttempt() == 1) {
                    continue; // not acknowledged: it must come again before a2
                }
                if (b.equals("a1")) {
                    redelivered = true;
                }
                c.ack(mv);
                seen.get(b.substring(0, 1)).add(b);
            }
        }
        return "a1 " + (redelivered ? "redelivered" : "not redelivered") + ", message group " + group + ", consumed " + seen;
    }

    /** Transactions: commit, rollback, and two left open that the broker checks back (commit and rollback). */
    static String transaction(String topic, String[] args) throws Exception {
        List<String> checked = Collections.synchronizedList(new ArrayList<>());
        Producer p = PROVIDER.newProducerBuilder().setClientConfiguration(config).setTopics(topic)
            .setTransactionChecker(mv -> {
                String b = body(mv);
                checked.add(b);
                return b.equals("checked-commit") ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK;
            }).build();
        CLOSE.add(p);
        for (String b : new String[] {"commit", "rollback", "checked-commit", "checked-rollback"}) {
            Transaction tx = p.beginTransaction();
            p.send(msg(topic, b), tx);
            if (b.equals("commit")) {
                tx.commit();
            } else if (b.equals("rollback")) {
                tx.rollback();
            }
        }
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        List<MessageView> got = receive(c, 2, true, Duration.ofSeconds(90));
        // A wrongly delivered rollback would come by the end of one more long poll (the checks run every 3 s).
        got.addAll(c.receive(4, INVISIBLE));
        // The checker must be asked about the two left open. A committed or rolled-back one can be asked too when its
        // EndTransaction was slower than the check's immunity time (on a loaded machine), so those are not compared.
        TreeSet<String> asked = new TreeSet<>(checked);
        asked.retainAll(List.of("checked-commit", "checked-rollback"));
        return "received " + bodies(got) + ", checked back " + asked;
    }

    /**
     * SimpleConsumer: a message not acknowledged comes again once its invisible time lapses (here shortened with
     * changeInvisibleDuration), with the next attempt number and the same id; the handle of the earlier delivery
     * no longer acknowledges; the new one does, and then it does not come again.
     */
    static String invisibleTime(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        String id = p.send(msg(topic, "once")).getMessageId().toString();
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        List<MessageView> first = receive(c, 1, false, Duration.ofSeconds(60));
        if (first.isEmpty()) {
            return "not received";
        }
        MessageView m1 = first.get(0);
        c.changeInvisibleDuration(m1, Duration.ofSeconds(1));
        // changeInvisibleDuration gives the message a new handle: the view now carries it.
        long start = System.nanoTime();
        List<MessageView> again = receive(c, 1, false, Duration.ofSeconds(60));
        if (again.isEmpty()) {
            return "attempt " + m1.getDeliveryAttempt() + ", not redelivered";
        }
        MessageView m2 = again.get(0);
        long waited = (System.nanoTime() - start) / 1_000_000;
        String oldAck;
        try {
            c.ack(m1);
            oldAck = "acknowledged";
        } catch (ClientException e) {
            oldAck = "refused (" + code(e) + ")";
        }
        c.ack(m2);
        List<MessageView> more = c.receive(1, INVISIBLE);
        return "attempts " + m1.getDeliveryAttempt() + " then " + m2.getDeliveryAttempt() + ", same id "
            + (m2.getMessageId().toString().equals(id) && m1.getMessageId().toString().equals(id))
            + ", back before the first invisible time ran out " + (waited < INVISIBLE.toMillis() - 5_000)
            + ", earlier handle's ack " + oldAck + ", "
            + more.size() + " more after the ack";
    }

    /** PushConsumer: a failed message comes again with the next attempt; the others once. */
    static String push(String topic, String[] args) throws Exception {
        Map<String, List<Integer>> attempts = new ConcurrentHashMap<>();
        PushConsumer pc = PROVIDER.newPushConsumerBuilder().setClientConfiguration(config).setConsumerGroup("g-" + topic)
            .setSubscriptionExpressions(Collections.singletonMap(topic, ALL))
            .setMessageListener(mv -> {
                String b = body(mv);
                attempts.computeIfAbsent(b, k -> new CopyOnWriteArrayList<>()).add(mv.getDeliveryAttempt());
                return b.equals("fail-once") && mv.getDeliveryAttempt() == 1 ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
            }).build();
        CLOSE.add(pc);
        Producer p = producer(topic);
        for (String b : new String[] {"ok-1", "fail-once", "ok-2"}) {
            p.send(msg(topic, b));
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadline && !(attempts.containsKey("ok-1") && attempts.containsKey("ok-2")
            && attempts.getOrDefault("fail-once", Collections.emptyList()).size() >= 2)) {
            Thread.sleep(100);
        }
        Thread.sleep(1000); // an extra delivery would show by now
        return "attempts " + new TreeMap<>(attempts);
    }

    /**
     * Max attempts: the group (created with retryMaxTimes 1, so 2 attempts) gets the message twice, then it goes to
     * %DLQ%group, where a 5.x consumer reads it.
     */
    static String deadLetter(String topic, String[] args) throws Exception {
        Producer p = producer(topic);
        String id = p.send(msg(topic, "poison")).getMessageId().toString();
        String group = "g-" + topic;
        SimpleConsumer c = simple(group, topic, ALL);
        List<Integer> attempts = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(40).toNanos();
        while (System.nanoTime() < deadline) {
            List<MessageView> mvs = c.receive(1, INVISIBLE);
            for (MessageView mv : mvs) {
                attempts.add(mv.getDeliveryAttempt());
                c.changeInvisibleDuration(mv, Duration.ofSeconds(1));
            }
            if (mvs.isEmpty() && attempts.size() >= 2) {
                break; // the long poll found nothing after the last attempt's invisible time
            }
        }
        // %DLQ%group exists once the first message is dead-lettered; its route can lag.
        SimpleConsumer d = null;
        deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (d == null) {
            try {
                d = simple("d-" + topic, "%DLQ%" + group, ALL);
            } catch (ClientException e) {
                if (System.nanoTime() > deadline) {
                    return "attempts " + attempts + ", no %DLQ% topic: " + code(e);
                }
                Thread.sleep(500);
            }
        }
        List<MessageView> dead = receive(d, 1, true, Duration.ofSeconds(60));
        String dl = "no dead letter";
        if (!dead.isEmpty()) {
            MessageView mv = dead.get(0);
            dl = "dead letter " + body(mv) + (mv.getMessageId().toString().equals(id) ? " with the same id" : " with another id");
        }
        return "attempts " + attempts + ", " + dl;
    }

    static void sendFilterSet(String topic) throws ClientException {
        Producer p = producer(topic);
        for (int i = 0; i < 6; i++) {
            p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody(String.valueOf(i).getBytes(StandardCharsets.UTF_8))
                .setTag(new String[] {"a", "b", "c"}[i % 3]).addProperty("amount", String.valueOf(i * 10)).build());
        }
    }

    static String tagFilter(String topic, String[] args) throws Exception {
        sendFilterSet(topic);
        SimpleConsumer c = simple("g-" + topic, topic, new FilterExpression("a || c", FilterExpressionType.TAG));
        List<MessageView> got = receive(c, 4, true, Duration.ofSeconds(60));
        got.addAll(c.receive(8, INVISIBLE)); // a filtered-out message would come now
        return "received " + bodies(got);
    }

    static String sqlFilter(String topic, String[] args) throws Exception {
        sendFilterSet(topic);
        SimpleConsumer c = simple("g-" + topic, topic, new FilterExpression("amount >= 30 AND TAGS <> 'c'", FilterExpressionType.SQL92));
        List<MessageView> got = receive(c, 2, true, Duration.ofSeconds(60));
        got.addAll(c.receive(8, INVISIBLE));
        return "received " + bodies(got);
    }

    /**
     * 4.x and 5.x on one topic: the Go test sent three messages with the 4.x remoting client (tag t4, keys k4 and
     * the index, property origin=4x; their ids are args); this reads them with a 5.x SimpleConsumer, then sends
     * three with tag t5, keys k5, origin=5x, whose ids it prints on an "IDS5" line for the Go test's 4.x consumer.
     */
    static String interop(String topic, String[] args) throws Exception {
        SimpleConsumer c = simple("g-" + topic, topic, new FilterExpression("t4", FilterExpressionType.TAG));
        List<MessageView> got = receive(c, 3, true, Duration.ofSeconds(60));
        TreeSet<String> ids = new TreeSet<>();
        boolean intact = true;
        for (MessageView mv : got) {
            ids.add(mv.getMessageId().toString());
            List<String> keys = new ArrayList<>(mv.getKeys());
            Collections.sort(keys);
            String b = body(mv);
            String idx = b.substring(b.length() - 1);
            if (!mv.getTag().orElse("").equals("t4") || !"4x".equals(mv.getProperties().get("origin"))
                || !keys.equals(idx.compareTo("k4") < 0 ? List.of(idx, "k4") : List.of("k4", idx))) {
                intact = false;
                System.err.println("5.x received " + b + " tag " + mv.getTag() + " keys " + keys + " properties " + mv.getProperties());
            }
        }
        TreeSet<String> want = new TreeSet<>(List.of(args));
        Producer p = producer(topic);
        List<String> sent = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            sent.add(p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody(("from5-" + i).getBytes(StandardCharsets.UTF_8))
                .setTag("t5").setKeys("k5").addProperty("origin", "5x").build()).getMessageId().toString());
        }
        System.out.println("IDS5 " + String.join(",", sent));
        return "5.x received " + got.size() + " from 4.x, tag keys and property " + (intact ? "intact" : "changed")
            + ", ids " + (ids.equals(want) ? "the 4.x producer's" : "others");
    }

    /** Plaintext: a client configured without SSL sends and receives on the same port as the TLS clients. */
    static String plaintext(String topic, String[] args) throws Exception {
        ClientConfiguration plain = ClientConfiguration.newBuilder().setEndpoints(config.getEndpoints())
            .setRequestTimeout(Duration.ofSeconds(10)).enableSsl(false).build();
        Producer p = PROVIDER.newProducerBuilder().setClientConfiguration(plain).setTopics(topic).build();
        CLOSE.add(p);
        p.send(msg(topic, "plain"));
        SimpleConsumer c = PROVIDER.newSimpleConsumerBuilder().setClientConfiguration(plain).setConsumerGroup("g-" + topic)
            .setAwaitDuration(Duration.ofSeconds(5)).setSubscriptionExpressions(Collections.singletonMap(topic, ALL)).build();
        CLOSE.add(c);
        return "received " + bodies(receive(c, 1, true, Duration.ofSeconds(60))) + " over plaintext";
    }

    /**
     * What the server refuses, by code: a producer for a topic that does not exist, a receive with an invisible
     * duration below the 10 s minimum, a change of invisible duration beyond 12 h, a message group for a NORMAL topic
     * (checked by the client against the route's accepted types), and a body over the settings' 4 MiB. After a refused
     * change of invisible duration the message cannot be acknowledged with that view any more.
     */
    static String refusals(String topic, String[] args) throws Exception {
        List<String> out = new ArrayList<>();
        try {
            producer("missing-" + topic);
            out.add("unknown topic: accepted");
        } catch (Exception e) {
            out.add("unknown topic: " + code(e));
        }
        Producer p = producer(topic);
        p.send(msg(topic, "r"));
        SimpleConsumer c = simple("g-" + topic, topic, ALL);
        try {
            out.add("invisible 1 s: accepted, " + c.receive(1, Duration.ofSeconds(1)).size() + " received");
        } catch (ClientException e) {
            out.add("invisible 1 s: " + code(e));
        }
        List<MessageView> got = receive(c, 1, false, Duration.ofSeconds(60));
        if (got.isEmpty()) {
            out.add("not received");
        } else {
            try {
                c.changeInvisibleDuration(got.get(0), Duration.ofHours(13));
                out.add("invisible 13 h: accepted");
            } catch (ClientException e) {
                out.add("invisible 13 h: " + code(e));
            }
            try {
                c.ack(got.get(0));
                out.add("then acknowledged (attempt " + got.get(0).getDeliveryAttempt() + ")");
            } catch (ClientException e) {
                // The client keeps the (empty) receipt handle of the refused change, so the ack is refused too: by
                // tide with INVALID_RECEIPT_HANDLE, by Apache with INTERNAL_SERVER_ERROR (its handle decoder throws
                // IllegalArgumentException; docs/mq.md). Only the refusal is compared.
                out.add("then ack refused");
            }
        }
        try {
            p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody("g".getBytes(StandardCharsets.UTF_8)).setMessageGroup("g").build());
            out.add("message group on NORMAL: accepted");
        } catch (Exception e) {
            out.add("message group on NORMAL: refused");
        }
        try {
            p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody(new byte[(4 << 20) + 1]).build());
            out.add("4 MiB + 1: accepted");
        } catch (Exception e) {
            out.add("4 MiB + 1: refused");
        }
        return String.join("; ", out);
    }

    /**
     * FIFO with a PushConsumer: the client consumes a message group in order; a failed message is retried by the
     * client (after the group's backoff, the next attempt number) before the next one of its group.
     */
    static String fifoPush(String topic, String[] args) throws Exception {
        Map<String, List<String>> seen = new TreeMap<>();
        seen.put("a", new CopyOnWriteArrayList<>());
        seen.put("b", new CopyOnWriteArrayList<>());
        PushConsumer pc = PROVIDER.newPushConsumerBuilder().setClientConfiguration(config).setConsumerGroup("g-" + topic)
            .setSubscriptionExpressions(Collections.singletonMap(topic, ALL))
            .setMessageListener(mv -> {
                String b = body(mv);
                seen.get(b.substring(0, 1)).add(b + "#" + mv.getDeliveryAttempt());
                return b.equals("a1") && mv.getDeliveryAttempt() == 1 ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
            }).build();
        CLOSE.add(pc);
        Producer p = producer(topic);
        for (int i = 0; i < 3; i++) {
            for (String g : new String[] {"a", "b"}) {
                p.send(PROVIDER.newMessageBuilder().setTopic(topic).setBody((g + i).getBytes(StandardCharsets.UTF_8))
                    .setMessageGroup(g).build());
            }
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (System.nanoTime() < deadline && seen.get("a").size() + seen.get("b").size() < 7) {
            Thread.sleep(100);
        }
        Thread.sleep(1000); // an extra delivery would show by now
        return "consumed " + seen;
    }
}
